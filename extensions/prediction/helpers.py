"""Prediction's constants and formulas: pure functions of values (no clock, no state, no I/O).

Constants are LegionIO's (lex-agentic-inference `Inference::Prediction::Helpers::Modes`,
`PredictionStore`, `Runners::Prediction`). A prediction is a record with a confidence: there is
no model; what it predicts is whatever the caller describes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

Outcome = Literal["correct", "incorrect", "partial", "expired"]

REASONING_MODES = ("fault_localization", "functional_mapping", "boundary_testing", "counterfactual")
PREDICTION_CONFIDENCE_MIN = 0.65  # at or above it a prediction is actionable
MAX_PREDICTIONS_PER_TICK = 5  # defined by LegionIO, used nowhere (kept for reference)
PREDICTION_HORIZON = 3600  # seconds a prediction stays pending before it expires

BASE_CONFIDENCE = {"fault_localization": 0.7, "functional_mapping": 0.6, "boundary_testing": 0.5, "counterfactual": 0.4}
RICHNESS_PER_KEY = 0.02  # each context key adds this much confidence ...
RICHNESS_MAX = 0.2  # ... up to this much

OUTCOME_LOG_MAX = 500  # outcomes kept for accuracy (and resolved predictions kept)
DEFAULT_ACCURACY_WINDOW = 100
RECENT_RESOLVED = 20  # resolved summaries returned by predict

# The memory trace a resolution leaves (section 19): type, valence, intensity, unresolved.
OUTCOME_TRACES: dict[str, tuple[str, float, float, bool]] = {
    "correct": ("semantic", 0.3, 0.3, False),
    "incorrect": ("episodic", -0.5, 0.6, True),
    "partial": ("episodic", -0.2, 0.4, True),
}


def valid_mode(mode: str) -> bool:
    return mode in REASONING_MODES


def estimate_confidence(mode: str, context_size: int) -> float:
    """The mode's base confidence plus 0.02 per context key (at most 0.2), at most 1."""
    base = BASE_CONFIDENCE.get(mode, 0.5)
    return min(base + min(context_size * RICHNESS_PER_KEY, RICHNESS_MAX), 1.0)


def actionable(confidence: float) -> bool:
    return confidence >= PREDICTION_CONFIDENCE_MIN


def accuracy(outcomes: Sequence[str], window: int = DEFAULT_ACCURACY_WINDOW) -> float:
    """The share of `correct` among the last `window` outcomes; 0.0 with none (LegionIO's)."""
    recent = list(outcomes)[-window:] if window > 0 else []
    if not recent:
        return 0.0
    return sum(1 for o in recent if o == "correct") / len(recent)


def error_rate(accuracy_: float) -> float:
    return round(1.0 - accuracy_, 4)


def is_stale(created_at: datetime, horizon: float, now: datetime) -> bool:
    """Past its horizon: strictly older than `horizon` seconds."""
    return (now - created_at).total_seconds() > horizon


def new_prediction(prediction_id: str, mode: str, context: Mapping[str, Any], confidence: float, description: str | None,
                   now: datetime) -> dict[str, Any]:
    """The kept record. The context itself is not kept: only its keys (which made the
    confidence) and its `outcome_domain` (which the resolved summaries report)."""
    outcome_domain = context.get("outcome_domain")
    return {
        "prediction_id": prediction_id, "mode": mode, "context_keys": sorted(str(k) for k in context),
        "outcome_domain": outcome_domain if isinstance(outcome_domain, str) else None,
        "confidence": confidence, "description": description, "status": "pending", "created_at": now.isoformat(),
        "horizon": PREDICTION_HORIZON, "resolved_at": None, "actual": None,
    }


def resolved(prediction: Mapping[str, Any], outcome: str, actual: Any, now: datetime) -> dict[str, Any]:
    return {**prediction, "status": outcome, "resolved_at": now.isoformat(), "actual": actual}


def summary(prediction: Mapping[str, Any]) -> dict[str, Any]:
    """A resolved prediction as `predict` lists it (LegionIO's recently_resolved)."""
    return {
        "prediction_id": prediction["prediction_id"], "domain": prediction["mode"],
        "outcome_domain": prediction.get("outcome_domain") or prediction["mode"], "outcome": prediction["status"],
        "accurate": prediction["status"] == "correct", "confidence": prediction["confidence"],
        "resolved_at": prediction["resolved_at"],
    }


def new_ledger() -> dict[str, Any]:
    """The outcome log `[[prediction_id, outcome], ...]` (oldest first) and the recent summaries."""
    return {"log": [], "recent": []}


def record(ledger: Mapping[str, Any], prediction: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The ledger with a resolved prediction appended, and the ids that fell off the log."""
    log = [*ledger["log"], [prediction["prediction_id"], prediction["status"]]]
    dropped = [entry[0] for entry in log[:-OUTCOME_LOG_MAX]] if len(log) > OUTCOME_LOG_MAX else []
    recent = [*ledger["recent"], summary(prediction)][-RECENT_RESOLVED:]
    return {"log": log[-OUTCOME_LOG_MAX:], "recent": recent}, dropped


def outcomes(ledger: Mapping[str, Any]) -> list[str]:
    return [entry[1] for entry in ledger["log"]]


def outcome_trace(prediction: Mapping[str, Any], outcome: str) -> dict[str, Any] | None:
    """The arguments of memory.traces.store_trace for a resolution; None for `expired`, which
    leaves no trace."""
    found = OUTCOME_TRACES.get(outcome)
    if found is None:
        return None
    type_, valence, intensity, unresolved = found
    return {
        "type": type_,
        "content_payload": f"prediction {outcome}: mode={prediction['mode']} confidence={prediction['confidence']}",
        "emotional_valence": valence,
        "emotional_intensity": intensity,
        "domain_tags": ["prediction", prediction["mode"]],
        "unresolved": unresolved,
        "confidence": prediction["confidence"],
    }
