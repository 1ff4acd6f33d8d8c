"""Agents as a whole: which of them a scheduled heartbeat wakes."""

from __future__ import annotations

from typing import Any

from legion.sdk import Context

__all__ = ["list_agents"]


def list_agents(ctx: Context) -> dict[str, Any]:
    """The agents on record that were not erased: {agents: [name, ...], count}. The heartbeat
    chain (chains/agents/heartbeat.yaml) runs one tick per agent from it."""
    names = ctx.agents()
    return {"agents": names, "count": len(names)}
