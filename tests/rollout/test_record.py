"""The rollout record as a model: one builder, deterministic JSON, read back through the
model (a bad record is one error line naming the file), records from before
schema_version read as version 1, and the committed JSON Schema."""

from __future__ import annotations

import json

import jsonschema
import pytest

from framework.errors import MlopsError
from framework.api.recipes import schema_files
from framework.recipe.schema import export_schemas
from framework.runtime.rollout import state as st
from framework.runtime.rollout.controller import Controller
from framework.runtime.rollout.local import _record_only
from framework.contracts.rollout_record import (
    ADVANCE, SCHEMA_PATH, RolloutRecord, StepVerdict, WindowStats, dump_record, load_record, new_record, parse_record,
)
from framework.runtime.serving.stats import Stats
from tests.conftest import REPO, run_cli
from tests.rollout.conftest import load

KEYS = {
    "schema_version", "recipe", "env", "registered_model", "model", "strategy", "champion", "candidate", "status",
    "step", "steps", "weight", "verdicts", "decision", "decided_by", "reasons", "requests", "started_at",
    "updated_at", "finished_at", "advance",
}
HINT = "; remove it and the next rollout writes a new one"
T = "2024-05-01T12:00:00Z"

# what the controller wrote before schema_version (a canary rolled back at its first step)
LEGACY_CONTROLLER = {
    "advance": ADVANCE, "candidate": "2", "champion": "1", "decided_by": "controller", "decision": "rollback",
    "env": "dev", "finished_at": T, "model": "churn", "reasons": ["canary step 1/4 (10%): error rate 23.53% ..."],
    "recipe": "churn", "registered_model": "churn", "requests": 480, "started_at": T, "status": "rolled_back",
    "step": 1, "steps": [10, 25, 50, 100], "strategy": "canary", "updated_at": T,
    "verdicts": [{
        "at": T, "passed": False, "reasons": ["error rate 23.53% (12 of 51) > 1.00% (analysis.max_error_rate)"],
        "requests": 480, "step": 1, "weight": 10.0,
        "candidate": {"agreed": 0, "agreement": None, "compared": 0, "delta_p50_ms": None, "error_rate": 0.235294,
                      "errors": 12, "p50_ms": 2.0, "p99_ms": 2.0, "requests": 51, "version": "2"},
        "champion": {"agreed": 0, "agreement": None, "compared": 0, "delta_p50_ms": None, "error_rate": 0.0,
                     "errors": 0, "p50_ms": 2.0, "p99_ms": 2.0, "requests": 429, "version": "1"},
    }],
    "weight": 0.0,
}
# what `mlops rollout promote` wrote before schema_version with no earlier record: no model, no advance
LEGACY_MANUAL = {
    "candidate": "2", "champion": "1", "decided_by": "mlops rollout promote", "decision": "promote", "env": "dev",
    "finished_at": T, "reasons": ["promoted by hand"], "recipe": "churn", "registered_model": "churn", "requests": 0,
    "started_at": T, "status": "promoted", "step": 0, "steps": [10, 25, 50, 100], "strategy": "canary",
    "updated_at": T, "verdicts": [], "weight": 100.0,
}


def write(path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")


def a_verdict() -> StepVerdict:
    return StepVerdict(step=1, weight=10.0, passed=True, reasons=["error rate 0.00% (0 of 60) <= 1.00%"],
                       candidate=WindowStats.of(Stats("2", requests=60, p50_ms=1.23456, p99_ms=3.0)),
                       champion=WindowStats.of(Stats("1", requests=540, errors=1, p50_ms=1.0, p99_ms=2.5)),
                       requests=600, at=T)


# --- writing and reading back -------------------------------------------------------------
def test_a_record_round_trips_through_its_file_as_sorted_deterministic_json(tmp_path, churn_recipe):
    path = st.state_path(tmp_path, "churn", "dev")
    record = new_record(churn_recipe, champion="1", candidate="2", model="churn")
    record.verdicts.append(a_verdict())
    record.step, record.weight, record.requests = 1, 10.0, 600
    st.write_state(path, record)
    text = path.read_text()
    assert text == dump_record(record)  # written as dumped, after updated_at was stamped
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    back = st.read_record(path)
    assert back == record and dump_record(back) == text  # same record, same bytes
    data = json.loads(text)
    assert set(data) == KEYS and data["schema_version"] == 1
    assert data["verdicts"][0]["candidate"] == Stats("2", requests=60, p50_ms=1.23456, p99_ms=3.0).to_dict()
    assert st.read_state(path) == data  # the API's plain-data view of the same record
    assert st.describe(data) == st.describe(back) == [
        "rollout:   canary, step 1 of 4, candidate weight 10%, running",
        "verdict:   step 1 passed: error rate 0.00% (0 of 60) <= 1.00%",
        "decision:  none yet",
    ]


def test_no_file_reads_as_no_record(tmp_path):
    assert st.read_record(tmp_path / "none.json") is None and st.read_state(tmp_path / "none.json") is None
    assert st.describe(None) == ["rollout:   none recorded"]


def test_the_three_builders_write_the_same_keys(tmp_path, churn_recipe):
    """The controller's, a rollout with nothing to walk, and a decision by hand."""
    controller = Controller(churn_recipe, uri="unused", router=None, traffic=None, champion="1", candidate="2",
                            state_path=tmp_path / "c.json")
    st.write_state(tmp_path / "c.json", controller.state)
    _record_only(churn_recipe, tmp_path / "o.json", None, "2", "promoted", "promote", ["no champion yet"], model="churn")
    st.record_manual(tmp_path / "m.json", churn_recipe, "1", "2", "rollback")
    written = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in "com"}
    assert {name: set(data) for name, data in written.items()} == {name: KEYS for name in "com"}
    assert written["c"]["model"] == written["o"]["model"] == "churn" and written["m"]["model"] is None
    assert {data["advance"] for data in written.values()} == {ADVANCE}
    assert (written["o"]["weight"], written["o"]["finished_at"] is not None) == (100.0, True)
    assert (written["m"]["decided_by"], written["m"]["reasons"]) == ("mlops rollout rollback", ["rolled back by hand"])


def test_a_decision_by_hand_keeps_the_record_of_its_candidate_and_replaces_an_unreadable_one(tmp_path, churn_recipe):
    path = tmp_path / "r.json"
    write(path, LEGACY_CONTROLLER)
    record = st.record_manual(path, churn_recipe, "1", "2", "promote")
    assert (record.status, record.decided_by, len(record.verdicts), record.schema_version) == (
        "promoted", "mlops rollout promote", 1, 1)
    write(path, "{not json")
    record = st.record_manual(path, churn_recipe, "1", "2", "rollback")  # the aliases moved already: record it
    assert (record.status, record.verdicts) == ("rolled_back", []) and st.read_record(path) == record


# --- a record that does not validate -------------------------------------------------------------
@pytest.mark.parametrize(("change", "line"), [
    ({"status": "finished"}, "status: not a valid rollout record: Input should be 'running', 'paused', 'promoted', "
                             "'rolled_back', 'inconclusive' or 'unchanged'"),
    ({"weight": "lots"}, "weight: not a valid rollout record: Input should be a valid number, unable to parse string as a number"),
    ({"colour": "blue"}, "colour: not a valid rollout record: Extra inputs are not permitted"),
    ({"status": "finished", "weight": -1}, "status: not a valid rollout record: Input should be 'running', 'paused', "
                                           "'promoted', 'rolled_back', 'inconclusive' or 'unchanged' (and 1 more)"),
    ({"schema_version": 2}, "schema_version: schema_version 2 is not 1, the version this mlops reads (another mlops wrote it)"),
])
def test_a_bad_record_is_one_error_line_naming_the_file(tmp_path, monkeypatch, change, line):
    monkeypatch.chdir(tmp_path)
    path = st.state_path(tmp_path / ".mlops", "churn", "dev")
    write(path, {**LEGACY_CONTROLLER, "schema_version": 1, **change})
    with pytest.raises(MlopsError) as caught:
        st.read_record(path)
    assert str(caught.value) == f".mlops/rollouts/churn/dev.json: {line}{HINT}"
    assert "\n" not in str(caught.value)


def test_a_verdict_missing_a_key_names_where(tmp_path):
    verdict = {k: v for k, v in LEGACY_CONTROLLER["verdicts"][0].items() if k != "passed"}
    write(tmp_path / "r.json", {**LEGACY_CONTROLLER, "verdicts": [verdict]})
    with pytest.raises(MlopsError, match=r"r\.json: verdicts\.0\.passed: not a valid rollout record: Field required;"):
        st.read_record(tmp_path / "r.json")


@pytest.mark.parametrize(("text", "line"), [
    ("{not json", "the rollout record is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ("[1, 2]", "not a valid rollout record: Input should be a valid dictionary or instance of RolloutRecord"),
])
def test_a_file_that_is_no_record_at_all(tmp_path, monkeypatch, text, line):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "r.json", text)
    with pytest.raises(MlopsError) as caught:
        load_record(tmp_path / "r.json")
    assert str(caught.value) == f"r.json: {line}{HINT}"


def test_status_on_a_bad_record_exits_1_with_one_line_and_no_traceback(project):
    write(project / ".mlops" / "rollouts" / "churn" / "dev.json", {**LEGACY_CONTROLLER, "status": "finished"})
    result = run_cli("rollout", "status", "churn")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        ".mlops/rollouts/churn/dev.json: status: not a valid rollout record: Input should be 'running', 'paused', "
        f"'promoted', 'rolled_back', 'inconclusive' or 'unchanged'{HINT}\n"
    )


def test_serving_refuses_a_bad_record_of_a_rollout_in_progress(tmp_path, monkeypatch):
    from framework.runtime.serving import live
    from framework.runtime.serving.live import live_plan

    recipe = load()
    monkeypatch.setattr(live, "aliases", lambda name, uri: {"champion": "1", "candidate": "2", "rejected": None})
    path = st.state_path(tmp_path, "churn", "dev")
    write(path, {**LEGACY_CONTROLLER, "status": "running", "weight": 25.0, "decision": None, "decided_by": None})
    assert live_plan(recipe, tmp_path).weight == 25.0  # carries on where the record stood
    write(path, {**LEGACY_CONTROLLER, "weight": 250.0})
    with pytest.raises(MlopsError, match=r"dev\.json: weight: not a valid rollout record: Input should be less than or equal to 100"):
        live_plan(recipe, tmp_path)


# --- records written before schema_version -------------------------------------------------------
def test_a_record_from_before_schema_version_reads_as_version_1(tmp_path):
    path = tmp_path / "r.json"
    write(path, LEGACY_CONTROLLER)
    record = st.read_record(path)
    assert record.schema_version == 1
    assert record.model_dump(mode="json") == {**LEGACY_CONTROLLER, "schema_version": 1}
    assert st.describe(record)[:2] == [
        "rollout:   canary, step 1 of 4, candidate weight 0%, rolled_back",
        "verdict:   step 1 failed: error rate 23.53% (12 of 51) > 1.00% (analysis.max_error_rate)",
    ]


def test_a_decision_by_hand_from_before_schema_version_reads_with_model_and_advance_null(tmp_path):
    write(tmp_path / "r.json", LEGACY_MANUAL)
    record = st.read_record(tmp_path / "r.json")
    assert (record.schema_version, record.model, record.advance, record.decided_by) == (1, None, None, "mlops rollout promote")


def test_a_record_from_before_schema_version_that_does_not_validate_is_refused(tmp_path):
    write(tmp_path / "r.json", {**LEGACY_MANUAL, "weight": None})
    with pytest.raises(MlopsError, match=r"r\.json: weight: not a valid rollout record: Input should be a valid number"):
        st.read_record(tmp_path / "r.json")
    with pytest.raises(MlopsError, match="recipe: not a valid rollout record: Field required"):
        parse_record({k: v for k, v in LEGACY_MANUAL.items() if k != "recipe"}, "old.json")


def test_the_model_itself_requires_schema_version(churn_recipe):
    """Only the reader fills schema_version in (for old files); the model and its schema require it."""
    data = new_record(churn_recipe, champion="1", candidate="2").model_dump()
    del data["schema_version"]
    with pytest.raises(Exception, match="schema_version"):
        RolloutRecord.model_validate(data)
    assert "schema_version" in RolloutRecord.model_json_schema()["required"]


# --- the JSON Schema ---------------------------------------------------------------------------
def test_the_committed_record_schema_matches_a_fresh_export():
    assert (REPO / "schemas" / SCHEMA_PATH).read_text() == schema_files()[SCHEMA_PATH], "run `mlops schema` and commit"
    assert set(schema_files()) - set(export_schemas()) == {"runtime/rollout-record.schema.json"}


def test_written_records_validate_against_the_committed_schema(tmp_path, churn_recipe):
    schema = json.loads((REPO / "schemas" / SCHEMA_PATH).read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    validator.check_schema(schema)
    record = new_record(churn_recipe, champion=None, candidate="2", model="churn")
    record.verdicts.append(a_verdict())
    st.write_state(tmp_path / "r.json", record)
    written = json.loads((tmp_path / "r.json").read_text())
    validator.validate(written)
    assert not validator.is_valid({**written, "colour": "blue"})
    assert not validator.is_valid({k: v for k, v in written.items() if k != "schema_version"})
    assert not validator.is_valid({**written, "status": "finished"})


def test_every_field_of_the_record_schema_has_a_description():
    schema = json.loads((REPO / "schemas" / SCHEMA_PATH).read_text())
    missing = [f"{name}.{field}" for name, model in [("RolloutRecord", schema), *schema["$defs"].items()]
               for field, prop in model.get("properties", {}).items() if not prop.get("description")]
    assert missing == []
