"""The consent gradient's constants and rules (LegionIO's `Social::Consent::Helpers::Tiers`
and `ConsentMap`), as pure functions: no clock, no state. Each takes a domain's document and
the time `now` the caller read from the run's clock, and returns a new document or a verdict.

A domain's document:
    {tier, success_count, failure_count, total_actions, last_changed_at (ISO or None),
     history: [{from, to, at, approved_by?}] (the last 50 changes),
     pending_tier, pending_since, pending_requested_by (a promotion awaiting a human),
     last_rejection: {by, reason, at} or None}
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

# Most autonomy first: the index is the tier's order (lower = more autonomy).
TIERS: tuple[str, ...] = ("autonomous", "act_notify", "consult", "human_only")
TIER_ORDER: dict[str, int] = {tier: i for i, tier in enumerate(TIERS)}
DEFAULT_TIER = "consult"  # where every domain starts

PROMOTION_THRESHOLD = 0.8  # the success rate that earns a promotion
DEMOTION_THRESHOLD = 0.5  # a success rate below this earns a demotion
MIN_ACTIONS_TO_PROMOTE = 10  # actions recorded before any change is considered
PROMOTION_COOLDOWN = 86_400  # seconds between tier changes (24 h)
APPROVAL_TIMEOUT = 259_200  # seconds a request for autonomy waits for a human (72 h)
HISTORY_LIMIT = 50  # tier changes kept per domain

Domain = dict[str, Any]


def valid_tier(tier: str) -> bool:
    return tier in TIER_ORDER


def more_autonomous(tier_a: str, tier_b: str) -> bool:
    return TIER_ORDER.get(tier_a, 99) < TIER_ORDER.get(tier_b, 99)


def promote(tier: str) -> str:
    """One step towards autonomy; `autonomous` stays. An unknown tier counts as `consult`."""
    index = TIER_ORDER.get(tier, TIER_ORDER[DEFAULT_TIER])
    return tier if index == 0 else TIERS[index - 1]


def demote(tier: str) -> str:
    """One step away from autonomy; `human_only` stays. An unknown tier counts as `consult`."""
    index = TIER_ORDER.get(tier, TIER_ORDER[DEFAULT_TIER])
    return tier if index >= len(TIERS) - 1 else TIERS[index + 1]


def new_domain() -> Domain:
    return {"tier": DEFAULT_TIER, "success_count": 0, "failure_count": 0, "total_actions": 0, "last_changed_at": None,
            "history": [], "pending_tier": None, "pending_since": None, "pending_requested_by": None, "last_rejection": None}


def _at(stamp: str | None) -> datetime | None:
    return None if stamp is None else datetime.fromisoformat(stamp)


def record_outcome(domain: Domain, success: bool) -> Domain:
    return {**domain, "total_actions": domain["total_actions"] + 1,
            "success_count": domain["success_count"] + (1 if success else 0),
            "failure_count": domain["failure_count"] + (0 if success else 1)}


def success_rate(domain: Domain) -> float:
    """Successes over all actions ever recorded (not windowed); 0.0 before any."""
    total = domain["total_actions"]
    return 0.0 if total == 0 else domain["success_count"] / total


def cooling_down(domain: Domain, now: datetime) -> bool:
    """Whether the last change was less than PROMOTION_COOLDOWN ago."""
    changed = _at(domain["last_changed_at"])
    return changed is not None and (now - changed).total_seconds() < PROMOTION_COOLDOWN


def eligible_for_change(domain: Domain, now: datetime) -> bool:
    """At least MIN_ACTIONS_TO_PROMOTE actions, and no change in the last 24 h."""
    return domain["total_actions"] >= MIN_ACTIONS_TO_PROMOTE and not cooling_down(domain, now)


def evaluate_promotion(domain: Domain, now: datetime) -> str:
    """ineligible | promote | already_max | demote | already_min | maintain."""
    if not eligible_for_change(domain, now):
        return "ineligible"
    rate, tier = success_rate(domain), domain["tier"]
    if rate >= PROMOTION_THRESHOLD:
        return "already_max" if promote(tier) == tier else "promote"
    if rate < DEMOTION_THRESHOLD:
        return "already_min" if demote(tier) == tier else "demote"
    return "maintain"


def promotion_refusal(domain: Domain, new_tier: str, now: datetime) -> str | None:
    """Why moving `domain` up to `new_tier` without a human's approval is refused, or None when
    it is allowed. A promotion moves one step (`skips_tier`), is earned (`not_earned`: the
    evaluation at `now` must say promote, which includes the cooldown), and never reaches
    `autonomous` (`approval_required`: that takes request_autonomous_approval, then
    approve_promotion)."""
    if TIER_ORDER[domain["tier"]] - TIER_ORDER[new_tier] > 1:
        return "skips_tier"
    if new_tier == "autonomous":
        return "approval_required"
    if evaluate_promotion(domain, now) != "promote":
        return "not_earned"
    return None


def autonomy_request_refusal(domain: Domain, now: datetime) -> str | None:
    """Why asking a human to make `domain` autonomous is refused now, or None: it must be one
    step away (act_notify), not already asked, earned (the evaluation says promote), and not
    rejected by a human within the cooldown."""
    if domain["tier"] == "autonomous":
        return "already_autonomous"
    if domain["pending_tier"] is not None:
        return "already_pending"
    if promote(domain["tier"]) != "autonomous":
        return "skips_tier"
    if evaluate_promotion(domain, now) != "promote":
        return "not_earned"
    rejection = domain.get("last_rejection")
    if rejection and (now - datetime.fromisoformat(rejection["at"])).total_seconds() < PROMOTION_COOLDOWN:
        return "recently_rejected"
    return None


def set_tier(domain: Domain, tier: str, now: datetime, approved_by: str | None = None) -> Domain:
    """The domain at `tier`, the change in its history (the last HISTORY_LIMIT kept) and its
    time as `last_changed_at`; a pending request is dropped (it was for the old tier). Setting
    the tier it has changes nothing (LegionIO recorded it, restarting the cooldown)."""
    if tier == domain["tier"]:
        return dict(domain)
    change: dict[str, Any] = {"from": domain["tier"], "to": tier, "at": now.isoformat()}
    if approved_by is not None:
        change["approved_by"] = approved_by
    history = [*domain["history"], change][-HISTORY_LIMIT:]
    return {**clear_pending(domain), "tier": tier, "last_changed_at": now.isoformat(), "history": history}


def set_pending(domain: Domain, now: datetime, requested_by: str) -> Domain:
    return {**domain, "pending_tier": "autonomous", "pending_since": now.isoformat(), "pending_requested_by": requested_by}


def clear_pending(domain: Domain) -> Domain:
    return {**domain, "pending_tier": None, "pending_since": None, "pending_requested_by": None}


def pending_expired(domain: Domain, now: datetime, timeout: float = APPROVAL_TIMEOUT) -> bool:
    """Whether a pending request has waited more than `timeout` seconds."""
    since = _at(domain["pending_since"])
    return since is not None and (now - since).total_seconds() > timeout


def summary(domain: Domain) -> dict[str, Any]:
    """A domain as consent_status lists it."""
    return {"tier": domain["tier"], "success_rate": success_rate(domain), "total_actions": domain["total_actions"],
            "pending_tier": domain["pending_tier"], "pending_since": domain["pending_since"]}


def check(name: str, tier: str) -> dict[str, Any]:
    """What an acting step reads before it acts in a domain."""
    return {"domain": name, "tier": tier, "allowed": tier == "autonomous", "needs_notify": tier == "act_notify",
            "needs_consult": tier == "consult", "human_only": tier == "human_only"}
