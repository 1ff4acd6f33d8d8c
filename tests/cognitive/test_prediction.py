"""prediction: the four reasoning modes, confidence and the actionable threshold, resolution
(with its memory trace), rolling accuracy and expiry on the clock given, through legion.sdk.call."""

from __future__ import annotations

import itertools
import re
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import legion.engine.registry as registry_module
from legion import sdk
from legion.engine.registry import Registry
from legion.extensions.prediction import helpers
from legion.sdk import Extension, StepError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
UUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
AGENTS = itertools.count()


def call(url: str, function: str, args: dict[str, Any] | None = None, *, agent: str = "ada", now: datetime = NOW) -> Any:
    return sdk.call(f"prediction.prediction.{function}", args or {}, now=now, agent=agent, database_url=url)


def predict_and_resolve(url: str, outcome: str, *, agent: str = "ada", mode: str = "fault_localization") -> str:
    made = call(url, "predict", {"mode": mode}, agent=agent)
    assert call(url, "resolve_prediction", {"prediction_id": made["prediction_id"], "outcome": outcome}, agent=agent)["resolved"]
    return str(made["prediction_id"])


# --- predict -----------------------------------------------------------------------------------

def test_a_prediction_in_a_valid_mode(url: str) -> None:
    made = call(url, "predict", {"mode": "fault_localization", "description": "disk latency spike incoming"})
    assert UUID.match(made["prediction_id"]) and made["mode"] == "fault_localization"
    assert made["confidence"] == 0.7 and made["actionable"] is True
    assert made["rolling_accuracy"] == 0.0 and made["error_rate"] == 1.0 and made["resolved"] == []
    kept = call(url, "get_prediction", {"prediction_id": made["prediction_id"]})
    assert kept["found"] is True and kept["prediction"] == {
        "prediction_id": made["prediction_id"], "mode": "fault_localization", "context_keys": [], "outcome_domain": None,
        "confidence": 0.7, "description": "disk latency spike incoming", "status": "pending",
        "created_at": "2026-03-01T12:00:00+00:00", "horizon": 3600, "resolved_at": None, "actual": None}


def test_an_unknown_mode_is_an_error_a_chain_can_branch_on(url: str) -> None:
    assert call(url, "predict", {"mode": "neural_network"}) == {
        "error": "invalid_mode", "valid_modes": ["fault_localization", "functional_mapping", "boundary_testing", "counterfactual"]}
    assert call(url, "pending_predictions")["count"] == 0


def test_actionable_at_and_above_the_threshold(url: str) -> None:
    assert call(url, "predict", {"mode": "fault_localization", "confidence": 0.9})["actionable"] is True
    assert call(url, "predict", {"mode": "counterfactual", "confidence": 0.3})["actionable"] is False
    assert call(url, "predict", {"mode": "counterfactual", "confidence": 0.65})["actionable"] is True
    assert call(url, "predict", {"mode": "counterfactual", "confidence": 0.6499})["actionable"] is False


def test_confidence_is_estimated_from_the_mode_and_the_context(url: str) -> None:
    bases = {mode: call(url, "predict", {"mode": mode})["confidence"] for mode in helpers.REASONING_MODES}
    assert bases == {"fault_localization": 0.7, "functional_mapping": 0.6, "boundary_testing": 0.5, "counterfactual": 0.4}
    assert bases["fault_localization"] > bases["counterfactual"]
    three = call(url, "predict", {"mode": "functional_mapping", "context": {"a": 1, "b": 2, "c": 3}})
    assert three["confidence"] == pytest.approx(0.66) and three["actionable"] is True
    rich = call(url, "predict", {"mode": "fault_localization", "context": {f"k{i}": i for i in range(15)}})
    assert rich["confidence"] == pytest.approx(0.9)  # the bonus stops at 0.2
    assert helpers.estimate_confidence("fault_localization", 10_000) == pytest.approx(0.9)


def test_only_the_contexts_keys_and_outcome_domain_are_kept(url: str) -> None:
    made = call(url, "predict", {"mode": "boundary_testing", "context": {"outcome_domain": "billing", "tick": {"big": "x" * 500}}})
    kept = call(url, "get_prediction", {"prediction_id": made["prediction_id"]})["prediction"]
    assert kept["context_keys"] == ["outcome_domain", "tick"] and kept["outcome_domain"] == "billing"
    call(url, "resolve_prediction", {"prediction_id": made["prediction_id"], "outcome": "correct"})
    summary = call(url, "predict", {"mode": "counterfactual"})["resolved"][0]
    assert summary["domain"] == "boundary_testing" and summary["outcome_domain"] == "billing"


# --- resolution and accuracy -------------------------------------------------------------------

def test_resolve_a_pending_prediction(url: str) -> None:
    made = call(url, "predict", {"mode": "functional_mapping"})
    later = NOW + timedelta(minutes=5)
    result = call(url, "resolve_prediction", {"prediction_id": made["prediction_id"], "outcome": "partial",
                                              "actual": "disk io at 80%"}, now=later)
    assert result["resolved"] is True and result["outcome"] == "partial" and result["prediction_id"] == made["prediction_id"]
    kept = call(url, "get_prediction", {"prediction_id": made["prediction_id"]})["prediction"]
    assert kept["status"] == "partial" and kept["actual"] == "disk io at 80%" and kept["resolved_at"] == later.isoformat()
    assert call(url, "pending_predictions")["count"] == 0


def test_an_unknown_prediction_is_not_found_and_none_is_resolved_twice(url: str) -> None:
    assert call(url, "resolve_prediction", {"prediction_id": "nonexistent", "outcome": "correct"}) == {
        "resolved": False, "reason": "not_found"}
    assert call(url, "get_prediction", {"prediction_id": "nonexistent"}) == {"found": False}
    made = predict_and_resolve(url, "correct")
    again = call(url, "resolve_prediction", {"prediction_id": made, "outcome": "incorrect"})
    assert again == {"resolved": False, "reason": "already_resolved", "prediction_id": made, "outcome": "correct"}
    assert call(url, "prediction_accuracy") == {"accuracy": 1.0, "total_outcomes": 1}


def test_pending_predictions_are_listed_oldest_first(url: str) -> None:
    first = call(url, "predict", {"mode": "fault_localization"})
    second = call(url, "predict", {"mode": "boundary_testing"}, now=NOW + timedelta(seconds=1))
    listed = call(url, "pending_predictions")
    assert listed["count"] == 2 and [p["prediction_id"] for p in listed["predictions"]] == [first["prediction_id"],
                                                                                           second["prediction_id"]]


def test_accuracy_is_the_share_of_correct_outcomes(url: str) -> None:
    for outcome in ("correct", "correct", "correct", "incorrect"):
        predict_and_resolve(url, outcome)
    assert call(url, "prediction_accuracy") == {"accuracy": 0.75, "total_outcomes": 4}
    assert call(url, "prediction_accuracy", {"window": 1}) == {"accuracy": 0.0, "total_outcomes": 4}
    made = call(url, "predict", {"mode": "counterfactual"})
    assert made["rolling_accuracy"] == 0.75 and made["error_rate"] == 0.25
    assert [s["outcome"] for s in made["resolved"]] == ["correct", "correct", "correct", "incorrect"]
    assert made["resolved"][0] == {"prediction_id": made["resolved"][0]["prediction_id"], "domain": "fault_localization",
                                   "outcome_domain": "fault_localization", "outcome": "correct", "accurate": True,
                                   "confidence": 0.7, "resolved_at": NOW.isoformat()}


def test_partial_and_expired_outcomes_count_against_accuracy(url: str) -> None:
    for outcome in ("partial", "expired", "correct"):
        predict_and_resolve(url, outcome)
    assert call(url, "prediction_accuracy")["accuracy"] == pytest.approx(1 / 3)
    assert call(url, "predict", {"mode": "counterfactual"})["error_rate"] == 0.6667


def test_predict_lists_the_last_twenty_resolved(url: str) -> None:
    ids = [predict_and_resolve(url, "correct" if i % 2 else "incorrect") for i in range(22)]
    resolved = call(url, "predict", {"mode": "counterfactual"})["resolved"]
    assert [s["prediction_id"] for s in resolved] == ids[2:]


def test_the_outcome_log_keeps_500_and_forgets_what_falls_off() -> None:
    ledger = helpers.new_ledger()
    for i in range(501):
        ledger, dropped = helpers.record(ledger, {"prediction_id": f"p{i}", "mode": "counterfactual", "status": "correct",
                                                  "confidence": 0.4, "resolved_at": None})
        assert dropped == ([] if i < 500 else ["p0"])
    assert len(ledger["log"]) == 500 and ledger["log"][0][0] == "p1" and len(ledger["recent"]) == 20
    assert helpers.accuracy(["incorrect"] * 102 + ["correct"] * 2) == 0.02  # the default window is 100
    assert helpers.accuracy(["incorrect"] * 5 + ["correct"] * 5, window=5) == 1.0
    assert helpers.accuracy([]) == 0.0


# --- expiry ------------------------------------------------------------------------------------

def test_predictions_expire_only_past_their_horizon(url: str) -> None:
    made = call(url, "predict", {"mode": "fault_localization"})
    younger = call(url, "predict", {"mode": "counterfactual"}, now=NOW + timedelta(minutes=30))
    assert call(url, "expire_stale_predictions", now=NOW + timedelta(seconds=3600)) == {"expired_count": 0,
                                                                                         "remaining_pending": 2}
    assert call(url, "expire_stale_predictions", now=NOW + timedelta(seconds=3601)) == {"expired_count": 1,
                                                                                         "remaining_pending": 1}
    kept = call(url, "get_prediction", {"prediction_id": made["prediction_id"]})["prediction"]
    assert kept["status"] == "expired" and kept["resolved_at"] == (NOW + timedelta(seconds=3601)).isoformat()
    assert call(url, "prediction_accuracy") == {"accuracy": 0.0, "total_outcomes": 1}
    assert call(url, "resolve_prediction", {"prediction_id": made["prediction_id"], "outcome": "correct"})["reason"] \
        == "already_resolved"
    assert call(url, "pending_predictions")["predictions"][0]["prediction_id"] == younger["prediction_id"]
    assert call(url, "expire_stale_predictions", now=NOW + timedelta(days=1)) == {"expired_count": 1, "remaining_pending": 0}


# --- the outcome trace in memory ---------------------------------------------------------------

def _fake_memory(calls: list[dict[str, Any]], fail: bool = False) -> types.ModuleType:
    traces = types.ModuleType("traces")

    def store_trace(type: str, content_payload: Any, emotional_valence: float, emotional_intensity: float,  # noqa: A002
                    domain_tags: list[str], unresolved: bool, confidence: float) -> dict[str, Any]:
        if fail:
            raise StepError("the store is full", type="QuotaExceeded")
        calls.append({"type": type, "content_payload": content_payload, "emotional_valence": emotional_valence,
                      "emotional_intensity": emotional_intensity, "domain_tags": domain_tags, "unresolved": unresolved,
                      "confidence": confidence})
        return {"trace_id": f"t{len(calls)}", "trace_type": type, "strength": 0.5}

    traces.store_trace = store_trace  # type: ignore[attr-defined]
    traces.__all__ = ["store_trace"]  # type: ignore[attr-defined]
    return traces


@pytest.fixture()
def memory_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """prediction beside a stand-in memory extension that records what it is asked to store."""
    calls: list[dict[str, Any]] = []
    prediction = Registry.discover().extensions["prediction"]
    monkeypatch.setattr(registry_module, "_installed", Registry([prediction, Extension("memory", runners=[_fake_memory(calls)])]))
    yield calls


def test_a_resolution_writes_its_outcome_trace_into_memory(url: str, memory_calls: list[dict[str, Any]]) -> None:
    results = {outcome: call(url, "resolve_prediction", {
        "prediction_id": call(url, "predict", {"mode": "boundary_testing", "confidence": 0.55})["prediction_id"],
        "outcome": outcome}) for outcome in ("correct", "incorrect", "partial", "expired")}
    assert [r["trace"] for r in results.values()] == [{"stored": True, "trace_id": "t1"}, {"stored": True, "trace_id": "t2"},
                                                      {"stored": True, "trace_id": "t3"}, None]
    tags = ["prediction", "boundary_testing"]
    assert memory_calls == [
        {"type": "semantic", "content_payload": "prediction correct: mode=boundary_testing confidence=0.55",
         "emotional_valence": 0.3, "emotional_intensity": 0.3, "domain_tags": tags, "unresolved": False, "confidence": 0.55},
        {"type": "episodic", "content_payload": "prediction incorrect: mode=boundary_testing confidence=0.55",
         "emotional_valence": -0.5, "emotional_intensity": 0.6, "domain_tags": tags, "unresolved": True, "confidence": 0.55},
        {"type": "episodic", "content_payload": "prediction partial: mode=boundary_testing confidence=0.55",
         "emotional_valence": -0.2, "emotional_intensity": 0.4, "domain_tags": tags, "unresolved": True, "confidence": 0.55},
    ]
    call(url, "predict", {"mode": "counterfactual"})
    call(url, "expire_stale_predictions", now=NOW + timedelta(hours=2))
    assert len(memory_calls) == 3  # expiry leaves no trace


def test_a_failed_memory_write_does_not_undo_the_resolution(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    prediction = Registry.discover().extensions["prediction"]
    monkeypatch.setattr(registry_module, "_installed",
                        Registry([prediction, Extension("memory", runners=[_fake_memory([], fail=True)])]))
    made = call(url, "predict", {"mode": "counterfactual"})
    result = call(url, "resolve_prediction", {"prediction_id": made["prediction_id"], "outcome": "incorrect"})
    assert result["resolved"] is True and result["trace"] == {"stored": False, "error": "QuotaExceeded"}
    assert call(url, "prediction_accuracy") == {"accuracy": 0.0, "total_outcomes": 1}


MEMORY_INSTALLED = "memory.traces.store_trace" in Registry.installed().functions


@pytest.mark.skipif(not MEMORY_INSTALLED, reason="memory.traces.store_trace is not installed yet")
def test_the_outcome_trace_lands_in_the_installed_memory(url: str) -> None:
    made = call(url, "predict", {"mode": "fault_localization", "confidence": 0.8}, agent="ada")
    result = call(url, "resolve_prediction", {"prediction_id": made["prediction_id"], "outcome": "incorrect"}, agent="ada")
    assert result["trace"]["stored"] is True, result
    found = sdk.call("memory.traces.get_trace", {"trace_id": result["trace"]["trace_id"]}, now=NOW, agent="ada",
                     database_url=url)
    assert found["found"] is True
    trace = found["trace"]
    assert trace["trace_type"] == "episodic" and trace["emotional_valence"] == -0.5 and trace["emotional_intensity"] == 0.6
    assert trace["unresolved"] is True and trace["confidence"] == 0.8
    assert trace["domain_tags"] == ["prediction", "fault_localization"]
    assert trace["content_payload"] == "prediction incorrect: mode=fault_localization confidence=0.8"
    other = sdk.call("memory.traces.get_trace", {"trace_id": result["trace"]["trace_id"]}, now=NOW, agent="bob",
                     database_url=url)
    assert other == {"found": False}  # the trace is ada's


# --- agents, arguments, properties -------------------------------------------------------------

def test_two_agents_never_see_each_others_predictions(url: str) -> None:
    made = call(url, "predict", {"mode": "fault_localization"}, agent="ada")
    predict_and_resolve(url, "correct", agent="ada")
    assert call(url, "get_prediction", {"prediction_id": made["prediction_id"]}, agent="bob") == {"found": False}
    assert call(url, "pending_predictions", agent="bob") == {"predictions": [], "count": 0}
    assert call(url, "prediction_accuracy", agent="bob") == {"accuracy": 0.0, "total_outcomes": 0}
    assert call(url, "resolve_prediction", {"prediction_id": made["prediction_id"], "outcome": "correct"}, agent="bob") == {
        "resolved": False, "reason": "not_found"}
    assert call(url, "expire_stale_predictions", agent="bob", now=NOW + timedelta(days=1))["expired_count"] == 0
    assert call(url, "pending_predictions", agent="ada")["count"] == 1


def test_misspelt_or_impossible_arguments_are_refused(url: str) -> None:
    made = call(url, "predict", {"mode": "counterfactual"})
    for function, args in (("resolve_prediction", {"prediction_id": made["prediction_id"], "outcome": "wrong"}),
                           ("predict", {"mode": "counterfactual", "confidence": 1.5}),
                           ("predict", {"mode": "counterfactual", "contxt": {}}),
                           ("prediction_accuracy", {"window": 0})):
        with pytest.raises(sdk.StepError) as refused:
            call(url, function, args)
        assert refused.value.type == "InvalidArguments"


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(outcomes=st.lists(st.sampled_from(["correct", "incorrect", "partial", "expired"]), max_size=6),
       elapsed=st.integers(0, 7200))
def test_accuracy_and_expiry_follow_the_record(shared_url: str, outcomes: list[str], elapsed: int) -> None:
    agent = f"agent-{next(AGENTS)}"
    for outcome in outcomes:
        predict_and_resolve(shared_url, outcome, agent=agent)
    accuracy = call(shared_url, "prediction_accuracy", agent=agent)
    assert accuracy["total_outcomes"] == len(outcomes)
    assert accuracy["accuracy"] == pytest.approx(outcomes.count("correct") / len(outcomes) if outcomes else 0.0)
    call(shared_url, "predict", {"mode": "boundary_testing"}, agent=agent)
    swept = call(shared_url, "expire_stale_predictions", agent=agent, now=NOW + timedelta(seconds=elapsed))
    assert swept["expired_count"] == (1 if elapsed > 3600 else 0) and swept["remaining_pending"] == 1 - swept["expired_count"]


@settings(max_examples=100)
@given(mode=st.sampled_from(helpers.REASONING_MODES), size=st.integers(0, 50), more=st.integers(0, 50))
def test_estimated_confidence_is_in_range_and_grows_with_the_context(mode: str, size: int, more: int) -> None:
    low, high = helpers.estimate_confidence(mode, size), helpers.estimate_confidence(mode, size + more)
    assert 0.0 <= low <= high <= 1.0 and high - helpers.BASE_CONFIDENCE[mode] <= 0.2 + 1e-12
