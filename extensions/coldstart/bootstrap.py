"""The agent's bootstrap state in its coldstart state (`ctx.state`): one document, kind
"bootstrap", key "state" (see coldstart.helpers)."""

from __future__ import annotations

from typing import Any

from legion.extensions.coldstart import helpers as h
from legion.sdk import Context

KIND = "bootstrap"
KEY = "state"


def load(ctx: Context) -> dict[str, Any]:
    return ctx.state.get(KIND, KEY) or h.fresh()


def save(ctx: Context, state: dict[str, Any]) -> None:
    ctx.state.put(KIND, KEY, state)


def begun(ctx: Context) -> dict[str, Any]:
    """The state, the imprint window begun now if it never was. LegionIO begins it when the
    process boots (a Once actor); an agent here has no boot of its own, so its window begins at
    its first coldstart call that acts (begin_imprint, record_observation, coldstart_progress,
    an ingest)."""
    state = load(ctx)
    if state["started_at"] is None:
        state = h.begin(state, ctx.now())
        save(ctx, state)
    return state
