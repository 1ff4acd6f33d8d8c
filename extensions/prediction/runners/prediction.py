"""prediction.prediction: predictions in four reasoning modes, their resolution (which leaves a
memory trace), rolling accuracy and expiry on the run's clock.

State (ctx.state of the `prediction` extension): `pending/<id>` the pending predictions,
`resolved/<id>` the resolved ones still in the outcome log, `ledger/outcomes` the outcome log
(the last 500 `[id, outcome]`) and the last 20 resolved summaries.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from legion.extensions.prediction import helpers
from legion.sdk import AgentState, Context, StepError

__all__ = [
    "expire_stale_predictions", "get_prediction", "pending_predictions", "predict", "prediction_accuracy",
    "resolve_prediction",
]

MEMORY_STORE_TRACE = "memory.traces.store_trace"


def _ledger(store: AgentState) -> dict[str, Any]:
    found = store.get("ledger", "outcomes")
    return found if found is not None else helpers.new_ledger()


def _resolve(ctx: Context, prediction: dict[str, Any], outcome: str, actual: Any) -> dict[str, Any]:
    """Move a pending prediction to resolved and log its outcome; what fell off the log is
    forgotten. The resolved prediction."""
    store = ctx.state
    done = helpers.resolved(prediction, outcome, actual, ctx.now())
    ledger, dropped = helpers.record(_ledger(store), done)
    store.put("resolved", done["prediction_id"], done)
    store.delete("pending", done["prediction_id"])
    store.put("ledger", "outcomes", ledger)
    if dropped:
        store.delete("resolved", *dropped)
    return done


def _store_outcome_trace(ctx: Context, prediction: dict[str, Any], outcome: str) -> dict[str, Any] | None:
    """Write the outcome trace into memory (section 19). A failure does not undo the
    resolution (LegionIO logs it and goes on); it is reported in the result instead."""
    args = helpers.outcome_trace(prediction, outcome)
    if args is None:
        return None
    try:
        stored = ctx.call(MEMORY_STORE_TRACE, args)
    except StepError as error:
        ctx.log.warning("prediction %s: no outcome trace in memory (%s: %s)", prediction["prediction_id"], error.type, error)
        return {"stored": False, "error": error.type}
    return {"stored": True, "trace_id": stored.get("trace_id") if isinstance(stored, dict) else None}


def predict(ctx: Context,
            mode: Annotated[str, Field(description="fault_localization, functional_mapping, boundary_testing or "
                                                   "counterfactual; another gives {error: invalid_mode, valid_modes}")],
            context: dict[str, Any] | None = None,
            confidence: Annotated[float | None, Field(ge=0.0, le=1.0)] = None,
            description: str | None = None) -> dict[str, Any]:
    """Record a prediction: actionable when its confidence is at least 0.65; pending until
    resolved or an hour has passed.

    Args:
        context: what the prediction rests on; each key adds 0.02 to an estimated confidence (at most 0.2). Only its keys
            and its `outcome_domain` are kept
        confidence: how sure the caller is; estimated from the mode and the context when left out
        description: what is predicted
    """
    if not helpers.valid_mode(mode):
        return {"error": "invalid_mode", "valid_modes": list(helpers.REASONING_MODES)}
    context = context or {}
    estimated = helpers.estimate_confidence(mode, len(context)) if confidence is None else confidence
    prediction = helpers.new_prediction(str(uuid.uuid4()), mode, context, estimated, description, ctx.now())
    store = ctx.state
    store.put("pending", prediction["prediction_id"], prediction)
    ledger = _ledger(store)
    accuracy = helpers.accuracy(helpers.outcomes(ledger))
    ctx.log.debug("prediction %s mode=%s confidence=%.2f", prediction["prediction_id"], mode, estimated)
    return {"prediction_id": prediction["prediction_id"], "mode": mode, "confidence": estimated,
            "actionable": helpers.actionable(estimated), "rolling_accuracy": accuracy,
            "error_rate": helpers.error_rate(accuracy), "resolved": ledger["recent"]}


def resolve_prediction(ctx: Context, prediction_id: str, outcome: helpers.Outcome, actual: Any = None) -> dict[str, Any]:
    """Resolve a pending prediction with its outcome; correct, incorrect and partial ones
    leave a trace in memory (memory.traces.store_trace).

    Args:
        prediction_id: the prediction's id (from predict)
        outcome: how it turned out
        actual: what actually happened (kept with the prediction)
    """
    store = ctx.state
    pending = store.get("pending", prediction_id)
    if pending is None:
        earlier = store.get("resolved", prediction_id)
        if earlier is not None:  # resolving twice would count its outcome twice
            return {"resolved": False, "reason": "already_resolved", "prediction_id": prediction_id,
                    "outcome": earlier["status"]}
        return {"resolved": False, "reason": "not_found"}
    done = _resolve(ctx, pending, outcome, actual)
    ctx.log.info("prediction %s resolved: %s", prediction_id, outcome)
    return {"resolved": True, "prediction_id": prediction_id, "outcome": outcome,
            "trace": _store_outcome_trace(ctx, done, outcome)}


def pending_predictions(ctx: Context) -> dict[str, Any]:
    """The pending predictions, oldest first."""
    found = sorted(ctx.state.items("pending").values(), key=lambda p: (p["created_at"], p["prediction_id"]))
    return {"predictions": found, "count": len(found)}


def prediction_accuracy(ctx: Context, window: Annotated[int, Field(ge=1, le=helpers.OUTCOME_LOG_MAX)] = 100) -> dict[str, Any]:
    """The share of correct outcomes among the last `window` (expired ones count as not correct).

    Args:
        window: how many of the latest outcomes to count
    """
    outcomes = helpers.outcomes(_ledger(ctx.state))
    return {"accuracy": helpers.accuracy(outcomes, window), "total_outcomes": len(outcomes)}


def expire_stale_predictions(ctx: Context) -> dict[str, Any]:
    """Resolve as expired every pending prediction older than its horizon (on the run's clock).
    LegionIO sweeps every 300 s; here a scheduled chain does, per agent."""
    now = ctx.now()
    pending = ctx.state.items("pending")
    expired = 0
    for prediction in sorted(pending.values(), key=lambda p: (p["created_at"], p["prediction_id"])):
        if helpers.is_stale(datetime.fromisoformat(prediction["created_at"]), prediction["horizon"], now):
            _resolve(ctx, prediction, "expired", None)
            expired += 1
    return {"expired_count": expired, "remaining_pending": len(pending) - expired}


def get_prediction(ctx: Context, prediction_id: str) -> dict[str, Any]:
    """A prediction, pending or resolved (resolved ones are kept while their outcome is among
    the last 500).

    Args:
        prediction_id: the prediction's id
    """
    store = ctx.state
    found = store.get("pending", prediction_id) or store.get("resolved", prediction_id)
    return {"found": True, "prediction": found} if found is not None else {"found": False}
