"""emotion.valence: a signal's four-dimension valence against the agent's running baselines,
and the arithmetic on valences (aggregate, arousal, attention modulation)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field

from legion.extensions.emotion import helpers
from legion.extensions.emotion import state as kept
from legion.extensions.emotion.models import Signal, Unit, Valence
from legion.sdk import Context

__all__ = [
    "aggregate_valences", "compute_arousal", "evaluate_partner_absence", "evaluate_valence", "modulate_attention",
    "raise_urgency_for_knowledge_vulnerability",
]

SignalArg = Annotated[Signal | str, Field(description="the signal: a mapping (its hints shape the scores) or a text, "
                                                      "which has none")]
SourceArg = Annotated[str | None, Field(description="firmware_violation, human_direct, direct_address, mesh_priority, "
                                                    "scheduled, partner_absence or ambient (any other counts as ambient); "
                                                    "default: the signal's own source_type, else ambient")]
NormalizationArg = Annotated[helpers.Normalization, Field(
    description="centered: the baseline mean is 0.5, mean +/- 2 stddevs are 0 and 1; above_mean: LegionIO's, anything at "
                "or below the mean is 0")]


def _signal_fields(signal: Signal | str) -> dict[str, Any]:
    return signal.model_dump() if isinstance(signal, Signal) else {}


def _remaining(deadline: datetime | None, now: datetime) -> float | None:
    if deadline is None:
        return None
    if deadline.tzinfo is None:  # a deadline without a zone is UTC, like ctx.now()
        deadline = deadline.replace(tzinfo=UTC)
    return (deadline - now).total_seconds()


def _evaluate(ctx: Context, fields: dict[str, Any], source_type: str, deadline: datetime | None, domain: str | None,
              normalization: helpers.Normalization) -> dict[str, Any]:
    """Score the signal, judge it against the baselines, then let the baselines and the
    domain's count learn from it (the order LegionIO uses)."""
    store = ctx.state
    count = kept.domain_count(store, domain)
    raw = helpers.raw_scores(fields, source_type, _remaining(deadline, ctx.now()), count)
    valence, updated = helpers.evaluate(raw, kept.baseline(store), normalization)
    kept.put_baseline(store, updated)
    kept.put_domain_count(store, domain, count + 1)
    result = helpers.describe(valence)
    ctx.log.debug("valence source=%s magnitude=%.2f dominant=%s", source_type, result["magnitude"],
                  result["dominant_dimension"])
    return {**result, "source_type": source_type, "domain": domain}


def evaluate_valence(ctx: Context, signal: SignalArg, source_type: SourceArg = None, deadline: datetime | None = None,
                     domain: str | None = None, normalization: NormalizationArg = "centered") -> dict[str, Any]:
    """Evaluate a signal's valence (urgency, importance, novelty, familiarity) against the
    agent's running baselines, then update the baselines with it.

    Args:
        deadline: when the matter is due (ISO 8601 or epoch seconds); urgency rises over its last day
        domain: the signal's domain (default: the signal's own `domain`); familiarity grows with each signal of it
    """
    fields = _signal_fields(signal)
    source = source_type or fields.get("source_type") or helpers.DEFAULT_SOURCE
    return _evaluate(ctx, fields, source, deadline, domain if domain is not None else fields.get("domain"), normalization)


def aggregate_valences(valences: list[Valence]) -> dict[str, Any]:
    """The per-dimension mean of valences, their arousal and dominant dimension.

    Args:
        valences: the valences to combine
    """
    plain = [v.model_dump() for v in valences]
    aggregated = helpers.aggregate(plain)
    return {"aggregate": aggregated, "arousal": helpers.compute_arousal(plain),
            "dominant": helpers.dominant_dimension(aggregated), "count": len(plain)}


def modulate_attention(base_salience: Unit, valence: Valence) -> dict[str, Any]:
    """Boost a salience by a valence: + 0.3 x (0.4 urgency + 0.35 importance + 0.25 novelty), capped at 1.

    Args:
        base_salience: the salience before emotion weighs in
        valence: the valence that weighs in
    """
    modulated = helpers.modulate_salience(base_salience, valence.model_dump())
    return {"original": base_salience, "modulated": modulated, "boost": modulated - base_salience}


def compute_arousal(valences: list[Valence]) -> dict[str, Any]:
    """Arousal: the valences' mean magnitude over the largest possible magnitude (2).

    Args:
        valences: the valences
    """
    return {"arousal": helpers.compute_arousal([v.model_dump() for v in valences])}


def evaluate_partner_absence(consecutive_misses: Annotated[int, Field(ge=0)] = 1) -> dict[str, Any]:
    """The fixed valence of a partner's absence: urgency 0.2, novelty 0.1, familiarity 0.8,
    importance 0.4 + 0.1 ln(misses + 1), at most 0.7. Keeps nothing.

    Args:
        consecutive_misses: how many expected contacts in a row did not happen
    """
    valence = helpers.new_valence(urgency=0.2, importance=helpers.absence_importance(consecutive_misses), novelty=0.1,
                                  familiarity=0.8)
    return {"valence": valence, "magnitude": helpers.magnitude(valence),
            "dominant_dimension": helpers.dominant_dimension(valence), "event": "partner_absence",
            "consecutive_misses": consecutive_misses}


def raise_urgency_for_knowledge_vulnerability(
        ctx: Context, domains_at_risk: list[str] | str, severity: str = "warning",
        urgency_boost: Unit = 0.3, normalization: NormalizationArg = "centered") -> dict[str, Any]:
    """Evaluate, as a mesh_priority signal, that knowledge domains are at risk (a peer that
    held them left): the boost (x1.5, at most 1, when critical) becomes the signal's urgency
    hint and outcome severity. Updates the baselines like any signal.

    Args:
        domains_at_risk: the domains at risk
        severity: critical raises the boost; any other value leaves it as given
        urgency_boost: how much urgency to inject
    """
    domains = [domains_at_risk] if isinstance(domains_at_risk, str) else list(domains_at_risk)
    boost = helpers.vulnerability_boost(severity, urgency_boost)
    result = _evaluate(ctx, helpers.vulnerability_signal(boost), "mesh_priority", None, None, normalization)
    ctx.log.info("knowledge vulnerability: domains=%s severity=%s boost=%.2f", ",".join(domains), severity, boost)
    return {**result, "event": "knowledge_vulnerability", "domains_at_risk": domains, "urgency_boost": boost}
