"""The harness's own pieces: GitHub expressions, the job order, outputs files, and a small
workflow run through it (fast: shell steps only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pipeline.expressions import ExpressionError, condition, evaluate, substitute
from tests.pipeline.harness import Harness, _read_pairs, job_order

CONTEXTS = {
    "github": {"event_name": "push", "sha": "abc"},
    "vars": {"RAY_ADDRESS": "http://ray:8265"},
    "secrets": {},
    "needs": {"train": {"result": "success", "outputs": {"model-version": "3"}}},
}
OK = {"always": True, "success": True, "failure": False, "cancelled": False}
FAILED = {"always": True, "success": False, "failure": True, "cancelled": False}


@pytest.mark.parametrize(("text", "value"), [
    ("github.event_name == 'push'", True),
    ("github.event_name == 'PUSH'", True),  # strings compare case-insensitively
    ("github.event_name != 'push'", False),
    ("needs.train.outputs.model-version", "3"),
    ("vars.MISSING", None),
    ("secrets.TOKEN || 'fallback'", "fallback"),
    ("vars.RAY_ADDRESS && 'yes'", "yes"),
    ("!(github.event_name == 'push')", False),
    ("'it''s'", "it's"),
    ("always()", True),
])
def test_expressions(text, value):
    assert evaluate(text, CONTEXTS, OK) == value


def test_substitution_and_conditions():
    assert substitute("v${{ needs.train.outputs.model-version }} at ${{ vars.NOPE }}.", CONTEXTS) == "v3 at ."
    assert condition(None, CONTEXTS, OK) and not condition(None, CONTEXTS, FAILED)
    assert not condition("github.event_name == 'push'", CONTEXTS, FAILED)  # an implicit success()
    assert condition("${{ always() }}", CONTEXTS, FAILED)
    assert condition("failure()", CONTEXTS, FAILED)
    with pytest.raises(ExpressionError):
        evaluate("github.sha ==", CONTEXTS)


def test_job_order_follows_needs():
    jobs = {"c": {"needs": ["a", "b"]}, "b": {"needs": "a"}, "a": {}, "d": {}}
    assert job_order(jobs) == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="need each other"):
        job_order({"x": {"needs": ["y"]}, "y": {"needs": ["x"]}})


def test_output_files_as_a_runner_writes_them(tmp_path: Path):
    path = tmp_path / "out"
    path.write_text("a=1\nb=x=y\nlong<<EOF_1\nline 1\nline 2\nEOF_1\n")
    assert _read_pairs(path) == {"a": "1", "b": "x=y", "long": "line 1\nline 2"}


WORKFLOW = """\
on: push
env:
  TOP: top
jobs:
  first:
    runs-on: [ubuntu-latest]
    outputs:
      value: ${{ steps.make.outputs.value }}
    steps:
      - uses: actions/checkout@v5
      - uses: actions/setup-python@v6
      - id: make
        run: |
          echo "value=$TOP-$GITHUB_SHA" >> "$GITHUB_OUTPUT"
          echo "LATER=set" >> "$GITHUB_ENV"
      - run: test "$LATER" = set && echo "## done" >> "$GITHUB_STEP_SUMMARY"
  second:
    needs: [first]
    runs-on: [ubuntu-latest]
    env:
      GOT: ${{ needs.first.outputs.value }}
    steps:
      - run: test "$GOT" = top-abc && exit 3
  third:
    needs: [second]
    runs-on: [ubuntu-latest]
    steps:
      - run: echo never
  cleanup:
    needs: [second]
    if: ${{ always() }}
    runs-on: [ubuntu-latest]
    steps:
      - if: github.event_name != 'push'
        run: exit 1
      - run: echo "ran"
"""


def test_a_workflow_runs_job_by_job(tmp_path: Path):
    (tmp_path / "wf.yml").write_text(WORKFLOW)
    results = Harness(tmp_path / "wf.yml", tmp_path, tmp_path / "work", sha="abc").run()
    assert {j: r.result for j, r in results.items()} == {
        "first": "success", "second": "failure", "third": "skipped", "cleanup": "success"}
    assert results["first"].outputs == {"value": "top-abc"}  # an output fed the next job's env ...
    assert results["second"].failed_step().returncode == 3  # ... which checked it
    assert results["first"].summary == "## done\n" and [s.kind for s in results["first"].steps] == [
        "checkout", "skipped-uses", "run", "run"]
    assert [s.kind for s in results["cleanup"].steps] == ["skipped-if", "run"]
