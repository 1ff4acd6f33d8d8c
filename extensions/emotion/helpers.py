"""Emotion's constants and formulas: pure functions of values (no clock, no state, no I/O).

A valence is a four-dimension salience vector (urgency, importance, novelty, familiarity),
each in [0, 1]; it is not pleasant/unpleasant. Constants are LegionIO's
(lex-agentic-affect `Affect::Emotion::Helpers::{Valence, Baseline, Momentum}`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

Valence = dict[str, float]
Baseline = dict[str, dict[str, float]]
Normalization = Literal["centered", "above_mean"]

DIMENSIONS = ("urgency", "importance", "novelty", "familiarity")
MAX_MAGNITUDE = math.sqrt(4.0)  # all four dimensions at 1.0

# Attention modulation (modulate_salience)
URGENCY_ATTENTION_WEIGHT = 0.4
IMPORTANCE_ATTENTION_WEIGHT = 0.35
NOVELTY_ATTENTION_WEIGHT = 0.25
ATTENTION_MULTIPLIER = 0.3

MOMENTUM_ALPHA = 0.3
MOMENTUM_HISTORY = 100  # momentum history entries kept

# How urgent a signal is by where it came from; any other source counts as ambient's 0.1.
SOURCE_URGENCY = {
    "firmware_violation": 1.0,
    "human_direct": 0.9,
    "direct_address": 0.8,
    "mesh_priority": 0.7,
    "scheduled": 0.4,
    "partner_absence": 0.2,
    "ambient": 0.1,
}
DEFAULT_SOURCE_URGENCY = 0.1
DEFAULT_SOURCE = "ambient"

FAMILIARITY_SATURATION = 100  # signals of a domain after which it is fully familiar
DEADLINE_WINDOW = 86_400.0  # a deadline further than a day away adds no urgency

# The signal's hints and their defaults when absent (compute_urgency / importance / novelty)
URGENCY_WEIGHTS = {"deadline": 0.5, "source": 0.3, "pattern": 0.2}
IMPORTANCE_DEFAULTS = {"domain_weight": 0.5, "impact_scope": 0.3, "reversibility": 0.5, "outcome_severity": 0.3}
NOVELTY_DEFAULT = 0.5

# Partner absence
ABSENCE_BASE_IMPORTANCE = 0.4
ABSENCE_IMPORTANCE_SCALE = 0.1
ABSENCE_MAX_IMPORTANCE = 0.7

# Knowledge vulnerability: the signal injected for domains at risk
CRITICAL_BOOST_FACTOR = 1.5

# Baseline (per dimension): slow adaptation, so no single signal can drag it far
BASELINE_ALPHA = 0.05
BASELINE_MIN_STDDEV = 0.1
BASELINE_INITIAL_MEAN = 0.5
BASELINE_INITIAL_STDDEV = 0.25
# The centred normalisation maps mean ± CENTERED_SPAN stddevs onto [0, 1].
CENTERED_SPAN = 2.0

# Gut instinct thresholds, in the order they are tried
ALARM_URGENCY = 0.7
ALARM_IMPORTANCE = 0.7
HEIGHTENED_AROUSAL = 0.7
EXPLORE_NOVELTY = 0.7
EXPLORE_FAMILIARITY = 0.3
ATTEND_IMPORTANCE = 0.6
CALM_AROUSAL = 0.2
CONSENSUS_WEIGHT = 0.6
EVIDENCE_WEIGHT = 0.4
EVIDENCE_SATURATION = 10.0  # memory signals at which the evidence term is full

NEUTRAL_VALENCE: Valence = dict.fromkeys(DIMENSIONS, 0.5)
NEUTRAL_AROUSAL = 0.5


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return max(low, min(high, float(value)))


def new_valence(urgency: float = 0.0, importance: float = 0.0, novelty: float = 0.0, familiarity: float = 0.0) -> Valence:
    return {"urgency": clamp(urgency), "importance": clamp(importance), "novelty": clamp(novelty),
            "familiarity": clamp(familiarity)}


def magnitude(valence: Mapping[str, float]) -> float:
    return math.sqrt(sum(valence[d] ** 2 for d in DIMENSIONS))


def dominant_dimension(valence: Mapping[str, float]) -> str:
    """The highest dimension; the first in DIMENSIONS order on a tie (Ruby's max_by)."""
    return max(DIMENSIONS, key=lambda d: valence[d])


def aggregate(valences: Sequence[Mapping[str, float]]) -> Valence:
    """Per-dimension mean; all zeros for none."""
    if not valences:
        return new_valence()
    n = float(len(valences))
    return new_valence(**{d: sum(v[d] for v in valences) / n for d in DIMENSIONS})


def compute_arousal(valences: Sequence[Mapping[str, float]]) -> float:
    """Mean magnitude relative to the largest possible one."""
    if not valences:
        return 0.0
    return clamp(sum(magnitude(v) for v in valences) / (len(valences) * MAX_MAGNITUDE))


def modulate_salience(base_salience: float, valence: Mapping[str, float]) -> float:
    boost = (valence["urgency"] * URGENCY_ATTENTION_WEIGHT + valence["importance"] * IMPORTANCE_ATTENTION_WEIGHT
             + valence["novelty"] * NOVELTY_ATTENTION_WEIGHT) * ATTENTION_MULTIPLIER
    return clamp(base_salience + boost)


# --- the raw scores of a signal ---------------------------------------------------------------

def source_urgency(source_type: str) -> float:
    return SOURCE_URGENCY.get(source_type, DEFAULT_SOURCE_URGENCY)


def deadline_urgency(remaining_seconds: float | None) -> float:
    """0 without a deadline; rises linearly to 1 over the last day before it (and past it)."""
    if remaining_seconds is None:
        return 0.0
    return clamp(1.0 - max(remaining_seconds, 0.0) / DEADLINE_WINDOW)


def _hint(signal: Mapping[str, Any], name: str, default: float) -> float:
    value = signal.get(name)
    return default if value is None else float(value)  # Ruby's `signal[:x] || default`


def raw_scores(signal: Mapping[str, Any], source_type: str, remaining_seconds: float | None, domain_count: int) -> Valence:
    """The four raw scores, before normalisation against the baselines."""
    urgency = (URGENCY_WEIGHTS["deadline"] * deadline_urgency(remaining_seconds)
               + URGENCY_WEIGHTS["source"] * source_urgency(source_type)
               + URGENCY_WEIGHTS["pattern"] * _hint(signal, "urgency_hint", 0.0))
    d = {name: _hint(signal, name, default) for name, default in IMPORTANCE_DEFAULTS.items()}
    importance = (d["domain_weight"] * 0.3 + d["impact_scope"] * 0.2 + (1.0 - d["reversibility"]) * 0.25
                  + d["outcome_severity"] * 0.25)
    novelty = _hint(signal, "novelty_score", NOVELTY_DEFAULT)
    familiarity = clamp(domain_count / FAMILIARITY_SATURATION)
    return {"urgency": urgency, "importance": importance, "novelty": novelty, "familiarity": familiarity}


# --- baselines --------------------------------------------------------------------------------

def new_baseline() -> Baseline:
    return {d: {"mean": BASELINE_INITIAL_MEAN, "stddev": BASELINE_INITIAL_STDDEV, "count": 0} for d in DIMENSIONS}


def normalize(raw: float, baseline: Mapping[str, float], normalization: Normalization = "centered") -> float:
    """A raw score relative to its dimension's running baseline, in [0, 1].

    "above_mean" is LegionIO's: clamp((raw - mean) / stddev), so anything at or below the mean
    is 0 and one stddev above it already 1. "centered" (the default) puts the mean at 0.5 and
    mean ± 2 stddevs at 0 and 1, which is what LegionIO's own notes describe ("within one
    stddev is about 0.5"); with the initial baseline (0.5, 0.25) it returns the raw score.
    """
    z = (raw - baseline["mean"]) / max(baseline["stddev"], BASELINE_MIN_STDDEV)
    if normalization == "above_mean":
        return clamp(z)
    return clamp(0.5 + z / (2.0 * CENTERED_SPAN))


def update_baseline(baseline: Mapping[str, float], raw: float) -> dict[str, float]:
    """One exponential step toward `raw`: the mean first, then the stddev around the new mean."""
    mean = BASELINE_ALPHA * raw + (1.0 - BASELINE_ALPHA) * baseline["mean"]
    stddev = BASELINE_ALPHA * abs(raw - mean) + (1.0 - BASELINE_ALPHA) * baseline["stddev"]
    return {"mean": mean, "stddev": stddev, "count": int(baseline.get("count", 0)) + 1}


def evaluate(raw: Mapping[str, float], baseline: Baseline, normalization: Normalization = "centered") -> tuple[Valence, Baseline]:
    """The valence of raw scores against `baseline`, and the baseline updated with them
    (normalised first, updated after: a signal is judged against what came before it)."""
    valence = new_valence(**{d: normalize(raw[d], baseline[d], normalization) for d in DIMENSIONS})
    return valence, {d: update_baseline(baseline[d], raw[d]) for d in DIMENSIONS}


def absence_importance(consecutive_misses: int) -> float:
    return clamp(ABSENCE_BASE_IMPORTANCE + ABSENCE_IMPORTANCE_SCALE * math.log(consecutive_misses + 1), 0.0,
                 ABSENCE_MAX_IMPORTANCE)


def vulnerability_boost(severity: str, urgency_boost: float) -> float:
    return min(urgency_boost * CRITICAL_BOOST_FACTOR, 1.0) if severity == "critical" else float(urgency_boost)


def vulnerability_signal(boost: float) -> dict[str, float]:
    """The signal LegionIO evaluates (as mesh_priority) when knowledge domains are at risk."""
    return {"urgency_hint": boost, "domain_weight": 0.6, "impact_scope": 0.5, "outcome_severity": boost, "novelty_score": 0.3}


def describe(valence: Valence) -> dict[str, Any]:
    """What evaluate_valence reports of a valence."""
    return {"valence": valence, "magnitude": magnitude(valence), "dominant_dimension": dominant_dimension(valence),
            "arousal": compute_arousal([valence])}


# --- momentum ---------------------------------------------------------------------------------

def new_momentum() -> dict[str, Any]:
    return {"valence_ema": new_valence(), "arousal_ema": 0.0, "stability": 1.0, "updates": 0}


def update_momentum(momentum: Mapping[str, Any], valence: Mapping[str, float], arousal: float) -> dict[str, Any]:
    """One EMA step (alpha 0.3) of the valence and the arousal; stability is how little the
    magnitude moved from the previous average."""
    previous = momentum["valence_ema"]
    ema = {d: MOMENTUM_ALPHA * valence[d] + (1.0 - MOMENTUM_ALPHA) * previous[d] for d in DIMENSIONS}
    return {
        "valence_ema": ema,
        "arousal_ema": MOMENTUM_ALPHA * arousal + (1.0 - MOMENTUM_ALPHA) * float(momentum["arousal_ema"]),
        "stability": clamp(1.0 - abs(magnitude(valence) - magnitude(previous))),
        "updates": int(momentum.get("updates", 0)) + 1,
    }


def history_size(updates: int) -> int:
    return min(updates, MOMENTUM_HISTORY)


# --- gut instinct -----------------------------------------------------------------------------

def gut_signal(aggregated: Mapping[str, float], arousal: float) -> str:
    """The first rule that matches."""
    if aggregated["urgency"] > ALARM_URGENCY and aggregated["importance"] > ALARM_IMPORTANCE:
        return "alarm"
    if arousal > HEIGHTENED_AROUSAL:
        return "heightened"
    if aggregated["novelty"] > EXPLORE_NOVELTY and aggregated["familiarity"] < EXPLORE_FAMILIARITY:
        return "explore"
    if aggregated["importance"] > ATTEND_IMPORTANCE:
        return "attend"
    if arousal < CALM_AROUSAL:
        return "calm"
    return "neutral"


def gut_confidence(valences: Sequence[Mapping[str, float]], memory_signal_count: int) -> float:
    """0.6 x consensus (1 - stddev of the magnitudes) + 0.4 x evidence (memory signals / 10)."""
    if not valences:
        return 0.0
    magnitudes = [magnitude(v) for v in valences]
    mean = sum(magnitudes) / len(magnitudes)
    variance = sum((m - mean) ** 2 for m in magnitudes) / len(magnitudes)
    consensus = clamp(1.0 - math.sqrt(variance))
    evidence = clamp(memory_signal_count / EVIDENCE_SATURATION)
    return consensus * CONSENSUS_WEIGHT + evidence * EVIDENCE_WEIGHT
