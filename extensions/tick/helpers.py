"""The cognitive cycle's constants and rules (lex-tick's original design: 3 modes, 11 phases),
as pure functions of a tick state, the tick's signals and the time: no clock, no I/O.

A tick state is a JSON dict: {mode, tick_count, last_signal_at, last_high_salience_at
(epoch seconds or None), mode_history [{from, to, reason, at}], phases_completed, protected}.
"""

from __future__ import annotations

from typing import Any, Literal

Mode = Literal["dormant", "sentinel", "full_active"]
MODES: tuple[str, ...] = ("dormant", "sentinel", "full_active")
PHASES: tuple[str, ...] = (
    "sensory_processing", "emotional_evaluation", "memory_retrieval", "identity_entropy_check", "working_memory_integration",
    "procedural_check", "prediction_engine", "mesh_interface", "gut_instinct", "action_selection", "memory_consolidation",
)
MODE_PHASES: dict[str, tuple[str, ...]] = {
    "dormant": ("memory_consolidation",),
    "sentinel": ("sensory_processing", "emotional_evaluation", "memory_retrieval", "prediction_engine", "memory_consolidation"),
    "full_active": PHASES,
}
# Each phase's share of a tick's budget, in the order of PHASES (informational, as in LegionIO).
PHASE_BUDGETS: dict[str, float] = dict(zip(PHASES, (0.15, 0.10, 0.20, 0.05, 0.05, 0.10, 0.15, 0.05, 0.05, 0.05, 0.05), strict=True))
EMERGENCY_TRIGGERS: tuple[str, ...] = ("firmware_violation", "extinction_protocol")
SENTINEL_TIMEOUT = 3600.0  # seconds without any signal before sentinel falls back to dormant
ACTIVE_TIMEOUT = 300.0  # seconds without a high-salience signal before full_active falls back to sentinel
HIGH_SALIENCE_THRESHOLD = 0.7
HUMAN_DIRECT = "human_direct"
MODE_HISTORY_LIMIT = 50


def new_state() -> dict[str, Any]:
    return {"mode": "dormant", "tick_count": 0, "last_signal_at": None, "last_high_salience_at": None, "mode_history": [],
            "phases_completed": [], "protected": False}


def salience(signal: dict[str, Any]) -> float:
    try:
        return max(0.0, min(1.0, float(signal.get("salience") or 0.0)))
    except (TypeError, ValueError):
        return 0.0


def is_human(signal: dict[str, Any]) -> bool:
    return signal.get("source_type") == HUMAN_DIRECT


def high(signals: list[dict[str, Any]]) -> bool:
    """A signal that wakes an agent fully: a human speaking to it, or salience at or over 0.7."""
    return any(is_human(s) or salience(s) >= HIGH_SALIENCE_THRESHOLD for s in signals)


def record_signals(state: dict[str, Any], signals: list[dict[str, Any]], now: float) -> dict[str, Any]:
    """The state once this tick's signals are seen (LegionIO's record_signal)."""
    state = dict(state)
    if signals:
        state["last_signal_at"] = now
        if high(signals):
            state["last_high_salience_at"] = now
    return state


def transition(state: dict[str, Any], signals: list[dict[str, Any]], emergency: str | None, now: float) -> tuple[str, str] | None:
    """The one mode step this tick takes, as (new mode, reason), or None. Evaluated from the
    state as it was before this tick's signals were recorded, in the original design's order:

    - any mode -> full_active on an emergency trigger (reason "emergency");
    - dormant -> sentinel on any signal;
    - sentinel -> full_active on a human_direct signal or salience >= 0.7;
    - sentinel -> dormant after SENTINEL_TIMEOUT s without any signal;
    - full_active -> sentinel after ACTIVE_TIMEOUT s without a high-salience signal.
    """
    mode = state.get("mode", "dormant")
    if emergency in EMERGENCY_TRIGGERS:
        return ("full_active", "emergency") if mode != "full_active" else None
    if mode == "dormant":
        return ("sentinel", "threshold") if signals else None
    if mode == "sentinel":
        if high(signals):
            return "full_active", "threshold"
        if not signals and _since(state.get("last_signal_at"), now) >= SENTINEL_TIMEOUT:
            return "dormant", "threshold"
        return None
    if mode == "full_active":
        if high(signals):
            return None
        return ("sentinel", "threshold") if cooldown(state, now) >= ACTIVE_TIMEOUT else None
    return None


def cooldown(state: dict[str, Any], now: float) -> float:
    """Seconds since the last high-salience signal, else since the last signal, else
    ACTIVE_TIMEOUT (a full_active with no history falls back at its next tick)."""
    for key in ("last_high_salience_at", "last_signal_at"):
        if state.get(key) is not None:
            return now - float(state[key])
    return ACTIVE_TIMEOUT


def _since(at: float | None, now: float) -> float:
    """Seconds since `at`; 0 when nothing was ever seen (a fresh agent does not time out)."""
    return 0.0 if at is None else now - float(at)


def evaluate(state: dict[str, Any], signals: list[dict[str, Any]], emergency: str | None, now: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """One tick's evaluation: (the result LegionIO's evaluate_mode_transition returns, with the
    mode and its phases; the new state). A mode set by `set_mode` is kept for one tick."""
    previous = state.get("mode", "dormant")
    step = None if state.get("protected") else transition(state, signals, emergency, now)
    new = record_signals(state, signals, now)
    new["protected"] = False
    new["tick_count"] = int(state.get("tick_count", 0)) + 1
    new["phases_completed"] = []
    if step is None:
        result: dict[str, Any] = {"transitioned": False, "current_mode": previous}
    else:
        mode, reason = step
        new["mode"] = mode
        new["mode_history"] = ([*state.get("mode_history", []), {"from": previous, "to": mode, "reason": reason, "at": now}]
                               [-MODE_HISTORY_LIMIT:])
        result = {"transitioned": True, "new_mode": mode, "previous_mode": previous, "reason": reason}
    mode = new.get("mode", "dormant")
    result.update(mode=mode, tick_number=new["tick_count"], phases=list(MODE_PHASES[mode]),
                  max_salience=max((salience(s) for s in signals), default=0.0), human=any(is_human(s) for s in signals))
    return result, new


def observations(text: str, previous: list[str], gap: float | None, hour: int) -> dict[str, float]:
    """The partner's behaviour in one message, on identity's six dimensions, each in [0, 1]:
    how soon after their last message (cadence: a day or more is 1), how varied their words
    are, how emphatic they are (! and ?), how often they ask rather than tell, how much they
    stay with the words of their recent messages, and the hour of day."""
    words = [w.strip(".,;:!?\"'()").lower() for w in text.split()]
    words = [w for w in words if w]
    marks = sum(text.count(c) for c in "!?")
    sentences = max(1, sum(text.count(c) for c in ".!?"))
    earlier = {w.strip(".,;:!?\"'()").lower() for message in previous for w in message.split()}
    return {
        "communication_cadence": 1.0 if gap is None else min(1.0, max(0.0, gap) / 86_400.0),
        "vocabulary_patterns": len(set(words)) / len(words) if words else 0.0,
        "emotional_response": min(1.0, marks / max(1, len(words)) * 5),
        "decision_patterns": min(1.0, text.count("?") / sentences),
        "contextual_consistency": (sum(1 for w in set(words) if w in earlier) / len(set(words))) if words and earlier else 0.0,
        "temporal_patterns": (hour % 24) / 23.0,
    }
