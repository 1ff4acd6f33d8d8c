"""emotion.gut: a quick read of the situation from valences (gut instinct), and the emotional
momentum it feeds: an exponential average of valence and arousal that drifts back to neutral
when `decay_momentum` runs (LegionIO runs it every 60 s; here a scheduled chain does, per agent)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from legion.extensions.emotion import helpers
from legion.extensions.emotion import state as kept
from legion.extensions.emotion.models import Unit, Valence
from legion.sdk import Context

__all__ = ["decay_momentum", "emotional_state", "gut_instinct"]


def _step_momentum(ctx: Context, valence: helpers.Valence, arousal: float) -> dict[str, Any]:
    store = ctx.state
    updated = helpers.update_momentum(kept.momentum(store), valence, arousal)
    kept.record_momentum(store, updated, valence, arousal, ctx.now().isoformat())
    return updated


def gut_instinct(ctx: Context, valences: list[Valence],
                 memory_signals: Annotated[list[Any], Field(description="memories that bear on it (only their number counts)")]
                 = [],  # noqa: B006 - never mutated; the default shows in the schema
                 confidence_threshold: Unit = 0.5) -> dict[str, Any]:
    """Read the valences as one signal: alarm, heightened, explore, attend, calm or neutral,
    with a confidence (consensus of the magnitudes, and memory evidence); feeds the momentum.

    Args:
        valences: this moment's valences (the tick passes the one emotional_evaluation made)
        confidence_threshold: the confidence at which the reading is `reliable`
    """
    plain = [v.model_dump() for v in valences]
    if not plain:
        return {"signal": "neutral", "confidence": 0.0, "basis": "insufficient_data"}
    arousal = helpers.compute_arousal(plain)
    aggregated = helpers.aggregate(plain)
    confidence = helpers.gut_confidence(plain, len(memory_signals))
    signal = helpers.gut_signal(aggregated, arousal)
    _step_momentum(ctx, aggregated, arousal)
    ctx.log.debug("gut signal=%s confidence=%.2f arousal=%.2f", signal, confidence, arousal)
    return {"signal": signal, "confidence": confidence, "arousal": arousal, "dominant": helpers.dominant_dimension(aggregated),
            "aggregate": aggregated, "reliable": confidence >= confidence_threshold}


def decay_momentum(ctx: Context) -> dict[str, Any]:
    """One step of the momentum toward neutral (every dimension 0.5, arousal 0.5)."""
    updated = _step_momentum(ctx, dict(helpers.NEUTRAL_VALENCE), helpers.NEUTRAL_AROUSAL)
    return {"decayed": True, "stability": updated["stability"]}


def emotional_state(ctx: Context) -> dict[str, Any]:
    """The momentum `{valence_ema, arousal_ema, stability, history_size}` and the baselines
    `{urgency: {mean, stddev, count}, ...}`."""
    store = ctx.state
    momentum = kept.momentum(store)
    return {
        "momentum": {"valence_ema": momentum["valence_ema"], "arousal_ema": momentum["arousal_ema"],
                     "stability": momentum["stability"], "history_size": helpers.history_size(int(momentum["updates"]))},
        "baseline": kept.baseline(store),
    }
