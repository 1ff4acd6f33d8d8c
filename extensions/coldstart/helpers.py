"""Coldstart: the imprint window and the calibration state machine, as pure functions of the
bootstrap state and `now` (LegionIO's lex-coldstart Helpers::Imprint and Helpers::Bootstrap).

The bootstrap state is one small document per agent:
    {"started_at": ISO | None, "observation_count": int, "firmware_loaded": bool, "calibration_state": str}
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, get_args

Layer = Literal["firmware", "imprint_window", "continuous_learning"]
CalibrationState = Literal["not_started", "imprinting", "baseline_established", "calibrated"]

LAYERS: tuple[str, ...] = get_args(Layer)
CALIBRATION_STATES: tuple[str, ...] = get_args(CalibrationState)

IMPRINT_DURATION = 7 * 86_400  # seconds: the imprint window lasts 7 days
IMPRINT_MULTIPLIER = 3.0  # memory reinforcement during the window
IMPRINT_CONSENT_TIER = "consult"  # conservative consent during the window
IMPRINT_ENTROPY_BASELINE = 50  # observations before the behavioural baseline means anything
SELF_PLAY_ITERATIONS = 100  # defined by LegionIO, used nowhere (kept for reference)
BOOTSTRAP_TRACE_TYPES = ("identity", "semantic", "procedural")  # defined by LegionIO, used nowhere


def fresh() -> dict[str, Any]:
    """The bootstrap state of an agent that has not begun."""
    return {"started_at": None, "observation_count": 0, "firmware_loaded": False, "calibration_state": "not_started"}


def elapsed(started_at: str | None, now: datetime) -> float | None:
    """Seconds since the window began (never negative); None when it never began."""
    if started_at is None:
        return None
    start = datetime.fromisoformat(started_at)
    start = start.replace(tzinfo=UTC) if start.tzinfo is None else start
    return max((now - start).total_seconds(), 0.0)


def imprint_active(started_at: str | None, now: datetime) -> bool:
    """Began, and less than IMPRINT_DURATION ago."""
    seconds = elapsed(started_at, now)
    return seconds is not None and seconds < IMPRINT_DURATION


def imprint_progress(started_at: str | None, now: datetime) -> float:
    """How far through the window, 0..1; 1.0 when it never began (as LegionIO)."""
    seconds = elapsed(started_at, now)
    return 1.0 if seconds is None else min(seconds / IMPRINT_DURATION, 1.0)


def current_layer(state: Mapping[str, Any], now: datetime) -> Layer:
    """firmware until the firmware is loaded, then imprint_window while the window is open,
    then continuous_learning."""
    if not state["firmware_loaded"]:
        return "firmware"
    return "imprint_window" if imprint_active(state["started_at"], now) else "continuous_learning"


def multiplier(started_at: str | None, now: datetime) -> float:
    return IMPRINT_MULTIPLIER if imprint_active(started_at, now) else 1.0


def calibration(state: Mapping[str, Any], now: datetime) -> CalibrationState:
    """The calibration state the machine is in at `now`: not_started -> imprinting (begun) ->
    baseline_established (>= 50 observations while the window is open) -> calibrated
    (>= 50 observations and the window over). A state never goes back (only begin_imprint
    with force restarts the machine at imprinting)."""
    current: CalibrationState = state["calibration_state"]
    if current in ("not_started", "calibrated") or state["observation_count"] < IMPRINT_ENTROPY_BASELINE:
        return current
    return "baseline_established" if imprint_active(state["started_at"], now) else "calibrated"


def begin(state: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The state once the window begins at `now` (the firmware loaded first, as LegionIO's
    begin_imprint does); observations already counted are kept."""
    return {**state, "firmware_loaded": True, "started_at": now.astimezone(UTC).isoformat(), "calibration_state": "imprinting"}


def observe(state: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The state after one more observation at `now`."""
    counted = {**state, "observation_count": int(state["observation_count"]) + 1}
    return {**counted, "calibration_state": calibration(counted, now)}


def progress(state: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """What coldstart_progress reports."""
    return {
        "firmware_loaded": bool(state["firmware_loaded"]),
        "imprint_active": imprint_active(state["started_at"], now),
        "imprint_progress": imprint_progress(state["started_at"], now),
        "observation_count": int(state["observation_count"]),
        "calibration_state": calibration(state, now),
        "current_layer": current_layer(state, now),
    }
