"""coldstart.coldstart: the imprint window (the agent's first 7 days, when what it learns is
reinforced threefold) and the calibration state machine."""

from __future__ import annotations

from typing import Any

from legion.extensions.coldstart import bootstrap
from legion.extensions.coldstart import helpers as h
from legion.sdk import Context

__all__ = ["begin_imprint", "record_observation", "coldstart_progress", "imprint_active", "current_multiplier"]


def begin_imprint(force: bool = False, *, ctx: Context) -> dict[str, Any]:
    """Begin the imprint window now (loading the firmware layer first): {started, started_at,
    imprint_duration, multiplier, consent_tier}. Idempotent: a window already begun is left as
    it is (started: false, reason: "already_started") unless `force` restarts it.

    Args:
        force: restart the window (and the calibration at imprinting) even if it already began
    """
    state = bootstrap.load(ctx)
    began = state["started_at"] is None or force
    if began:
        state = h.begin(state, ctx.now())
        bootstrap.save(ctx, state)
    result: dict[str, Any] = {"started": began}
    if not began:
        result["reason"] = "already_started"
    return {**result, "started_at": state["started_at"], "imprint_duration": h.IMPRINT_DURATION,
            "multiplier": h.IMPRINT_MULTIPLIER, "consent_tier": h.IMPRINT_CONSENT_TIER}


def record_observation(*, ctx: Context) -> dict[str, Any]:
    """Count one observation of the partner; at 50 the baseline is established (while the
    window is open) or the agent calibrated (once it is over): {observation_count,
    calibration_state, current_layer}."""
    now = ctx.now()
    state = h.observe(bootstrap.begun(ctx), now)
    bootstrap.save(ctx, state)
    return {"observation_count": state["observation_count"], "calibration_state": state["calibration_state"],
            "current_layer": h.current_layer(state, now)}


def coldstart_progress(*, ctx: Context) -> dict[str, Any]:
    """Where the agent is in its cold start (the tick's procedural_check phase):
    {firmware_loaded, imprint_active, imprint_progress (0..1), observation_count,
    calibration_state, current_layer}. A baseline established is calibrated once the window is
    over, without waiting for another observation."""
    now = ctx.now()
    state = bootstrap.begun(ctx)
    report = h.progress(state, now)
    if report["calibration_state"] != state["calibration_state"]:
        bootstrap.save(ctx, {**state, "calibration_state": report["calibration_state"]})
    return report


def imprint_active(*, ctx: Context) -> dict[str, Any]:
    """Whether the imprint window is open now: {active} (LegionIO's `imprint_active?`). Only
    reads: it does not begin the window."""
    return {"active": h.imprint_active(bootstrap.load(ctx)["started_at"], ctx.now())}


def current_multiplier(*, ctx: Context) -> dict[str, Any]:
    """The reinforcement multiplier now: {multiplier: 3.0 in the imprint window else 1.0,
    imprint_active}. Only reads: it does not begin the window."""
    started_at = bootstrap.load(ctx)["started_at"]
    return {"multiplier": h.multiplier(started_at, ctx.now()), "imprint_active": h.imprint_active(started_at, ctx.now())}
