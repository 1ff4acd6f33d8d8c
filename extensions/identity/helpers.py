"""Identity's constants and formulas: pure functions of values (no clock, no state, no I/O).

The fingerprint is the human partner's behaviour on six dimensions, each an exponential
average (mean) and spread (variance) of observations on a 0..1 scale. Entropy says how far new
observations stray from it. Constants are LegionIO's (lex-identity `Helpers::Dimensions`,
`Helpers::Fingerprint`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

Dimension = Literal["communication_cadence", "vocabulary_patterns", "emotional_response", "decision_patterns",
                    "contextual_consistency", "temporal_patterns"]
IDENTITY_DIMENSIONS: tuple[str, ...] = ("communication_cadence", "vocabulary_patterns", "emotional_response",
                                        "decision_patterns", "contextual_consistency", "temporal_patterns")

HIGH_ENTROPY_THRESHOLD = 0.70
LOW_ENTROPY_THRESHOLD = 0.20
OPTIMAL_ENTROPY_RANGE = (0.20, 0.70)  # inclusive at both ends (Ruby's Range#cover?)
OBSERVATION_ALPHA = 0.1
INITIAL_MEAN = 0.5
INITIAL_VARIANCE = 0.1
MIN_VARIANCE = 0.1  # divergence is measured in units of at least this spread
DIVERGENCE_SCALE = 3.0  # a mean divergence of 3 spreads is entropy 1.0
ENTROPY_HISTORY_MAX = 200
TREND_WINDOW = 10
TREND_THRESHOLD = 0.1
MATURITY_LEVELS = ((10, "nascent"), (100, "developing"), (1000, "established"))  # below the count: that level
MATURE = "mature"
MATURITY_ORDER = ("nascent", "developing", "established", "mature")

WARNINGS = {
    "high_entropy": ("possible_impersonation_or_drift", "enter_caution_mode"),
    "low_entropy": ("possible_automation", "trigger_verification"),
}


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return max(low, min(high, float(value)))


def new_dimension() -> dict[str, Any]:
    return {"mean": INITIAL_MEAN, "variance": INITIAL_VARIANCE, "observations": 0, "last_observed": None}


def new_model() -> dict[str, dict[str, Any]]:
    return {d: new_dimension() for d in IDENTITY_DIMENSIONS}


def observe(dimension: Mapping[str, Any], value: float, at: str) -> dict[str, Any]:
    """One observation: the mean moves 10% toward it, then the variance 10% toward its
    distance from the new mean."""
    mean = OBSERVATION_ALPHA * value + (1.0 - OBSERVATION_ALPHA) * float(dimension["mean"])
    variance = OBSERVATION_ALPHA * abs(value - mean) + (1.0 - OBSERVATION_ALPHA) * float(dimension["variance"])
    return {"mean": mean, "variance": variance, "observations": int(dimension["observations"]) + 1, "last_observed": at}


def divergence(value: float, dimension: Mapping[str, Any]) -> float:
    return abs(value - float(dimension["mean"])) / max(float(dimension["variance"]), MIN_VARIANCE)


def compute_entropy(observations: Mapping[str, float], model: Mapping[str, Mapping[str, Any]]) -> float | None:
    """The mean divergence of the observations from the fingerprint, over 3, in [0, 1]; None
    when no observed dimension has a baseline yet (nothing to compare with).

    LegionIO returns 0.5 for no observations and counts a dimension without a baseline as a
    perfect match (0.0); both are measurements of nothing, so here they are None / left out.
    """
    divergences = [divergence(observations[d], model[d]) for d in IDENTITY_DIMENSIONS
                   if d in observations and int(model[d]["observations"]) > 0]
    if not divergences:
        return None
    return clamp(sum(divergences) / len(divergences) / DIVERGENCE_SCALE)


def classify_entropy(entropy: float) -> str:
    if entropy > HIGH_ENTROPY_THRESHOLD:
        return "high_entropy"
    if entropy < LOW_ENTROPY_THRESHOLD:
        return "low_entropy"
    return "normal"


def in_range(entropy: float) -> bool:
    return OPTIMAL_ENTROPY_RANGE[0] <= entropy <= OPTIMAL_ENTROPY_RANGE[1]


def entropy_trend(values: Sequence[float], window: int = TREND_WINDOW) -> str:
    """Over the last `window` entropies: the later half's mean against the earlier half's
    (the later half takes the odd one)."""
    recent = list(values)[-window:]
    if len(recent) < 2:
        return "stable"
    half = len(recent) // 2
    first, second = recent[:half], recent[half:]
    diff = sum(second) / len(second) - sum(first) / len(first)
    if diff > TREND_THRESHOLD:
        return "rising"
    if diff < -TREND_THRESHOLD:
        return "falling"
    return "stable"


def append_history(history: Sequence[Sequence[Any]], entropy: float, at: str) -> list[list[Any]]:
    """The entropy history `[[entropy, at], ...]` with one more entry, the last 200 kept."""
    return [list(e) for e in history][-(ENTROPY_HISTORY_MAX - 1):] + [[entropy, at]]


def maturity(observation_count: int) -> str:
    for below, level in MATURITY_LEVELS:
        if observation_count < below:
            return level
    return MATURE
