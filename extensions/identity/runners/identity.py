"""identity.identity: the partner's behavioural fingerprint (six dimensions), the entropy of
new observations against it, its classification and trend, and the fingerprint's maturity.

State (ctx.state of the `identity` extension): `fingerprint/model` the six dimensions and the
observation count, `fingerprint/entropy` the last 200 entropies `[[entropy, at], ...]`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from legion.extensions.identity import helpers
from legion.sdk import AgentState, Context

__all__ = ["check_entropy", "identity_maturity", "identity_status", "observe_all", "observe_behavior"]

Value = Annotated[float, Field(ge=0.0, le=1.0)]
OBSERVATIONS = ("a value in [0, 1] for some of the six dimensions: communication_cadence, vocabulary_patterns, "
                "emotional_response, decision_patterns, contextual_consistency, temporal_patterns")
Observations = Annotated[dict[helpers.Dimension, Value], Field(description=OBSERVATIONS)]
MaybeObservations = Annotated[dict[helpers.Dimension, Value] | None, Field(description=OBSERVATIONS + "; none: nothing to "
                                                                                                      "measure")]


def _model(store: AgentState) -> dict[str, Any]:
    found = store.get("fingerprint", "model")
    return found if found is not None else {"dimensions": helpers.new_model(), "observation_count": 0}


def _history(store: AgentState) -> list[list[Any]]:
    found = store.get("fingerprint", "entropy")
    return found["history"] if found is not None else []


def _record(ctx: Context, observations: dict[str, float]) -> dict[str, Any]:
    """Fold observations into the fingerprint; the updated model."""
    store = ctx.state
    model = _model(store)
    at = ctx.now().isoformat()
    for dimension, value in observations.items():
        model["dimensions"][dimension] = helpers.observe(model["dimensions"][dimension], value, at)
    model["observation_count"] += len(observations)
    if observations:
        store.put("fingerprint", "model", model)
    return model


def observe_behavior(ctx: Context, dimension: helpers.Dimension, value: Value) -> dict[str, Any]:
    """Record one observation of the partner on one dimension.

    Args:
        dimension: which behaviour was observed
        value: what was observed, on the 0..1 scale
    """
    model = _record(ctx, {dimension: value})
    count = model["observation_count"]
    return {"dimension": dimension, "recorded": True, "observation_count": count, "maturity": helpers.maturity(count)}


def observe_all(ctx: Context, observations: Observations) -> dict[str, Any]:
    """Record one observation on each dimension given."""
    model = _record(ctx, dict(observations))
    count = model["observation_count"]
    return {"dimensions_observed": list(observations), "observation_count": count, "maturity": helpers.maturity(count)}


def check_entropy(ctx: Context, observations: MaybeObservations = None,
                  observe: Annotated[bool, Field(description="also fold the observations into the fingerprint, after "
                                                             "measuring them against it")] = False) -> dict[str, Any]:
    """How far observations stray from the partner's fingerprint: entropy in [0, 1], its
    classification (high_entropy above 0.7: possible impersonation or drift; low_entropy below
    0.2: possible automation; else normal) and trend. With no observations, or none on a
    dimension observed before, there is nothing to measure: entropy is null and `basis` says why.
    """
    given = dict(observations or {})
    store = ctx.state
    model = _model(store)
    history = _history(store)
    entropy = helpers.compute_entropy(given, model["dimensions"])
    if entropy is None:
        result: dict[str, Any] = {"entropy": None, "classification": "unknown",
                                  "trend": helpers.entropy_trend([e for e, _ in history]), "in_range": None,
                                  "basis": "no_baseline" if given else "no_observations"}
    else:
        history = helpers.append_history(history, entropy, ctx.now().isoformat())
        store.put("fingerprint", "entropy", {"history": history})
        classification = helpers.classify_entropy(entropy)
        result = {"entropy": entropy, "classification": classification,
                  "trend": helpers.entropy_trend([e for e, _ in history]), "in_range": helpers.in_range(entropy)}
        if classification in helpers.WARNINGS:
            result["warning"], result["action"] = helpers.WARNINGS[classification]
            ctx.log.warning("identity entropy %.3f (%s, trend %s): %s", entropy, classification, result["trend"],
                            result["warning"])
    if observe:
        count = _record(ctx, given)["observation_count"]
        result.update(observation_count=count, maturity=helpers.maturity(count))
    return result


def identity_status(ctx: Context) -> dict[str, Any]:
    """The fingerprint: `{model: {dimension: {mean, variance, observations, last_observed}},
    observation_count, maturity, entropy_history_size}`."""
    store = ctx.state
    model = _model(store)
    count = model["observation_count"]
    return {"model": model["dimensions"], "observation_count": count, "maturity": helpers.maturity(count),
            "entropy_history_size": len(_history(store))}


def identity_maturity(ctx: Context) -> dict[str, Any]:
    """How established the fingerprint is: nascent (< 10 observations), developing (< 100),
    established (< 1000), mature."""
    return {"maturity": helpers.maturity(_model(ctx.state)["observation_count"])}
