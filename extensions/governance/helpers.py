"""Governance constants and pure functions: the four layers, council quorum, proposal votes
and their timeout. No clock, no state: callers pass `now` and the documents they read."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Literal

# The four governance layers, in LegionIO's order (helpers/layers.rb).
GOVERNANCE_LAYERS = ("agent_validation", "anomaly_detection", "human_deliberation", "transparency")
Layer = Literal["agent_validation", "anomaly_detection", "human_deliberation", "transparency"]

# Council quorum requirements.
MIN_COUNCIL_SIZE = 3
QUORUM_FRACTION = 0.66
VOTE_TIMEOUT = 86_400  # seconds (24 h) a proposal stays open to votes
PROPOSAL_CATEGORIES = ("policy_change", "resource_allocation", "access_control", "emergency", "protocol_update")
Category = Literal["policy_change", "resource_allocation", "access_control", "emergency", "protocol_update"]

Resolution = Literal["approved", "rejected", "pending"]


def valid_layer(layer: object) -> bool:
    return layer in GOVERNANCE_LAYERS


def valid_category(category: object) -> bool:
    return category in PROPOSAL_CATEGORIES


def quorum_needed(council_size: int) -> int:
    """Votes a side needs: ceil(size * 0.66), the float product as LegionIO computes it."""
    return math.ceil(council_size * QUORUM_FRACTION)


def quorum_met(votes: int, council_size: int) -> bool:
    """A council smaller than MIN_COUNCIL_SIZE never reaches quorum."""
    if council_size < MIN_COUNCIL_SIZE:
        return False
    return votes >= quorum_needed(council_size)


def resolution(votes_for: int, votes_against: int, council_size: int) -> Resolution:
    """After a vote: approved when the yes-votes meet quorum; rejected when the no-votes do, or
    when every member has voted without approval; else still pending."""
    if quorum_met(votes_for, council_size):
        return "approved"
    if quorum_met(votes_against, council_size) or votes_for + votes_against >= council_size:
        return "rejected"
    return "pending"


def new_proposal(proposal_id: str, *, category: str, description: str, proposer: str, council_size: int,
                 action: str | None, now: datetime) -> dict[str, Any]:
    return {
        "proposal_id": proposal_id,
        "category": category,
        "description": description,
        "proposer": proposer,
        "council_size": council_size,
        "action": action,
        "votes_for": [],
        "votes_against": [],
        "status": "open",
        "created_at": now.isoformat(),
        "resolved_at": None,
    }


def deadline(proposal: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(proposal["created_at"]) + timedelta(seconds=VOTE_TIMEOUT)


def expired(proposal: dict[str, Any], now: datetime) -> bool:
    """An open proposal older than VOTE_TIMEOUT (strictly, as LegionIO's sweep compares)."""
    return proposal["status"] == "open" and (now - datetime.fromisoformat(proposal["created_at"])).total_seconds() > VOTE_TIMEOUT


def timed_out(proposal: dict[str, Any]) -> dict[str, Any]:
    """The proposal closed by its timeout. `resolved_at` is the moment its window closed, so the
    record is the same whenever the timeout is noticed (a vote, a read, the sweep)."""
    return dict(proposal, status="timed_out", resolved_at=deadline(proposal).isoformat())


def effective(proposal: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The proposal as it stands at `now`: timed out once its window has passed."""
    return timed_out(proposal) if expired(proposal, now) else proposal


def cast_vote(proposal: dict[str, Any], *, voter: str, approve: bool, now: datetime) -> tuple[dict[str, Any], str]:
    """The proposal after `voter`'s vote and the vote's outcome: "already_voted" (unchanged), or
    the resolution ("approved", "rejected", "pending"). The caller checks the proposal is open."""
    if voter in proposal["votes_for"] or voter in proposal["votes_against"]:
        return proposal, "already_voted"
    side = "votes_for" if approve else "votes_against"
    voted = dict(proposal, **{side: [*proposal[side], voter]})
    outcome = resolution(len(voted["votes_for"]), len(voted["votes_against"]), voted["council_size"])
    if outcome != "pending":
        voted = dict(voted, status=outcome, resolved_at=now.isoformat())
    return voted, outcome


def layer_decision(layer: str, action: str | None, proposal: dict[str, Any] | None = None,
                   proposal_id: str | None = None) -> dict[str, Any]:
    """What a layer says about `action`. LegionIO's outcomes, plus one way through human
    deliberation: a council proposal, approved, that names this very action."""
    if layer == "agent_validation":
        return {"allowed": True, "layer": layer, "reason": "self_validated"}
    if layer == "anomaly_detection":
        return {"allowed": True, "layer": layer, "reason": "no_anomaly"}
    if layer == "transparency":
        return {"allowed": True, "layer": layer, "reason": "logged", "audit_required": True}
    if layer == "human_deliberation":
        if proposal_id is None:
            return {"allowed": False, "layer": layer, "reason": "requires_human_approval"}
        if proposal is None:
            return {"allowed": False, "layer": layer, "reason": "requires_human_approval", "proposal_id": proposal_id,
                    "proposal_status": "not_found"}
        if proposal["status"] == "approved" and action is not None and proposal.get("action") == action:
            return {"allowed": True, "layer": layer, "reason": "council_approved", "proposal_id": proposal_id}
        status = proposal["status"] if proposal["status"] != "approved" else "approved_for_another_action"
        return {"allowed": False, "layer": layer, "reason": "requires_human_approval", "proposal_id": proposal_id,
                "proposal_status": status}
    raise ValueError(f"unknown governance layer {layer!r}")
