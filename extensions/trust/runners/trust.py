"""Trust in other agents, per agent and domain, on four dimensions (LegionIO's
`Social::Trust::Runners::Trust`): `trust.trust.<function>`.

Each (agent_id, domain) pair is one document of kind "entries" in the calling agent's state
(`ctx.state`), so trust outlives the process (LegionIO kept it in memory). Decay is applied
for the time elapsed on the run's clock (`ctx.now()`): reads show trust decayed up to now
without writing; writes store it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field

from legion.extensions.trust import helpers as h
from legion.sdk import Context

__all__ = ["get_trust", "record_trust_interaction", "reinforce_trust_dimension", "decay_trust", "trusted_agents",
           "delegatable_agents", "trust_status"]

KIND = "entries"

AgentId = Annotated[str, Field(min_length=1, description="the other agent's id: whom the trust is in")]
Domain = Annotated[str, Field(min_length=1, description="what the trust is about (trust in one domain says nothing of another)")]
Dimension = Annotated[Literal["reliability", "competence", "integrity", "benevolence"], Field(description="the dimension to move")]


def _load(ctx: Context, agent_id: str, domain: str) -> h.Entry | None:
    return ctx.state.get(KIND, h.entry_key(agent_id, domain))


def _change(ctx: Context, agent_id: str, domain: str, change: Callable[[h.Entry | None], h.Entry]) -> h.Entry:
    """Read, change and write one entry atomically: two interactions recorded at once both count."""
    return ctx.state.update(KIND, h.entry_key(agent_id, domain), change)  # type: ignore[arg-type, return-value]


def _all_now(ctx: Context) -> list[h.Entry]:
    """Every entry, decayed up to now (read only)."""
    now = ctx.now()
    return [h.decayed(e, now) for e in ctx.state.items(KIND).values()]


def get_trust(ctx: Context, agent_id: AgentId, domain: Domain = h.DEFAULT_DOMAIN) -> dict[str, Any]:
    """The trust in `agent_id` for `domain`, decayed up to now: {found: true, trust: {agent_id,
    domain, dimensions, composite, interaction_count, positive_count, negative_count,
    last_interaction, created_at}}, or {found: false, agent_id, domain} for an agent never
    met in that domain (nothing is created)."""
    entry = _load(ctx, agent_id, domain)
    if entry is None:
        return {"found": False, "agent_id": agent_id, "domain": domain}
    return {"found": True, "trust": h.public(h.decayed(entry, ctx.now()))}


def record_trust_interaction(ctx: Context, agent_id: AgentId,
                             positive: Annotated[bool, Field(description="whether the interaction went well")],
                             domain: Domain = h.DEFAULT_DOMAIN) -> dict[str, Any]:
    """Record one interaction with `agent_id` in `domain` (the entry is made on first contact,
    at NEUTRAL_TRUST): every dimension gains 0.05 when it went well and loses 0.15 when it did
    not. {agent_id, domain, positive, composite, interactions}."""
    now = ctx.now()
    entry = _change(ctx, agent_id, domain, lambda e: h.record_interaction(e or h.new_trust_entry(agent_id, domain, now), positive, now))
    ctx.log.info("trust interaction: agent=%s domain=%s positive=%s composite=%.2f total=%d", agent_id, domain, positive,
                 entry["composite"], entry["interaction_count"])
    return {"agent_id": agent_id, "domain": domain, "positive": positive, "composite": entry["composite"],
            "interactions": entry["interaction_count"]}


def reinforce_trust_dimension(ctx: Context, agent_id: AgentId, dimension: Dimension, domain: Domain = h.DEFAULT_DOMAIN,
                              amount: Annotated[float | None, Field(allow_inf_nan=False, description=(
                                  "how far to move the dimension (clamped to [0, 1]); default 0.05"))] = None) -> dict[str, Any]:
    """Move one dimension of the trust in `agent_id` (made on first contact): {agent_id,
    domain, dimension, composite}."""
    now = ctx.now()
    step = h.TRUST_REINFORCEMENT if amount is None else amount
    entry = _change(ctx, agent_id, domain, lambda e: h.reinforce_dimension(e or h.new_trust_entry(agent_id, domain, now), dimension, step, now))
    return {"agent_id": agent_id, "domain": domain, "dimension": dimension, "composite": entry["composite"]}


def decay_trust(ctx: Context) -> dict[str, Any]:
    """Store every entry decayed up to now (0.005 per 300 s elapsed since its last decay,
    floored at 0): {decayed: the number of entries}. Reads decay on their own, so this only
    writes down what they would show; calling it twice at one moment changes nothing."""
    entries = _all_now(ctx)
    if entries:
        ctx.state.put_many(KIND, {h.entry_key(e["agent_id"], e["domain"]): e for e in entries})
    return {"decayed": len(entries)}


def trusted_agents(ctx: Context, domain: Domain = h.DEFAULT_DOMAIN,
                   min_trust: Annotated[float | None, Field(ge=0, le=1, description=(
                       "the least composite trust (default TRUST_CONSIDER_THRESHOLD, 0.3)"))] = None) -> dict[str, Any]:
    """The agents whose composite trust in `domain` is at least `min_trust`, most trusted first:
    {agents: [trust entries], count}."""
    floor = h.TRUST_CONSIDER_THRESHOLD if min_trust is None else min_trust
    agents = [h.public(e) for e in h.trusted(_all_now(ctx), domain, floor)]
    return {"agents": agents, "count": len(agents)}


def delegatable_agents(ctx: Context, domain: Domain = h.DEFAULT_DOMAIN) -> dict[str, Any]:
    """The agents trusted enough in `domain` to delegate to (composite at least
    TRUST_DELEGATE_THRESHOLD, 0.7), most trusted first: {agents, count}."""
    agents = [h.public(e) for e in h.trusted(_all_now(ctx), domain, h.TRUST_DELEGATE_THRESHOLD)]
    return {"agents": agents, "count": len(agents)}


def trust_status(ctx: Context) -> dict[str, Any]:
    """{total_entries}: how many (agent, domain) pairs are known."""
    return {"total_entries": len(ctx.state.items(KIND))}
