"""The consent gradient (LegionIO's `Social::Consent::Runners::Consent`): per domain, how much
the agent may do on its own, earned by its record, lost by failures, and never raised to
`autonomous` without a human's approval: `consent.consent.<function>`.

Each domain is one document of kind "domains" in the agent's state (`ctx.state`), pending
approval requests included (LegionIO did not persist those). Cooldowns and request expiry are
measured on the run's clock (`ctx.now()`). An acting step checks `check_consent(domain)`
before it acts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from legion.extensions.consent import helpers as h
from legion.sdk import Context

__all__ = ["check_consent", "record_action", "evaluate_tier_change", "apply_tier_change", "evaluate_all_tiers",
           "request_autonomous_approval", "approve_promotion", "reject_promotion", "expire_pending_approvals",
           "evaluate_and_apply_tiers", "consent_status"]

KIND = "domains"

DomainName = Annotated[str, Field(min_length=1, description="the domain of action (e.g. deploy, email, refunds)")]
Tier = Annotated[Literal["autonomous", "act_notify", "consult", "human_only"], Field(description="the tier to move to")]
Person = Annotated[str, Field(min_length=1, description="who decided (a person's name or id), kept in the record")]


def _load(ctx: Context, domain: str) -> h.Domain:
    """The domain's document, or a new one at the default tier (not written by reading)."""
    return ctx.state.get(KIND, domain) or h.new_domain()


def _save(ctx: Context, domain: str, document: h.Domain) -> None:
    ctx.state.put(KIND, domain, document)


def check_consent(ctx: Context, domain: DomainName) -> dict[str, Any]:
    """What may be done in `domain` now: {domain, tier, allowed (autonomous: act alone),
    needs_notify (act_notify: act, then tell), needs_consult (consult: ask first), human_only
    (leave it to a human)}."""
    return h.check(domain, _load(ctx, domain)["tier"])


def record_action(ctx: Context, domain: DomainName,
                  success: Annotated[bool, Field(description="whether the action succeeded")]) -> dict[str, Any]:
    """Record the outcome of one action in `domain`: {domain, success, success_rate, total}."""
    # Atomic: two outcomes recorded at once both count.
    document: h.Domain = ctx.state.update(KIND, domain, lambda d: h.record_outcome(d or h.new_domain(), success))  # type: ignore[arg-type, assignment]
    return {"domain": domain, "success": success, "success_rate": h.success_rate(document), "total": document["total_actions"]}


def evaluate_tier_change(ctx: Context, domain: DomainName) -> dict[str, Any]:
    """What the record earns `domain` now, without changing anything: {domain, current_tier,
    recommendation (ineligible | promote | already_max | demote | already_min | maintain),
    success_rate, proposed_tier (for promote and demote), requires_approval (true when the
    promotion would make the domain autonomous)}."""
    document = _load(ctx, domain)
    recommendation = h.evaluate_promotion(document, ctx.now())
    current = document["tier"]
    result: dict[str, Any] = {"domain": domain, "current_tier": current, "recommendation": recommendation,
                              "success_rate": h.success_rate(document)}
    if recommendation == "promote":
        result["proposed_tier"] = h.promote(current)
        result["requires_approval"] = result["proposed_tier"] == "autonomous"
    elif recommendation == "demote":
        result["proposed_tier"] = h.demote(current)
    return result


def apply_tier_change(ctx: Context, domain: DomainName, new_tier: Tier) -> dict[str, Any]:
    """Move `domain` to `new_tier`: {domain, old_tier, new_tier, changed}. A move away from
    autonomy is always applied (any number of steps: a pending request is dropped). A move
    towards it is refused, with `error` and changed false, unless it is one step
    (`skips_tier`), earned now (`not_earned`: enough actions, success rate, cooldown) and not
    into `autonomous` (`approval_required`: use request_autonomous_approval)."""
    now = ctx.now()
    document = _load(ctx, domain)
    old = document["tier"]
    result: dict[str, Any] = {"domain": domain, "old_tier": old, "new_tier": new_tier, "changed": False}
    if new_tier == old:
        return result
    if h.more_autonomous(new_tier, old):
        refusal = h.promotion_refusal(document, new_tier, now)
        if refusal is not None:
            return {**result, "error": refusal}
    _save(ctx, domain, h.set_tier(document, new_tier, now))
    ctx.log.info("consent tier applied: domain=%s old=%s new=%s", domain, old, new_tier)
    return {**result, "changed": True}


def evaluate_all_tiers(ctx: Context) -> dict[str, Any]:
    """Evaluate every domain with a record, changing nothing: {evaluated, promotions (domains
    that earned one), demotions}."""
    now = ctx.now()
    domains = ctx.state.items(KIND)
    verdicts = {name: h.evaluate_promotion(d, now) for name, d in sorted(domains.items())}
    return {"evaluated": len(domains), "promotions": [n for n, v in verdicts.items() if v == "promote"],
            "demotions": [n for n, v in verdicts.items() if v == "demote"]}


def request_autonomous_approval(ctx: Context, domain: DomainName,
                                requested_by: Annotated[str, Field(min_length=1, description="who asks")] = "tier_evaluation",
                                ) -> dict[str, Any]:
    """Ask a human to make `domain` autonomous (chains that notify people start on this
    function's success: `on.events: [consent.consent.request_autonomous_approval]`).
    {requested: true, domain, current_tier, proposed_tier: autonomous, success_rate,
    total_actions, requested_at, agent (whose domain: a chain started by the event runs as the
    default agent)}, or {requested: false, error: already_autonomous |
    already_pending | skips_tier (the domain is not at act_notify) | not_earned |
    recently_rejected (a human said no within the cooldown)}."""
    now = ctx.now()
    document = _load(ctx, domain)
    refusal = h.autonomy_request_refusal(document, now)
    if refusal is not None:
        return {"requested": False, "domain": domain, "error": refusal}
    _save(ctx, domain, h.set_pending(document, now, requested_by))
    return {"requested": True, "domain": domain, "current_tier": document["tier"], "proposed_tier": "autonomous",
            "success_rate": h.success_rate(document), "total_actions": document["total_actions"], "requested_at": now.isoformat(),
            "agent": ctx.agent}


def approve_promotion(ctx: Context, domain: DomainName, approved_by: Person) -> dict[str, Any]:
    """A human's approval of the pending request for autonomy, recorded in the domain's
    history with `approved_by`: {approved: true, domain, old_tier, new_tier, approved_by}, or
    {approved: false, error: no_pending_approval | approval_expired (older than 72 h: the
    request is dropped)}."""
    now = ctx.now()
    document = _load(ctx, domain)
    if document["pending_tier"] is None:
        return {"approved": False, "domain": domain, "error": "no_pending_approval"}
    if h.pending_expired(document, now):
        _save(ctx, domain, h.clear_pending(document))
        return {"approved": False, "domain": domain, "error": "approval_expired"}
    old, new = document["tier"], document["pending_tier"]
    if h.promote(old) != new:  # cannot happen: every tier change drops the request; kept as a guard
        _save(ctx, domain, h.clear_pending(document))
        return {"approved": False, "domain": domain, "error": "skips_tier"}
    _save(ctx, domain, h.set_tier(document, new, now, approved_by=approved_by))
    ctx.log.info("consent promotion approved: domain=%s %s -> %s by %s", domain, old, new, approved_by)
    return {"approved": True, "domain": domain, "old_tier": old, "new_tier": new, "approved_by": approved_by}


def reject_promotion(ctx: Context, domain: DomainName, rejected_by: Person,
                     reason: Annotated[str | None, Field(description="why, kept in the record")] = None) -> dict[str, Any]:
    """A human's refusal of the pending request for autonomy: {rejected: true, domain,
    rejected_by, reason}, or {rejected: false, error: no_pending_approval}. No new request is
    made for the domain within the cooldown (24 h)."""
    document = _load(ctx, domain)
    if document["pending_tier"] is None:
        return {"rejected": False, "domain": domain, "error": "no_pending_approval"}
    rejection = {"by": rejected_by, "reason": reason, "at": ctx.now().isoformat()}
    _save(ctx, domain, {**h.clear_pending(document), "last_rejection": rejection})
    return {"rejected": True, "domain": domain, "rejected_by": rejected_by, "reason": reason}


def expire_pending_approvals(ctx: Context, timeout: Annotated[float, Field(ge=0, description=(
        "seconds a request may wait (default APPROVAL_TIMEOUT, 72 h)"))] = h.APPROVAL_TIMEOUT) -> dict[str, Any]:
    """Drop the requests for autonomy that waited more than `timeout` seconds: {expired}."""
    now = ctx.now()
    expired = {name: h.clear_pending(d) for name, d in ctx.state.items(KIND).items() if h.pending_expired(d, now, timeout)}
    if expired:
        ctx.state.put_many(KIND, expired)
    return {"expired": len(expired)}


def evaluate_and_apply_tiers(ctx: Context) -> dict[str, Any]:
    """The periodic sweep (LegionIO ran it hourly): every earned promotion is applied, except
    one into `autonomous`, which becomes a request for a human's approval; every earned
    demotion is applied; then stale requests expire. {evaluated, applied_promotions,
    applied_demotions, approval_requests, expired_approvals, requested_domains (the domains
    whose request for autonomy was made now: a chain branches on them to tell a human)}."""
    now = ctx.now()
    domains = ctx.state.items(KIND)
    changed: dict[str, h.Domain] = {}
    promotions = demotions = 0
    requested: list[str] = []
    for name, document in sorted(domains.items()):
        verdict = h.evaluate_promotion(document, now)
        if verdict == "promote":
            proposed = h.promote(document["tier"])
            if proposed == "autonomous":
                if h.autonomy_request_refusal(document, now) is None:
                    changed[name] = h.set_pending(document, now, "tier_evaluation")
                    requested.append(name)
            else:
                changed[name] = h.set_tier(document, proposed, now)
                promotions += 1
        elif verdict == "demote":
            changed[name] = h.set_tier(document, h.demote(document["tier"]), now)
            demotions += 1
    expired = 0
    for name, document in domains.items():
        current = changed.get(name, document)
        if h.pending_expired(current, now):
            changed[name] = h.clear_pending(current)
            expired += 1
    if changed:
        ctx.state.put_many(KIND, changed)
    return {"evaluated": len(domains), "applied_promotions": promotions, "applied_demotions": demotions,
            "approval_requests": len(requested), "expired_approvals": expired, "requested_domains": requested}


def consent_status(ctx: Context, domain: Annotated[str | None, Field(
        min_length=1, description="one domain (default: all of them)")] = None) -> dict[str, Any]:
    """One domain: {domain, tier, success_rate, total, eligible (for a change now), pending_tier,
    pending_since, pending_requested_by, history}; all: {domains: {name: {tier, success_rate, total_actions,
    pending_tier, pending_since}}, count}."""
    if domain is not None:
        document = _load(ctx, domain)
        return {"domain": domain, "tier": document["tier"], "success_rate": h.success_rate(document),
                "total": document["total_actions"], "eligible": h.eligible_for_change(document, ctx.now()),
                "pending_tier": document["pending_tier"], "pending_since": document["pending_since"],
                "pending_requested_by": document["pending_requested_by"], "history": document["history"]}
    domains = ctx.state.items(KIND)
    return {"domains": {name: h.summary(d) for name, d in sorted(domains.items())}, "count": len(domains)}
