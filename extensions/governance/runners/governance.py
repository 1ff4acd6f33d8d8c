"""Four-layer governance and the council (LegionIO's Social::Governance runner).

State, per agent: kind "open" holds the proposals still open to votes (so listing and sweeping
read only those), kind "closed" the resolved ones; each document is one proposal keyed by its
id. Time is the run's clock (`ctx.now()`): a proposal's 24-hour window is measured on it.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field

from legion.extensions.governance import helpers as h
from legion.sdk import Context

__all__ = ["create_proposal", "vote_on_proposal", "get_proposal", "open_proposals", "timeout_proposals",
           "review_transition", "validate_action"]

OPEN, CLOSED = "open", "closed"

ProposalId = Annotated[str, Field(description="the proposal's id (from create_proposal)")]


def _find(ctx: Context, proposal_id: str) -> dict[str, Any] | None:
    """A proposal as it stands now (an open one past its window reads as timed out)."""
    found = ctx.state.get(CLOSED, proposal_id)
    if found is not None:
        return found
    found = ctx.state.get(OPEN, proposal_id)
    return None if found is None else h.effective(found, ctx.now())


def _close(ctx: Context, proposal: dict[str, Any]) -> None:
    # Written closed first, then dropped from the open ones: a crash in between leaves it in
    # both kinds, and `_find` reads the closed one first.
    ctx.state.put(CLOSED, proposal["proposal_id"], proposal)
    ctx.state.delete(OPEN, proposal["proposal_id"])


def create_proposal(ctx: Context,
                    category: Annotated[h.Category, Field(description="what the proposal is about")],
                    description: Annotated[str, Field(description="what is proposed")],
                    proposer: Annotated[str, Field(description="who proposes it")],
                    council_size: Annotated[int | None, Field(ge=1, description="members who may vote (default 3; "
                                                              "below 3 quorum is never met)")] = None,
                    action: Annotated[str | None, Field(description="the action this proposal authorises once approved "
                                                        "(what validate_action at human_deliberation checks), "
                                                        "e.g. extinction_escalate_4")] = None) -> dict[str, Any]:
    """Open a council proposal: {proposal_id, category, status: open}."""
    proposal_id = str(uuid.uuid4())
    size = council_size if council_size is not None else h.MIN_COUNCIL_SIZE
    proposal = h.new_proposal(proposal_id, category=category, description=description, proposer=proposer,
                              council_size=size, action=action, now=ctx.now())
    ctx.state.put(OPEN, proposal_id, proposal)
    ctx.log.info("governance: proposal %s created (%s by %s, council %d)", proposal_id[:8], category, proposer, size)
    return {"proposal_id": proposal_id, "category": category, "status": "open"}


def vote_on_proposal(ctx: Context, proposal_id: ProposalId,
                     voter: Annotated[str, Field(description="who votes (once per proposal)")],
                     approve: Annotated[bool, Field(description="true for yes, false for no")]) -> dict[str, Any]:
    """Vote on an open proposal: {voted: true, resolution: approved|rejected|pending}, or
    {error: already_voted} / {error: not_found_or_closed} (with the proposal's status when it
    exists: a proposal past its 24-hour window is closed to votes from then on)."""
    closed = ctx.state.get(CLOSED, proposal_id)
    if closed is not None:
        return {"error": "not_found_or_closed", "status": closed["status"]}
    proposal = ctx.state.get(OPEN, proposal_id)
    if proposal is None:
        return {"error": "not_found_or_closed"}
    if h.expired(proposal, ctx.now()):
        _close(ctx, h.timed_out(proposal))
        return {"error": "not_found_or_closed", "status": "timed_out"}
    voted, outcome = h.cast_vote(proposal, voter=voter, approve=approve, now=ctx.now())
    if outcome == "already_voted":
        return {"error": "already_voted"}
    if outcome == "pending":
        ctx.state.put(OPEN, proposal_id, voted)
    else:
        _close(ctx, voted)
    ctx.log.info("governance: vote on %s by %s (approve=%s): %s", proposal_id[:8], voter, approve, outcome)
    return {"voted": True, "resolution": outcome}


def get_proposal(ctx: Context, proposal_id: ProposalId) -> dict[str, Any]:
    """{found: true, proposal} or {found: false}."""
    proposal = _find(ctx, proposal_id)
    return {"found": True, "proposal": proposal} if proposal is not None else {"found": False}


def open_proposals(ctx: Context) -> dict[str, Any]:
    """The proposals still open to votes at the run's time, oldest first: {proposals, count}."""
    now = ctx.now()
    found = [p for p in ctx.state.items(OPEN).values() if not h.expired(p, now)]
    found.sort(key=lambda p: (p["created_at"], p["proposal_id"]))
    return {"proposals": found, "count": len(found)}


def timeout_proposals(ctx: Context) -> dict[str, Any]:
    """Close every open proposal older than 24 hours as timed_out (LegionIO's actor runs this
    every 300 s): {checked, timed_out, timed_out_ids}."""
    now = ctx.now()
    proposals = ctx.state.items(OPEN)
    timed = sorted((p for p in proposals.values() if h.expired(p, now)), key=lambda p: (p["created_at"], p["proposal_id"]))
    if timed:
        ctx.state.put_many(CLOSED, {p["proposal_id"]: h.timed_out(p) for p in timed})
        ctx.state.delete(OPEN, *(p["proposal_id"] for p in timed))
    return {"checked": len(proposals), "timed_out": len(timed), "timed_out_ids": [p["proposal_id"] for p in timed]}


def review_transition(ctx: Context, action: Annotated[str, Field(description="the action under review")],
                      authority: Annotated[str | None, Field(description="who asks (recorded in the log)")] = None,
                      context: Annotated[dict[str, Any] | None, Field(description="what the caller knows")] = None
                      ) -> dict[str, Any]:
    """Review a transition: validate_action at the agent_validation layer."""
    ctx.log.info("governance: review_transition %s (authority %s)", action, authority)
    return validate_action(ctx, layer="agent_validation", action=action)


def validate_action(ctx: Context,
                    layer: Annotated[h.Layer, Field(description="the governance layer that decides")],
                    action: Annotated[str | None, Field(description="the action asked about")] = None,
                    proposal_id: Annotated[str | None, Field(description="an approved council proposal naming this "
                                                             "action: the way through human_deliberation")] = None
                    ) -> dict[str, Any]:
    """Whether `action` is allowed at `layer`: {allowed, layer, reason} (+ audit_required at
    transparency; + proposal_id, proposal_status at human_deliberation). agent_validation
    allows (self_validated), anomaly_detection allows (no_anomaly), transparency allows
    (logged, audit_required), human_deliberation refuses (requires_human_approval) unless
    `proposal_id` is an approved proposal whose `action` is this action (council_approved)."""
    proposal = _find(ctx, proposal_id) if layer == "human_deliberation" and proposal_id else None
    decided = h.layer_decision(layer, action, proposal, proposal_id)
    ctx.log.info("governance: validate %s at %s: allowed=%s (%s)", action, layer, decided["allowed"], decided["reason"])
    return decided
