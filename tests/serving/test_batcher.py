"""The dynamic batcher: alone means at once; busy means batches; the config's limits hold."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from framework.runtime.serving.batcher import DynamicBatcher


class FakeRunner:
    """Doubles its input; records each batch's rows; a batch with a negative value waits
    for `gate` (the others are held only while `hold_all` is set)."""

    def __init__(self, seconds: float = 0.0, fail: bool = False):
        self.seconds = seconds
        self.fail = fail
        self.batches: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.hold_all = True

    def run(self, inputs):
        x = inputs["x"]
        if self.hold_all or (x < 0).any():
            self.gate.wait(10)
        self.batches.append(len(x))
        if self.seconds:
            time.sleep(self.seconds)
        if self.fail:
            raise RuntimeError("model exploded")
        return {"y": x * 2}


def rows(n: int, start: float = 0.0) -> dict[str, np.ndarray]:
    return {"x": np.arange(start, start + n, dtype=np.float32).reshape(n, 1)}


def batcher(runner, **kwargs) -> DynamicBatcher:
    options = {"max_batch_size": 8, "preferred_batch_sizes": (4, 8), "max_queue_delay_us": 0, "instances": 1}
    return DynamicBatcher(runner, **{**options, **kwargs})


class Clock:
    """The batcher's clock, moved by hand: the queue delay passes only when a test says so."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_request_alone_runs_at_once_even_with_a_long_queue_delay():
    runner = FakeRunner()
    b = batcher(runner, max_queue_delay_us=2_000_000, instances=2, clock=Clock())  # the clock never moves

    async def main():
        future = b.submit(rows(1, 5.0), 1)
        idle = b.idle  # an instance took it within submit: nothing waited
        return await asyncio.wait_for(future, 10), idle

    out, idle = asyncio.run(main())
    b.close()
    assert out["y"].tolist() == [[10.0]]
    assert idle == 1 and b.holds == 0
    assert runner.batches == [1]


def test_requests_that_queue_while_the_model_runs_form_one_batch_each_gets_its_rows():
    runner = FakeRunner()
    seen: list[int] = []
    b = batcher(runner, on_batch=seen.append)

    async def main():
        runner.gate.clear()  # the first request holds the only instance
        first = b.submit(rows(1, 0), 1)
        rest = [b.submit(rows(n, 10 * i), n) for i, n in enumerate((2, 1, 3), start=1)]
        runner.gate.set()
        return await first, await asyncio.gather(*rest)

    first, rest = asyncio.run(main())
    b.close()
    assert runner.batches == [1, 6] and seen == [1, 6]
    assert first["y"].tolist() == [[0.0]]
    assert [r["y"][:, 0].tolist() for r in rest] == [[20.0, 22.0], [40.0], [60.0, 62.0, 64.0]]


def test_batches_never_exceed_max_batch_size_and_requests_never_split():
    runner = FakeRunner()
    b = batcher(runner, max_batch_size=8)

    async def main():
        runner.gate.clear()
        head = b.submit(rows(1), 1)
        queued = [b.submit(rows(n), n) for n in (5, 2, 3, 8, 1)]
        runner.gate.set()
        await head
        return await asyncio.gather(*queued)

    outs = asyncio.run(main())
    b.close()
    assert runner.batches == [1, 7, 3, 8, 1]
    assert [len(o["y"]) for o in outs] == [5, 2, 3, 8, 1]


def test_a_small_batch_waits_for_more_only_while_another_instance_runs():
    runner = FakeRunner()
    runner.hold_all = False  # only a batch with a negative value waits for the gate
    clock = Clock()
    b = batcher(runner, max_queue_delay_us=300_000, instances=2, preferred_batch_sizes=(4,), clock=clock)

    async def main():
        runner.gate.clear()
        busy = b.submit(rows(1, -1.0), 1)  # instance 1 is held
        waiting = [b.submit(rows(1), 1) for _ in range(2)]  # 2 < preferred 4: they wait
        held = (b.idle, b.holds)
        more = [b.submit(rows(1), 1) for _ in range(2)]  # now 4: they run, though the clock never moved
        await asyncio.wait_for(asyncio.gather(*waiting, *more), 10)
        filled_while_busy = not busy.done()
        runner.gate.set()
        await busy
        runner.gate.clear()
        busy = b.submit(rows(1, -1.0), 1)
        lone = b.submit(rows(1), 1)  # waits for the delay...
        lone_queued = b.idle == 1
        clock.now += 0.3  # ...which has passed now: it runs alone while the other instance is held
        await asyncio.wait_for(lone, 10)
        lone_while_busy = not busy.done()
        runner.gate.set()
        await busy
        return held, filled_while_busy, lone_queued, lone_while_busy

    held, filled_while_busy, lone_queued, lone_while_busy = asyncio.run(main())
    b.close()
    assert held == (1, 1)  # queued behind a timer, not run
    assert filled_while_busy  # the preferred size released them, not the delay
    assert lone_queued and lone_while_busy
    assert runner.batches == [4, 1, 1, 1]


def test_failures_reach_every_request_of_the_batch_and_the_batcher_goes_on():
    runner = FakeRunner(fail=True)
    b = batcher(runner)

    async def main():
        results = await asyncio.gather(*(b.infer(rows(1), 1) for _ in range(3)), return_exceptions=True)
        runner.fail = False
        return results, await b.infer(rows(1, 4.0), 1)

    results, after = asyncio.run(main())
    b.close()
    assert all(isinstance(r, RuntimeError) and "exploded" in str(r) for r in results)
    assert after["y"].tolist() == [[8.0]]


def test_cancelled_requests_are_skipped():
    runner = FakeRunner()
    b = batcher(runner)

    async def main():
        runner.gate.clear()
        head = b.submit(rows(1), 1)
        gone = b.submit(rows(3), 3)
        kept = b.submit(rows(2), 2)
        gone.cancel()  # its caller went away while it queued
        runner.gate.set()
        await head
        return await kept

    out = asyncio.run(main())
    b.close()
    assert len(out["y"]) == 2 and runner.batches == [1, 2]


@pytest.mark.parametrize("max_batch_size", [0])
def test_without_batching_each_request_runs_alone(max_batch_size):
    runner = FakeRunner(seconds=0.01)
    b = batcher(runner, max_batch_size=max_batch_size, preferred_batch_sizes=())

    async def main():
        return await asyncio.gather(*(b.infer(rows(2), 1) for _ in range(4)))

    outs = asyncio.run(main())
    b.close()
    assert runner.batches == [2, 2, 2, 2] and all(len(o["y"]) == 2 for o in outs)


def test_inline_mode_batches_what_arrived_in_one_loop_iteration():
    runner = FakeRunner()
    runner.hold_all = False
    seen: list[int] = []
    b = batcher(runner, inline=True, on_batch=seen.append, max_batch_size=8)

    async def main():
        alone = await b.infer(rows(1, 1.0), 1)  # runs within the iteration: no waiting
        together = await asyncio.gather(*(b.infer(rows(n, 10.0 * n), n) for n in (3, 4, 2)))
        return alone, together

    alone, together = asyncio.run(main())
    b.close()
    assert alone["y"].tolist() == [[2.0]]
    assert seen == [1, 7, 2]  # 3 + 4 fit in 8; the 2 rows make the next batch
    assert [t["y"][:, 0].tolist() for t in together] == [[60.0, 62.0, 64.0], [80.0, 82.0, 84.0, 86.0], [40.0, 42.0]]


def test_inline_mode_failures_reach_the_batch_and_the_loop_goes_on():
    runner = FakeRunner(fail=True)
    runner.hold_all = False
    b = batcher(runner, inline=True)

    async def main():
        failed = await asyncio.gather(*(b.infer(rows(1), 1) for _ in range(2)), return_exceptions=True)
        runner.fail = False
        return failed, await b.infer(rows(1, 2.0), 1)

    failed, after = asyncio.run(main())
    b.close()
    assert all(isinstance(f, RuntimeError) for f in failed) and after["y"].tolist() == [[4.0]]


class TextRunner:
    """A model of the raw-column contract: a number and a category in, scores and a label
    out (the label is the category, upper-cased, so each row's answer is its own)."""

    def __init__(self):
        self.batches: list[int] = []

    def run(self, inputs):
        x, category = inputs["x"], inputs["category"]
        assert category.dtype == object and category.shape == x.shape
        self.batches.append(len(x))
        label = np.array([[f"{c}-{v:g}".upper()] for c, v in zip(category[:, 0], x[:, 0])], dtype=object)
        return {"scores": x * 2, "label": label}


def test_text_inputs_batch_and_each_request_gets_its_own_labels():
    runner = TextRunner()
    b = batcher(runner, inline=True, max_batch_size=8)

    def request(n: int, start: float, category: str):
        return {"x": np.arange(start, start + n, dtype=np.float32).reshape(n, 1),
                "category": np.full((n, 1), category, dtype=object)}

    async def main():
        return await asyncio.gather(*(b.infer(request(n, 10.0 * n, c), n) for n, c in ((3, "a"), (4, ""), (1, "caf\u00e9"))))

    outs = asyncio.run(main())
    b.close()
    assert runner.batches == [8]  # one batch of the three requests
    assert [o["label"][:, 0].tolist() for o in outs] == [
        ["A-30", "A-31", "A-32"], ["-40", "-41", "-42", "-43"], ["CAF\u00c9-10"],
    ]
    assert all(o["label"].dtype == object for o in outs)


def test_json_columns_are_built_once_per_batch_and_a_bad_element_fails_only_its_request():
    """protocol.decode_request keeps a JSON request's inputs as lists (JsonColumns); the
    batcher builds one array per input for the whole batch. A request with an element of
    the wrong type makes that fail: each request then builds its own, and only that one
    gets its 400."""
    from framework.runtime.serving.tensors import TEXT, HttpError, JsonColumns

    runner = TextRunner()
    b = batcher(runner, inline=True, max_batch_size=8)
    specs = {"x": (np.dtype(np.float32), [1]), "category": (TEXT, [1])}

    def request(xs: list, categories: list) -> JsonColumns:
        return JsonColumns({"x": xs, "category": categories}, len(xs), specs)

    async def main(*requests):
        return await asyncio.gather(*(b.infer(r, r.rows) for r in requests), return_exceptions=True)

    good = asyncio.run(main(request([1.0, 2.0], ["a", "b"]), request([None], ["c"])))
    mixed = asyncio.run(main(request([3.0], ["d"]), request(["three"], ["e"]), request([4.0], [5]), request([6.0], ["f"])))
    b.close()
    assert runner.batches == [3, 2]  # the bad requests never reach the model
    assert good[0]["label"][:, 0].tolist() == ["A-1", "B-2"] and good[0]["label"].dtype == object
    assert np.isnan(good[1]["scores"][0, 0]) and good[1]["label"].tolist() == [["C-NAN"]]
    assert mixed[0]["label"].tolist() == [["D-3"]] and mixed[3]["label"].tolist() == [["F-6"]]
    assert isinstance(mixed[1], HttpError) and mixed[1].status == 400 and "only numbers" in mixed[1].message
    assert isinstance(mixed[2], HttpError) and "only strings" in mixed[2].message
