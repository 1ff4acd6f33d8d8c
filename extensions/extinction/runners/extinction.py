"""The extinction protocol: five levels of containment, escalated and de-escalated under
authority and reversibility rules, with an archive, and a working level-4 erasure
(LegionIO's lex-extinction runner).

State, per agent: kind "protocol" key "state" ({current_level, history_seq, last_change,
erasure_pending}), kind "history" (one document per change, keyed by its sequence number, the
last 500 kept) and kind "archives" (one per archive record). Level 4 erases the agent: every
document of every extension, and its key, so its own archive record cannot be kept in its
state: the result carries it (the run's task record is that archive).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field

from legion.extensions.extinction import helpers as h
from legion.sdk import Context, StepError, function

__all__ = ["escalate", "deescalate", "extinction_status", "protocol_status", "check_reversibility", "monitor_protocol",
           "archive_agent", "all_archives", "full_termination"]

PROTOCOL, HISTORY, ARCHIVES = "protocol", "history", "archives"
ERASER = "privatecore.privatecore.full_erasure"
GOVERNANCE = "governance.governance.validate_action"

Level = Annotated[int, Field(description="0 normal, 1 mesh_isolation, 2 capability_suspension, 3 memory_lockdown, "
                                         "4 cryptographic_erasure")]
AuthorityArg = Annotated[h.Authority, Field(description="who decides: governance_council (levels 1-2), "
                                                        "council_plus_executive (3), physical_keyholders (4)")]
Reason = Annotated[str, Field(description="why")]
AgentId = Annotated[str | None, Field(description="the agent (default, or 'self': the run's agent)")]


def _load(ctx: Context) -> dict[str, Any]:
    return ctx.state.get(PROTOCOL, "state") or {"current_level": 0, "history_seq": 0, "last_change": None,
                                                 "erasure_pending": False}


def _record(ctx: Context, protocol: dict[str, Any], entry: dict[str, Any], *, erasure_pending: bool = False) -> dict[str, Any]:
    """Append a history entry (dropping the one that falls out of the last MAX_HISTORY) and
    write the new protocol state."""
    seq = protocol["history_seq"] + 1
    ctx.state.put(HISTORY, f"{seq:09d}", entry)
    if seq > h.MAX_HISTORY:
        ctx.state.delete(HISTORY, f"{seq - h.MAX_HISTORY:09d}")
    updated = {"current_level": entry["to"], "history_seq": seq, "last_change": entry, "erasure_pending": erasure_pending}
    ctx.state.put(PROTOCOL, "state", updated)
    return updated


def _history(ctx: Context) -> list[dict[str, Any]]:
    kept = ctx.state.items(HISTORY)
    return [kept[k] for k in sorted(kept)]


def _agent(ctx: Context, agent_id: str | None) -> str:
    return ctx.agent if agent_id in (None, "", "self") else str(agent_id)


def _installed(ctx: Context, function: str) -> bool:
    try:
        ctx.describe(function)
    except StepError:
        return False
    return True


def _snapshot(ctx: Context, protocol: dict[str, Any]) -> dict[str, Any]:
    return {"level": protocol["current_level"], "history_count": min(protocol["history_seq"], h.MAX_HISTORY),
            "privatecore_active": _installed(ctx, ERASER), "governance_active": _installed(ctx, GOVERNANCE)}


def _archive(ctx: Context, agent_id: str, reason: str, metadata: dict[str, Any], protocol: dict[str, Any]) -> dict[str, Any]:
    record = h.archive_record(agent_id, reason, metadata, protocol["current_level"], ctx.now(), _snapshot(ctx, protocol))
    ctx.state.put(ARCHIVES, str(uuid.uuid4()), record)
    return record


def _erase(ctx: Context, reason: str) -> dict[str, Any]:
    """Erase the agent through privatecore (LegionIO's level 4 called a `full_erasure` its
    client did not have); the engine's erasure directly when privatecore is not installed."""
    try:
        return dict(ctx.call(ERASER, {"reason": reason}))
    except StepError as exc:
        if exc.type != "UnknownFunction":
            raise StepError(f"the cryptographic erasure of agent {ctx.agent!r} failed ({exc.type}: {exc.message}); level 4 "
                            "is recorded with its erasure pending: escalate to level 4 again to finish it",
                            type="ErasureFailed") from exc
    count = ctx.erase_agent()
    return {"erased": True, "agent_id": ctx.agent, "documents_erased": count, "key_deleted": True,
            "erased_at": ctx.now().isoformat()}


def _escalate(ctx: Context, level: int, authority: str, reason: str, metadata: dict[str, Any]) -> dict[str, Any]:
    protocol = _load(ctx)
    refused = h.check_escalation(protocol["current_level"], level, authority, erasure_pending=bool(protocol["erasure_pending"]))
    if refused is not None:
        return refused
    now = ctx.now()
    previous = protocol["current_level"]
    if previous != level:  # not the retry of an unfinished erasure
        entry = h.history_entry("escalate", previous, level, authority, reason, now)
        protocol = _record(ctx, protocol, entry, erasure_pending=level == h.ERASURE_LEVEL)
    events = h.escalation_events(level, authority, reason, now)
    ctx.log.warning("extinction: escalated %d -> %d (%s) by %s: %s", previous, level, h.LEVELS[level]["name"], authority, reason)
    result: dict[str, Any] = {"success": True, "previous_level": previous, "current_level": level, "events": events}
    if level == h.ERASURE_LEVEL:
        # The archive record says what is erased and when. It cannot live in the agent's state
        # (erased with it): it is returned, and the run's task record keeps it.
        archive = h.archive_record(ctx.agent, reason, {"triggered_by": "escalate", **metadata}, level, now,
                                   _snapshot(ctx, protocol))
        archive["history"] = _history(ctx)
        erasure = _erase(ctx, reason)
        archive["erasure"] = erasure
        result.update(archive=archive, erasure=erasure)
    elif h.ARCHIVE_ON_ESCALATE and level >= h.ARCHIVE_FROM_LEVEL:
        result["archive"] = _archive(ctx, ctx.agent, f"auto-archive at level {level}", {"triggered_by": "escalate", **metadata},
                                     protocol)
    return result


@function(expose=False)  # level 4 is irreversible: off the REST API and the MCP tools (chains and the CLI only)
def escalate(ctx: Context, level: Level, authority: AuthorityArg, reason: Reason) -> dict[str, Any]:
    """Raise the protocol to `level` (above the current one) with the authority that level
    requires: {success: true, previous_level, current_level, events} (+ archive at level 3;
    + archive and erasure at level 4, which erases the agent for good), or {success: false,
    reason: invalid_level | invalid_escalation | insufficient_authority, required, provided}."""
    return _escalate(ctx, level, authority, reason, {})


def deescalate(ctx: Context, target_level: Level, authority: AuthorityArg, reason: Reason) -> dict[str, Any]:
    """Lower the protocol to `target_level`, with the authority the *current* level required:
    {success: true, previous_level, current_level, events}, or {success: false, reason:
    invalid_level | invalid_deescalation | not_reversible | insufficient_authority, ...}."""
    protocol = _load(ctx)
    refused = h.check_deescalation(protocol["current_level"], target_level, authority)
    if refused is not None:
        return refused
    now = ctx.now()
    previous = protocol["current_level"]
    _record(ctx, protocol, h.history_entry("deescalate", previous, target_level, authority, reason, now))
    ctx.log.warning("extinction: de-escalated %d -> %d by %s: %s", previous, target_level, authority, reason)
    return {"success": True, "previous_level": previous, "current_level": target_level,
            "events": h.deescalation_events(target_level, authority, reason, now)}


def extinction_status(ctx: Context) -> dict[str, Any]:
    """{success: true, state: {current_level, level_name, reversible, history_count,
    last_change}, level_info: {name, authority_required, reversible, description}}."""
    state = h.protocol_view(_load(ctx))
    return {"success": True, "state": state, "level_info": h.level_info(state["current_level"])}


def protocol_status(ctx: Context) -> dict[str, Any]:
    """Whether an emergency is in force, for the tick: {active, current_level, level_name,
    emergency: "extinction_protocol" while above level 0 else null, erasure_pending}."""
    return h.status(_load(ctx))


def check_reversibility(level: Level) -> dict[str, Any]:
    """{level, reversible}: levels 0-3 can be undone, level 4 cannot (nor can an unknown level)."""
    return {"level": level, "reversible": h.reversible(level)}


def monitor_protocol(ctx: Context) -> dict[str, Any]:
    """The protocol state and whether it is stale (no change for 24 hours), at the run's time:
    {success, state, stale, checked_at}. Run it from the agent's scheduled chain (LegionIO's
    actor runs it every 300 s)."""
    protocol = _load(ctx)
    now = ctx.now()
    return {"success": True, "state": h.protocol_view(protocol), "stale": h.stale(protocol["last_change"], now),
            "checked_at": now.isoformat()}


def archive_agent(ctx: Context, reason: Reason, agent_id: AgentId = None,
                  metadata: Annotated[dict[str, Any] | None, Field(description="anything to keep with the record")] = None
                  ) -> dict[str, Any]:
    """Keep an archive record of the agent (kept in its state until it is erased): {success,
    archive: {agent_id, reason, metadata, level, archived_at, state_snapshot}}."""
    record = _archive(ctx, _agent(ctx, agent_id), reason, metadata or {}, _load(ctx))
    return {"success": True, "archive": record}


def all_archives(ctx: Context) -> dict[str, Any]:
    """The archive records kept for the agent, oldest first: {archives, count}."""
    kept = sorted(ctx.state.items(ARCHIVES).values(), key=lambda r: r["archived_at"])
    return {"archives": kept, "count": len(kept)}


def _governance_gate(ctx: Context, proposal_id: str | None) -> dict[str, Any]:
    """Ask governance, at the human-deliberation layer, whether the erasure may go ahead.
    (LegionIO called the runner module as a module function and without `layer:`, so the
    gate always raised and refused; here it is a real call: allowed by an approved council
    proposal for extinction_escalate_4. An unreachable governance refuses.)"""
    if not h.GOVERNANCE_REQUIRED:
        return {"success": True}
    try:
        review = ctx.call(GOVERNANCE, {"layer": "human_deliberation", "action": h.ERASURE_ACTION, "proposal_id": proposal_id})
    except StepError as exc:
        return {"success": False, "reason": "governance_unavailable", "details": {"type": exc.type, "message": exc.message}}
    if review.get("allowed"):
        return {"success": True, "review": review}
    return {"success": False, "reason": "governance_blocked", "details": review}


@function(expose=False)
def full_termination(ctx: Context, authority: AuthorityArg, reason: Reason, agent_id: AgentId = None,
                     proposal_id: Annotated[str | None, Field(description="the approved governance proposal (action "
                                                              "extinction_escalate_4) that authorises it")] = None
                     ) -> dict[str, Any]:
    """Terminate the run's agent: the governance gate, then level 4 (archive, then erasure of
    every document and the key): {success: true, agent_id, archive, erasure, events,
    terminated_at}; or {success: false, reason: governance_blocked | governance_unavailable,
    details}; or escalate's refusals."""
    agent = _agent(ctx, agent_id)
    if agent != ctx.agent:
        raise StepError(f"full_termination erases the run's own agent ({ctx.agent!r}), not {agent!r}: run it for that agent",
                        type="AgentMismatch")
    gate = _governance_gate(ctx, proposal_id)
    if not gate["success"]:
        return gate
    result = _escalate(ctx, h.ERASURE_LEVEL, authority, reason, {"termination": True, "authority": authority})
    if not result["success"]:
        return result
    return {"success": True, "agent_id": agent, "archive": result["archive"], "erasure": result["erasure"],
            "events": result["events"], "terminated_at": ctx.now().isoformat()}
