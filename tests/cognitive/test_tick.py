"""The tick: the original design's transitions (the cases lex-tick's specs check, on the
design's constants), one mode step per tick (hypothesis), the orchestrator's state on the
run's clock, the inbox, and the rehearsals of the tick chain (chains/agents) for each mode and
transition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legion import sdk
from legion.engine.registry import Registry
from legion.engine.rehearsal import run_rehearsal
from legion.engine.yamlfiles import classify, find_yaml
from legion.extensions.tick import helpers as h

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0
HUMAN = {"value": "hi", "source_type": "human_direct", "salience": 1.0}
AMBIENT = {"value": "noise", "source_type": "ambient", "salience": 0.2}
LOUD = {"value": "alarm", "source_type": "ambient", "salience": 0.7}


def state(mode: str, **more: Any) -> dict[str, Any]:
    return dict(h.new_state(), mode=mode, **more)


def test_the_original_design_constants() -> None:
    assert h.MODES == ("dormant", "sentinel", "full_active")
    assert len(h.PHASES) == 11 and h.PHASES[0] == "sensory_processing" and h.PHASES[-1] == "memory_consolidation"
    assert h.MODE_PHASES["dormant"] == ("memory_consolidation",)
    assert h.MODE_PHASES["sentinel"] == ("sensory_processing", "emotional_evaluation", "memory_retrieval", "prediction_engine",
                                         "memory_consolidation")
    assert h.MODE_PHASES["full_active"] == h.PHASES
    assert round(sum(h.PHASE_BUDGETS.values()), 9) == 1.0
    assert (h.SENTINEL_TIMEOUT, h.ACTIVE_TIMEOUT, h.HIGH_SALIENCE_THRESHOLD) == (3600, 300, 0.7)
    assert h.EMERGENCY_TRIGGERS == ("firmware_violation", "extinction_protocol")


@pytest.mark.parametrize(("start", "signals", "emergency", "expected"), [
    (state("dormant"), [], None, None),
    (state("dormant"), [AMBIENT], None, ("sentinel", "threshold")),
    (state("dormant"), [HUMAN], None, ("sentinel", "threshold")),  # one step per tick: not straight to full_active
    (state("dormant"), [], "extinction_protocol", ("full_active", "emergency")),
    (state("sentinel"), [], "firmware_violation", ("full_active", "emergency")),
    (state("full_active"), [], "extinction_protocol", None),
    (state("dormant"), [], "something_else", None),
    (state("sentinel", last_signal_at=T0 - 10), [HUMAN], None, ("full_active", "threshold")),
    (state("sentinel", last_signal_at=T0 - 10), [LOUD], None, ("full_active", "threshold")),
    (state("sentinel", last_signal_at=T0 - 10), [AMBIENT], None, None),
    (state("sentinel", last_signal_at=T0 - 3600), [], None, ("dormant", "threshold")),
    (state("sentinel", last_signal_at=T0 - 3599), [], None, None),
    (state("sentinel"), [], None, None),  # never a signal: a fresh agent does not time out
    (state("full_active", last_signal_at=T0 - 400, last_high_salience_at=T0 - 300), [], None, ("sentinel", "threshold")),
    (state("full_active", last_signal_at=T0 - 10, last_high_salience_at=T0 - 299), [], None, None),
    (state("full_active", last_signal_at=T0 - 300), [], None, ("sentinel", "threshold")),  # no high salience: since the last signal
    (state("full_active"), [], None, ("sentinel", "threshold")),  # forced with no history: demotes at its next tick
    (state("full_active", last_high_salience_at=T0 - 1000), [HUMAN], None, None),
])
def test_transitions(start: dict[str, Any], signals: list[dict[str, Any]], emergency: str | None, expected: Any) -> None:
    assert h.transition(start, signals, emergency, T0) == expected


@settings(max_examples=200, deadline=None)
@given(mode=st.sampled_from(h.MODES), count=st.integers(0, 3), human=st.booleans(), salience=st.floats(0, 1),
       since=st.one_of(st.none(), st.floats(0, 10_000)), emergency=st.sampled_from([None, "extinction_protocol", "other"]))
def test_a_tick_takes_at_most_one_mode_step(mode: str, count: int, human: bool, salience: float, since: float | None,
                                             emergency: str | None) -> None:
    signals = [{"source_type": "human_direct" if human else "ambient", "salience": salience}] * count
    start = state(mode, last_signal_at=None if since is None else T0 - since)
    result, after = h.evaluate(start, signals, emergency, T0)
    order = {m: i for i, m in enumerate(h.MODES)}
    assert after["mode"] in h.MODES and after["tick_count"] == 1
    if emergency != "extinction_protocol":  # only an emergency jumps, and only to full_active
        assert abs(order[after["mode"]] - order[mode]) <= 1
    assert result["phases"] == list(h.MODE_PHASES[after["mode"]])
    assert result["transitioned"] == (after["mode"] != mode)
    if signals:
        assert after["last_signal_at"] == T0


def test_observations_are_in_range() -> None:
    seen = h.observations("Really?! Are you sure? Yes.", ["are you there", "sure"], 3600.0, 23)
    assert set(seen) == {"communication_cadence", "vocabulary_patterns", "emotional_response", "decision_patterns",
                         "contextual_consistency", "temporal_patterns"}
    assert all(0.0 <= v <= 1.0 for v in seen.values())
    assert seen["temporal_patterns"] == 1.0 and seen["communication_cadence"] == pytest.approx(3600 / 86400)


# ------------------------------------------------------------------ the runners, on the clock


@pytest.fixture()
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/tick.db"


def at(hours: float) -> datetime:
    return datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=hours)


def call(db: str, ref: str, args: dict[str, Any] | None = None, *, now: datetime, agent: str = "ada") -> Any:
    return sdk.call(ref, args or {}, now=now, agent=agent, database_url=db)


def test_the_orchestrator_keeps_its_state_on_the_run_clock(db: str) -> None:
    evaluate = "tick.orchestrator.evaluate_mode_transition"
    assert call(db, evaluate, {"signals": [AMBIENT]}, now=at(0))["new_mode"] == "sentinel"
    assert call(db, evaluate, {"signals": [HUMAN]}, now=at(0.1))["new_mode"] == "full_active"
    assert call(db, evaluate, now=at(0.1 + 299 / 3600))["transitioned"] is False
    assert call(db, evaluate, now=at(0.2))["new_mode"] == "sentinel"  # 360 s after the human message
    assert call(db, evaluate, now=at(1.09))["transitioned"] is False
    back = call(db, evaluate, now=at(1.1))  # an hour after the last signal
    assert (back["new_mode"], back["reason"], back["tick_number"]) == ("dormant", "threshold", 6)
    status = call(db, "tick.orchestrator.tick_status", now=at(1.1))
    assert status["mode"] == "dormant" and status["tick_count"] == 6 and len(status["mode_history"]) == 4
    assert status["seconds_since_signal"] == pytest.approx(3600)
    assert call(db, "tick.orchestrator.tick_status", now=at(0), agent="bob")["tick_count"] == 0  # another agent's own


def test_set_mode_holds_for_one_tick_and_refuses_unknown_modes(db: str) -> None:
    assert call(db, "tick.orchestrator.set_mode", {"mode": "full_active"}, now=at(0)) == {"mode": "full_active"}
    held = call(db, "tick.orchestrator.evaluate_mode_transition", now=at(1))
    assert held == dict(held, transitioned=False, current_mode="full_active")
    assert call(db, "tick.orchestrator.evaluate_mode_transition", now=at(1))["new_mode"] == "sentinel"
    assert call(db, "tick.orchestrator.set_mode", {"mode": "dreaming"}, now=at(1)) == {"error": "invalid_mode",
                                                                                       "valid_modes": list(h.MODES)}


def test_a_partner_message_waits_for_its_answer_and_is_new_once(db: str) -> None:
    first = call(db, "tick.inbox.receive", {"value": "Are you there?", "source_type": "human_direct"}, now=at(0))
    call(db, "tick.inbox.receive", {"value": "disk at 91%", "salience": 0.5}, now=at(0))
    drained = call(db, "tick.inbox.drain_signals", now=at(0))["signals"]
    assert [(s["value"], s["seen"]) for s in drained] == [("Are you there?", False), ("disk at 91%", False)]
    assert drained[0]["salience"] == 1.0 and set(drained[0]["observations"]) == set(h.observations("x", [], None, 0))
    again = call(db, "tick.inbox.drain_signals", now=at(0.1))["signals"]
    assert [(s["value"], s["seen"]) for s in again] == [("Are you there?", True)]  # ambient taken; the message waits
    attended = call(db, "tick.inbox.filter_signals", {"signals": again}, now=at(0.1))
    assert attended["last"] is None and attended["partner_messages"] == 0 and len(attended["signals"]) == 1
    call(db, "tick.inbox.reply", {"text": "Yes.", "in_reply_to": [first["id"]]}, now=at(0.2))
    talk = call(db, "tick.inbox.conversation", now=at(0.2))
    assert talk["waiting"] == [] and talk["replies"][0]["text"] == "Yes." and talk["replies"][0]["in_reply_to"] == [first["id"]]


def test_select_action_answers_the_partner_and_act_answers_by_rule(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEGION_LLM_MODEL", raising=False)
    nothing = call(db, "tick.action.select_action", {"signals": [AMBIENT]}, now=at(0))
    assert nothing["act"] is False and nothing["intent"] is None
    chosen = call(db, "tick.action.select_action", {"signals": [dict(HUMAN, id=3)], "gut": {"signal": "alarm"}}, now=at(0))
    assert chosen["act"] is True and chosen["intent"]["in_reply_to"] == [3] and chosen["intent"]["urgency"] == "high"
    done = call(db, "tick.action.act", {"intent": chosen["intent"], "memories": [{"content_payload": "the launch is Friday"}]},
                now=at(0))
    assert done == {"text": 'Noted: "hi". It brings to mind: the launch is Friday.', "by": "rule", "model": None}
    with pytest.raises(sdk.StepError) as bad:
        call(db, "tick.action.act", {"intent": {"kind": "dance"}}, now=at(0))
    assert bad.value.type == "InvalidArguments"


# ------------------------------------------------------------------ the tick chain, rehearsed

REHEARSALS = [p for p in find_yaml([ROOT / "chains" / "agents"]) if classify(p) == "rehearsal"]


def test_every_mode_and_transition_is_rehearsed() -> None:
    names = {p.name for p in REHEARSALS}
    assert {"tick-dormant.test.yaml", "tick-dormant-to-sentinel.test.yaml", "tick-sentinel-to-full-active.test.yaml",
            "tick-sentinel-to-dormant.test.yaml", "tick-full-active-to-sentinel.test.yaml", "tick-emergency.test.yaml",
            "heartbeat.test.yaml"} <= names


@pytest.mark.parametrize("path", REHEARSALS, ids=lambda p: p.name)
def test_the_tick_chain_rehearsals_pass(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEGION_LLM_MODEL", raising=False)
    report = run_rehearsal(path, Registry.installed())
    assert report.passed, report
