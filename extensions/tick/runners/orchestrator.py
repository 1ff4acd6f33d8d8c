"""The cycle's orchestration (LegionIO's Tick::Runners::Orchestrator). In Legion the tick itself
is a chain (chains/agents/tick.yaml): these functions are its first and last steps, and what
an operator asks of an agent's mode."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from legion.extensions.tick import helpers as h
from legion.sdk import Context

__all__ = ["tick_status", "evaluate_mode_transition", "set_mode", "record_tick"]

KIND, KEY = "tick", "state"
Signals = Annotated[list[dict[str, Any]], Field(description="this tick's signals: [{value, source_type, salience, ...}]")]


def _load(ctx: Context) -> dict[str, Any]:
    return ctx.state.get(KIND, KEY) or h.new_state()


def _epoch(ctx: Context) -> float:
    return ctx.now().timestamp()


def tick_status(ctx: Context) -> dict[str, Any]:
    """The agent's cycle: {mode, tick_count, last_signal_at, last_high_salience_at (epoch
    seconds or null), seconds_since_signal, phases_completed, mode_history (the last 50
    transitions)}."""
    state = _load(ctx)
    since = None if state.get("last_signal_at") is None else _epoch(ctx) - float(state["last_signal_at"])
    return {"mode": state["mode"], "tick_count": state["tick_count"], "last_signal_at": state.get("last_signal_at"),
            "last_high_salience_at": state.get("last_high_salience_at"), "seconds_since_signal": since,
            "phases_completed": state.get("phases_completed", []), "mode_history": state.get("mode_history", [])}


def evaluate_mode_transition(ctx: Context, signals: Signals | None = None,
                             emergency: Annotated[str | None, Field(description="an emergency trigger in force: "
                                                                    "firmware_violation or extinction_protocol")] = None,
                             status: Annotated[dict[str, Any] | None, Field(description="the tick state to start from "
                                                                            "(tick_status's result); default: the agent's")] = None,
                             ) -> dict[str, Any]:
    """Begin a tick: count it, see its signals and take at most one mode step.
    {transitioned: true, new_mode, previous_mode, reason: threshold|emergency} or
    {transitioned: false, current_mode}; with mode, tick_number, phases (the mode's),
    max_salience and human (a human_direct signal came)."""
    start = _load(ctx) if status is None else dict(h.new_state(), **{k: v for k, v in status.items() if k in h.new_state()})
    if status is not None:
        stored = _load(ctx)
        start["protected"] = stored.get("protected", False)
    result, state = h.evaluate(start, list(signals or []), emergency, _epoch(ctx))
    ctx.state.put(KIND, KEY, state)
    if result["transitioned"]:
        ctx.log.info("tick %d: %s -> %s (%s)", result["tick_number"], result["previous_mode"], result["new_mode"], result["reason"])
    return result


def set_mode(ctx: Context, mode: Annotated[str, Field(description="dormant, sentinel or full_active")]) -> dict[str, Any]:
    """Put the agent in `mode` now; the next tick keeps it (evaluates no transition) once.
    {mode} or, for a mode that does not exist, {error: invalid_mode, valid_modes}."""
    if mode not in h.MODES:
        return {"error": "invalid_mode", "valid_modes": list(h.MODES)}
    state = _load(ctx)
    if state["mode"] != mode:
        state["mode_history"] = [*state.get("mode_history", []), {"from": state["mode"], "to": mode, "reason": "set_mode",
                                                                   "at": _epoch(ctx)}][-h.MODE_HISTORY_LIMIT:]
    state.update(mode=mode, protected=True)
    ctx.state.put(KIND, KEY, state)
    return {"mode": mode}


def record_tick(ctx: Context,
                phases: Annotated[list[str], Field(description="the phases this tick ran, in order")],
                tick_number: Annotated[int | None, Field(description="the tick's number (evaluate_mode_transition's)")] = None,
                ) -> dict[str, Any]:
    """End a tick: keep which phases ran. {tick_number, mode, phases_executed, phases_skipped}
    (skipped: the mode's phases that did not run)."""
    state = _load(ctx)
    unknown = [p for p in phases if p not in h.PHASES]
    ran = [p for p in phases if p in h.PHASES]
    state["phases_completed"] = ran
    ctx.state.put(KIND, KEY, state)
    skipped = [p for p in h.MODE_PHASES[state["mode"]] if p not in ran]
    result: dict[str, Any] = {"tick_number": tick_number if tick_number is not None else state["tick_count"], "mode": state["mode"],
                              "phases_executed": ran, "phases_skipped": skipped}
    if unknown:
        result["unknown_phases"] = unknown
    return result
