"""Where emotion keeps an agent's documents (ctx.state of the `emotion` extension).

- `baseline/dimensions`: the four running baselines `{urgency: {mean, stddev, count}, ...}`.
- `domains/<domain>`: `{count}` signals seen of that domain ("" for signals with none).
- `momentum/current`: `{valence_ema, arousal_ema, stability, updates}`.
- `history/<n>`: the momentum updates, a ring of 100 documents `{valence, arousal, at}`
  keyed by update number modulo 100, so an update writes one small document.
"""

from __future__ import annotations

from typing import Any

from legion.extensions.emotion import helpers
from legion.sdk import AgentState


def baseline(state: AgentState) -> helpers.Baseline:
    found = state.get("baseline", "dimensions")
    return found if found is not None else helpers.new_baseline()


def put_baseline(state: AgentState, dimensions: helpers.Baseline) -> None:
    state.put("baseline", "dimensions", dimensions)


def domain_count(state: AgentState, domain: str | None) -> int:
    found = state.get("domains", domain or "")
    return int(found["count"]) if found is not None else 0


def put_domain_count(state: AgentState, domain: str | None, count: int) -> None:
    state.put("domains", domain or "", {"count": count})


def momentum(state: AgentState) -> dict[str, Any]:
    found = state.get("momentum", "current")
    return found if found is not None else helpers.new_momentum()


def record_momentum(state: AgentState, updated: dict[str, Any], valence: helpers.Valence, arousal: float, at: str) -> None:
    """Keep the new momentum and its history entry (the ring slot of this update)."""
    state.put("momentum", "current", updated)
    slot = (int(updated["updates"]) - 1) % helpers.MOMENTUM_HISTORY
    state.put("history", str(slot), {"valence": valence, "arousal": arousal, "at": at})
