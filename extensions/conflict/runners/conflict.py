"""Conflicts between the agent and others (LegionIO's `Social::Conflict::Runners::Conflict`):
registered with a severity, which sets the posture the agent takes; argued in exchanges;
resolved, with notes from a language model when one is configured (else written by rule);
marked stale after 24 h unresolved: `conflict.conflict.<function>`.

Each conflict is one document of kind "conflicts" in the agent's state (`ctx.state`), with one
index document (kind "index") of each conflict's status and times; LegionIO kept conflicts in
memory only. Ages are measured on the run's clock (`ctx.now()`). The model is asked through
`llm.chat.structured` only when the call names a `model` or LEGION_LLM_MODEL is set; a model
that fails leaves the rule-based answer in place.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field

from legion.extensions.conflict import helpers as h
from legion.sdk import Canceled, Context, StepError

__all__ = ["register_conflict", "add_exchange", "resolve_conflict", "get_conflict", "active_conflicts",
           "check_stale_conflicts", "recommended_posture"]

KIND = "conflicts"
INDEX = ("index", "conflicts")  # (kind, key) of the index document

ConflictId = Annotated[str, Field(min_length=1, description="the id register_conflict returned")]
Severity = Annotated[Literal["low", "medium", "high", "critical"], Field(description="how serious it is: sets the posture")]
Model = Annotated[str | None, Field(description=(
    "the language model that mediates, provider/name (default: LEGION_LLM_MODEL; with neither, rules do)"))]
ApiBase = Annotated[str | None, Field(description="the model provider's URL (e.g. an OpenAI-compatible server's)")]


def _index(ctx: Context) -> h.Index:
    return (ctx.state.get(*INDEX) or {}).get("conflicts", {})


def _save_index(ctx: Context, index: h.Index) -> None:
    ctx.state.put(INDEX[0], INDEX[1], {"conflicts": index})


def _save(ctx: Context, conflict: h.Conflict, index: h.Index | None = None) -> None:
    """The conflict, then its line in the index (the conflict first: an index line never
    points at nothing)."""
    ctx.state.put(KIND, conflict["conflict_id"], conflict)
    index = _index(ctx) if index is None else index
    _save_index(ctx, {**index, conflict["conflict_id"]: h.index_entry(conflict)})


def _ask(ctx: Context, schema: dict[str, Any], prompt: str, model: str | None, api_base: str | None) -> dict[str, Any] | None:
    """The model's answer fitting `schema`, or None when no model is configured or it fails
    (the caller then answers by rule, as LegionIO did when its model was down)."""
    if not (model or os.environ.get("LEGION_LLM_MODEL")):
        return None
    args: dict[str, Any] = {"schema": schema, "prompt": prompt, "system": h.SYSTEM_PROMPT}
    if model:
        args["model"] = model
    if api_base:
        args["api_base"] = api_base
    try:
        value = ctx.call("llm.chat.structured", args)["value"]
    except Canceled:
        raise
    except StepError as exc:
        ctx.log.warning("conflict mediation by model failed (%s: %s); answering by rule", exc.type, exc)
        return None
    return value if isinstance(value, dict) else None


def register_conflict(ctx: Context, parties: Annotated[list[str], Field(description="who is in the conflict")],
                      severity: Severity, description: Annotated[str, Field(description="what the conflict is about")],
                      ) -> dict[str, Any]:
    """Register an active conflict; its posture follows from its severity (critical ->
    stubborn_presence, high -> persistent_engagement, else speak_once): {conflict_id,
    severity, posture}. Conflicts resolved more than 30 days ago are forgotten, and the oldest
    beyond 1000."""
    now = ctx.now()
    conflict = h.new_conflict(str(uuid.uuid4()), parties, severity, description, now)
    index = _index(ctx)
    ctx.state.put(KIND, conflict["conflict_id"], conflict)
    index = {**index, conflict["conflict_id"]: h.index_entry(conflict)}
    gone = h.evictions(index, now)
    if gone:
        forgotten = set(gone)
        index = {i: e for i, e in index.items() if i not in forgotten}
    _save_index(ctx, index)
    if gone:
        ctx.state.delete(KIND, *gone)
    ctx.log.info("conflict registered: id=%s severity=%s posture=%s", conflict["conflict_id"][:8], severity, conflict["posture"])
    return {"conflict_id": conflict["conflict_id"], "severity": severity, "posture": conflict["posture"]}


def add_exchange(ctx: Context, conflict_id: ConflictId, speaker: Annotated[str, Field(min_length=1, description="who spoke")],
                 message: Annotated[str, Field(description="what they said")]) -> dict[str, Any]:
    """Add what a party said to the conflict: {recorded: true}, or {error: not_found}."""
    conflict = ctx.state.get(KIND, conflict_id)
    if conflict is None:
        return {"error": "not_found"}
    ctx.state.put(KIND, conflict_id, h.with_exchange(conflict, speaker, message, ctx.now()))
    return {"recorded": True}


def resolve_conflict(ctx: Context, conflict_id: ConflictId,
                     outcome: Annotated[str, Field(min_length=1, description="how it ended (e.g. resolved, compromise, deferred, escalated)")],
                     resolution_notes: Annotated[str | None, Field(description=(
                         "what was agreed; when left out, the model (if configured) or the rules write them"))] = None,
                     model: Model = None, api_base: ApiBase = None) -> dict[str, Any]:
    """Resolve an active conflict: {resolved: true, outcome, resolution_notes, notes_source
    (given | model | rules), suggested_outcome (the mediator's: resolved | deferred | escalated;
    absent when the notes were given)}, or {error: not_found}, or {error: already_resolved,
    outcome (the first)}."""
    now = ctx.now()
    conflict = ctx.state.get(KIND, conflict_id)
    if conflict is None:
        return {"error": "not_found"}
    if conflict["status"] == "resolved":
        return {"error": "already_resolved", "outcome": conflict["outcome"]}
    result: dict[str, Any] = {"resolved": True, "outcome": outcome}
    if resolution_notes is not None:
        result["notes_source"] = "given"
    else:
        answer = _ask(ctx, h.RESOLUTION_SCHEMA, h.resolution_prompt(conflict), model, api_base)
        if answer is not None:
            resolution_notes, result["suggested_outcome"], result["notes_source"] = answer["notes"], answer["outcome"], "model"
        else:
            resolution_notes = h.rule_notes(conflict, outcome, now)
            result["suggested_outcome"], result["notes_source"] = h.suggested_outcome(conflict), "rules"
    _save(ctx, h.resolved(conflict, outcome, resolution_notes, now))
    ctx.log.info("conflict resolved: id=%s outcome=%s", conflict_id[:8], outcome)
    return {**result, "resolution_notes": resolution_notes}


def get_conflict(ctx: Context, conflict_id: ConflictId) -> dict[str, Any]:
    """{found: true, conflict}, or {found: false}."""
    conflict = ctx.state.get(KIND, conflict_id)
    return {"found": True, "conflict": conflict} if conflict is not None else {"found": False}


def active_conflicts(ctx: Context, since: Annotated[datetime | None, Field(description=(
        "count the conflicts resolved from this time on (ISO 8601; without a zone, UTC; default: the last 24 h)"))] = None) -> dict[str, Any]:
    """The active conflicts, oldest first, and how many were resolved lately (what the dream
    cycle reports as contradictions resolved): {conflicts, count, resolved, resolved_ids,
    since}."""
    now = ctx.now()
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)  # a time without a zone is UTC, as every time kept here
    start = since if since is not None else now - timedelta(seconds=h.STALE_CONFLICT_TIMEOUT)
    index = _index(ctx)
    conflicts = [c for c in (ctx.state.get(KIND, i) for i in h.active_ids(index)) if c is not None]
    done = h.resolved_between(index, start, now)
    return {"conflicts": conflicts, "count": len(conflicts), "resolved": len(done), "resolved_ids": done,
            "since": start.isoformat()}


def check_stale_conflicts(ctx: Context, model: Model = None, api_base: ApiBase = None) -> dict[str, Any]:
    """Find the active conflicts unresolved for more than 24 h and add a system exchange to each
    (the model's analysis and recommendation when one is configured; once, then again each 24 h
    it stays stale): {checked (active conflicts), stale_count, stale_ids, marked_ids (those
    given an exchange now)}."""
    now = ctx.now()
    index = _index(ctx)
    stale = h.stale_ids(index, now)
    marked = []
    for conflict_id in stale:
        conflict = ctx.state.get(KIND, conflict_id)
        if conflict is None or not h.due_for_stale_mark(conflict, now):
            continue
        answer = _ask(ctx, h.STALE_SCHEMA, h.stale_prompt(conflict, now), model, api_base)
        message = h.stale_message(answer["analysis"], answer["recommendation"]) if answer else h.stale_message()
        conflict = {**h.with_exchange(conflict, h.SYSTEM_SPEAKER, message, now), "stale_marked_at": now.isoformat()}
        ctx.state.put(KIND, conflict_id, conflict)
        marked.append(conflict_id)
    return {"checked": len(h.active_ids(index)), "stale_count": len(stale), "stale_ids": stale, "marked_ids": marked}


def recommended_posture(severity: Severity) -> dict[str, Any]:
    """The posture for a severity: {severity, posture}."""
    return {"severity": severity, "posture": h.recommended_posture(severity)}
