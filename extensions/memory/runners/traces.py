"""memory.traces: store, read, retrieve and delete an agent's memory traces.

Every strength in a result is the trace's strength at the run's time (`ctx.now()`): decay is
computed from the time elapsed since the strength was last written (see memory.helpers).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from legion.extensions.memory import helpers as h
from legion.extensions.memory import store
from legion.extensions.memory.helpers import Origin, TraceType
from legion.sdk import Context

__all__ = ["store_trace", "get_trace", "retrieve_by_type", "retrieve_by_domain", "retrieve_associated", "retrieve_ranked",
           "delete_trace", "retrieve_and_reinforce"]

Strength = Annotated[float, Field(ge=0.0, le=1.0, description="only traces at least this strong (0..1)")]
Limit = Annotated[int, Field(ge=1, le=100_000, description="at most this many traces")]
Affect = float | str | dict[str, Any]


def store_trace(
    type: TraceType,  # noqa: A002 - LegionIO's argument name
    content_payload: Any,
    content_embedding: list[float] | None = None,
    emotional_valence: Affect = 0.0,
    emotional_intensity: Affect = 0.0,
    domain_tags: list[str] | None = None,
    origin: Origin = "direct_experience",
    source_agent_id: str | None = None,
    imprint_active: bool = False,
    unresolved: bool = False,
    consolidation_candidate: bool = False,
    confidence: Annotated[float, Field(ge=0.0, le=1.0)] | None = None,
    *,
    ctx: Context,
) -> dict[str, Any]:
    """Store a new memory trace with its type's starting strength and decay rate.

    Args:
        type: the trace type (firmware, identity, procedural, trust, semantic, episodic, sensory)
        content_payload: what the trace remembers (any JSON value)
        content_embedding: a vector for the content, kept as given (reserved)
        emotional_valence: -1..1; a number, a numeric or JSON string, or a mapping with a valence/sentiment/polarity/score
        emotional_intensity: 0..1 (slows decay); read like emotional_valence
        domain_tags: tags retrieve_by_domain finds the trace by
        origin: firmware, direct_experience, mesh_transfer or imprint
        source_agent_id: the agent the content came from, if another
        imprint_active: stored during the imprint window: the trace starts with one reinforcement counted
        unresolved: an open matter (a failed prediction, an error)
        consolidation_candidate: marked for consolidation
        confidence: 0..1; default 1.0 for firmware, else 0.5
    """
    trace = h.new_trace(
        trace_id=str(uuid.uuid4()), trace_type=type, content_payload=content_payload, now=ctx.now(), partition_id=ctx.agent,
        content_embedding=content_embedding, emotional_valence=emotional_valence, emotional_intensity=emotional_intensity,
        domain_tags=domain_tags or (), origin=origin, source_agent_id=source_agent_id, imprint_active=imprint_active,
        unresolved=unresolved, consolidation_candidate=consolidation_candidate, confidence=confidence,
    )
    store.save(ctx, trace)
    return {"trace_id": trace["trace_id"], "trace_type": trace["trace_type"], "strength": trace["strength"]}


def get_trace(trace_id: str, *, ctx: Context) -> dict[str, Any]:
    """One trace, as it is now: {found: true, trace} or {found: false}.

    Args:
        trace_id: the trace's id
    """
    trace = store.get(ctx, trace_id)
    if trace is None:
        return {"found": False}
    return {"found": True, "trace": h.at(trace, ctx.now())}


def retrieve_by_type(type: TraceType, min_strength: Strength = 0.0, limit: Limit = 100,  # noqa: A002
                     *, ctx: Context) -> dict[str, Any]:
    """Traces of one type, strongest first: {count, traces}.

    Args:
        type: the trace type
    """
    traces = (t for t in store.every(ctx).values() if t["trace_type"] == type)
    found = h.rank(traces, ctx.now(), min_strength, limit)
    return {"count": len(found), "traces": found}


def retrieve_by_domain(domain_tag: str, min_strength: Strength = 0.0, limit: Limit = 100, *, ctx: Context) -> dict[str, Any]:
    """Traces tagged `domain_tag`, strongest first: {count, traces}.

    Args:
        domain_tag: one of the traces' domain_tags
    """
    traces = (t for t in store.every(ctx).values() if domain_tag in t["domain_tags"])
    found = h.rank(traces, ctx.now(), min_strength, limit)
    return {"count": len(found), "traces": found}


def retrieve_associated(trace_id: str, min_strength: Strength = 0.0, limit: Limit = 20, *, ctx: Context) -> dict[str, Any]:
    """The traces a trace is linked to (Hebbian associations), strongest first: {count, traces}.

    Args:
        trace_id: the trace whose associations to list
    """
    trace = store.get(ctx, trace_id)
    if trace is None:
        return {"count": 0, "traces": []}
    linked = (store.get(ctx, other) for other in trace["associated_traces"])
    found = h.rank((t for t in linked if t is not None), ctx.now(), min_strength, limit)
    return {"count": len(found), "traces": found}


def retrieve_ranked(trace_ids: list[str] | None = None, query_time: datetime | None = None, limit: Limit | None = None,
                    *, ctx: Context) -> dict[str, Any]:
    """Traces ordered by retrieval score (strength, recency of reinforcement, emotional
    intensity, association): {success, count, traces: [{trace_id, score, trace}]}.

    Args:
        trace_ids: the traces to rank; none or empty: every trace of the agent
        query_time: the time to score at (ISO 8601); default now
        limit: at most this many, best first; default all
    """
    when = h.as_utc(query_time) if query_time is not None else ctx.now()
    if trace_ids:
        chosen = (store.get(ctx, i) for i in dict.fromkeys(trace_ids))
        traces = [t for t in chosen if t is not None]
    else:
        traces = list(store.every(ctx).values())
    # A trace counts as associated when another of the ranked traces links to it.
    linked = {other for t in traces for other in t["associated_traces"]}
    scored = [
        {
            "trace_id": t["trace_id"],
            "score": h.compute_retrieval_score(h.live_strength(t, when), h.seconds_between(t["last_reinforced"], when),
                                               float(t["emotional_intensity"]), t["trace_id"] in linked),
            "trace": h.summary(t, when),
        }
        for t in traces
    ]
    scored.sort(key=lambda s: -s["score"])
    kept = scored[:limit] if limit is not None else scored
    return {"success": True, "count": len(kept), "traces": kept}


def delete_trace(trace_id: str, *, ctx: Context) -> dict[str, Any]:
    """Delete a trace, and the links and co-activation counts other traces hold to it:
    {deleted, trace_id} (deleted is false when there was no such trace).

    Args:
        trace_id: the trace's id
    """
    return {"deleted": store.remove(ctx, [trace_id]) > 0, "trace_id": trace_id}


def retrieve_and_reinforce(limit: Annotated[int, Field(ge=1, le=1000)] = 10, *, ctx: Context) -> dict[str, Any]:
    """The tick's memory_retrieval phase: the strongest traces (at least 0.1), each but
    firmware marked as retrieved now (reinforcement_count + 1, last_reinforced = now; strength
    unchanged): {count, traces} with each trace's summary.

    Args:
        limit: at most this many traces
    """
    now = ctx.now()
    traces = store.every(ctx)
    top = h.rank(traces.values(), now, h.RETRIEVE_MIN_STRENGTH, limit)
    touched = []
    for view in top:
        if float(view["base_decay_rate"]) == 0:  # firmware is never reinforced
            continue
        trace = h.settle(traces[view["trace_id"]], now)
        trace["reinforcement_count"] = int(trace["reinforcement_count"]) + 1
        trace["last_reinforced"] = h.iso(now)
        traces[trace["trace_id"]] = trace
        touched.append(trace)
    store.save(ctx, *touched)
    return {"count": len(top), "traces": [h.summary(traces[v["trace_id"]], now) for v in top]}
