"""memory.consolidation: reinforcement, decay and pruning, storage tiers, Hebbian
association, quota and erasure of an agent's memory traces."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from legion.extensions.memory import helpers as h
from legion.extensions.memory import store
from legion.extensions.memory.helpers import Eviction, TraceType
from legion.sdk import Context, StepError

__all__ = ["reinforce", "decay_cycle", "migrate_tier", "hebbian_link", "walk_associations", "enforce_quota", "erase_by_type",
           "erase_by_agent"]

DECAY_SUMMARY = "decay"


def reinforce(trace_id: str, imprint_active: bool = False, *, ctx: Context) -> dict[str, Any]:
    """Reinforce a trace: its strength now plus 0.10 (0.30 during the imprint window), at most
    1.0: {found, reinforced, trace_id, new_strength}; firmware is never reinforced
    ({found: true, reinforced: false, reason: "firmware"}); {found: false} for no such trace.

    Args:
        trace_id: the trace's id
        imprint_active: apply the imprint multiplier (x3); coldstart.coldstart.current_multiplier tells whether the window is open
    """
    trace = store.get(ctx, trace_id)
    if trace is None:
        return {"found": False}
    if trace["trace_type"] == "firmware":
        return {"found": True, "reinforced": False, "reason": "firmware"}
    updated = h.reinforce_trace(trace, ctx.now(), imprint_active)
    store.save(ctx, updated)
    return {"found": True, "reinforced": True, "trace_id": trace_id, "new_strength": updated["strength"]}


def decay_cycle(tick_count: Annotated[int, Field(ge=0)] | None = None, maintenance: bool = True,
                *, ctx: Context) -> dict[str, Any]:
    """Bring every trace's decay up to now and prune those at or below 0.01 (the tick's
    memory_consolidation phase): {decayed, pruned, total, remaining, maintained_at}.

    Decay is computed from the time elapsed since each trace's strength was last set, so
    calling this often (every tick) decays no faster than calling it rarely.

    Args:
        tick_count: LegionIO's non-cumulative decay instead: every trace set to peak * (tick_count + 1) ** -rate, whatever the time elapsed
        maintenance: false: change nothing and return the last summary with deferred: true
    """
    if not maintenance:
        last = ctx.state.get(store.META, DECAY_SUMMARY) or {"decayed": 0, "pruned": 0, "total": 0, "remaining": 0,
                                                            "maintained_at": None}
        return {**last, "deferred": True, "reason": "background_decay_actor"}
    now = ctx.now()
    stamp = h.iso(now)
    traces = store.every(ctx)
    kept: list[dict[str, Any]] = []
    doomed: list[str] = []
    for trace in traces.values():
        rate = float(trace["base_decay_rate"])
        if rate == 0:
            continue
        if tick_count is not None:
            strength = h.compute_decay(float(trace["peak_strength"]), rate, tick_count, float(trace["emotional_intensity"]))
        else:
            strength = h.live_strength(trace, now)
        if strength <= h.PRUNE_THRESHOLD:
            doomed.append(trace["trace_id"])
        elif tick_count is not None or float(trace["strength"]) - strength >= h.DECAY_WRITE_EPSILON:
            kept.append({**trace, "strength": strength, "last_decayed": stamp})
    decayed = sum(1 for t in traces.values() if float(t["base_decay_rate"]) != 0) - len(doomed)
    store.save(ctx, *kept)
    store.remove(ctx, doomed, known=traces)
    summary = {"decayed": decayed, "pruned": len(doomed), "total": len(traces), "remaining": len(traces) - len(doomed),
               "maintained_at": stamp}
    ctx.state.put(store.META, DECAY_SUMMARY, summary)
    return summary


def migrate_tier(*, ctx: Context) -> dict[str, Any]:
    """Put each trace in its storage tier now (hot: reinforced within 24 h, warm: within 90
    days, cold: older, erased: at or below the prune threshold): {migrated}."""
    now = ctx.now()
    moved = []
    for trace in store.every(ctx).values():
        tier = h.compute_storage_tier(h.live_strength(trace, now), h.seconds_between(trace["last_reinforced"], now))
        if tier != trace["storage_tier"]:
            moved.append({**trace, "storage_tier": tier})
    store.save(ctx, *moved)
    return {"migrated": len(moved)}


def hebbian_link(trace_id_a: str | None = None, trace_id_b: str | None = None, *, ctx: Context) -> dict[str, Any]:
    """Record one co-activation of two traces; at the third they are linked (each keeps at most
    20 links): {linked: true, coactivation_count, associated}, or {linked: false, reason}
    (missing_trace_ids, same_trace, trace_not_found).

    Args:
        trace_id_a: one trace
        trace_id_b: the other
    """
    if trace_id_a is None or trace_id_b is None:
        return {"linked": False, "reason": "missing_trace_ids"}
    if trace_id_a == trace_id_b:
        return {"linked": False, "reason": "same_trace"}
    a, b = store.get(ctx, trace_id_a), store.get(ctx, trace_id_b)
    if a is None or b is None:
        return {"linked": False, "reason": "trace_not_found"}
    counts_a, counts_b = store.coactivations(ctx, trace_id_a), store.coactivations(ctx, trace_id_b)
    count = max(counts_a.get(trace_id_b, 0), counts_b.get(trace_id_a, 0)) + 1
    counts_a[trace_id_b] = counts_b[trace_id_a] = count
    store.save_coactivations(ctx, {trace_id_a: counts_a, trace_id_b: counts_b})
    if count >= h.COACTIVATION_THRESHOLD:
        before = (list(a["associated_traces"]), list(b["associated_traces"]))
        h.link(a, b)
        if (a["associated_traces"], b["associated_traces"]) != before:
            store.save(ctx, a, b)
    associated = trace_id_b in a["associated_traces"] or trace_id_a in b["associated_traces"]
    return {"linked": True, "coactivation_count": count, "associated": associated}


def walk_associations(start_id: str, max_hops: Annotated[int, Field(ge=1, le=100)] = h.WALK_MAX_HOPS,
                      min_strength: Annotated[float, Field(ge=0.0, le=1.0)] = h.WALK_MIN_STRENGTH,
                      *, ctx: Context) -> dict[str, Any]:
    """Walk the associations from a trace, breadth first: {start_id, found, count,
    associations: [{trace_id, depth, path}]}; traces weaker than min_strength are neither
    listed nor walked through.

    Args:
        start_id: the trace to start from (not listed itself)
        max_hops: how far to walk
        min_strength: the weakest trace to list and walk through
    """
    now = ctx.now()
    traces = store.every(ctx)

    def neighbours(trace_id: str) -> list[str]:
        return list(traces[trace_id]["associated_traces"]) if trace_id in traces else []

    def strength(trace_id: str) -> float | None:
        return h.live_strength(traces[trace_id], now) if trace_id in traces else None

    found = h.walk(start_id, neighbours, strength, max_hops, min_strength)
    return {"start_id": start_id, "found": start_id in traces, "count": len(found), "associations": found}


def enforce_quota(max_traces: Annotated[int, Field(ge=0)] = h.QUOTA_MAX_TRACES,
                  max_bytes: Annotated[int, Field(ge=0)] = h.QUOTA_MAX_BYTES,
                  eviction: Eviction = h.QUOTA_EVICTION, *, ctx: Context) -> dict[str, Any]:
    """Keep the agent's memory within its quota, evicting (never firmware) the least recently
    reinforced traces first (lru) or the least confident: {success, within_limits, evicted,
    total, remaining}.

    Args:
        max_traces: at most this many traces
        max_bytes: at most this many bytes of trace documents (JSON)
        eviction: lru or lowest_confidence
    """
    traces = store.every(ctx)
    order = h.eviction_order(traces.values(), eviction)
    evicted = order[:max(len(traces) - max_traces, 0)]
    first = set(evicted)
    left = [t for i, t in traces.items() if i not in first]
    overage = sum(h.document_bytes(t) for t in left) - max_bytes
    if overage > 0:  # as LegionIO: an estimate of ten traces per KiB over
        evicted = order[:len(evicted) + h.bytes_eviction_count(overage)]
    store.remove(ctx, evicted, known=traces)
    gone = set(evicted)
    remaining = [t for i, t in traces.items() if i not in gone]
    within = len(remaining) <= max_traces and sum(h.document_bytes(t) for t in remaining) <= max_bytes
    return {"success": True, "within_limits": within, "evicted": len(evicted), "total": len(traces), "remaining": len(remaining)}


def erase_by_type(type: TraceType, *, ctx: Context) -> dict[str, Any]:  # noqa: A002 - LegionIO's argument name
    """Erase every trace of a type: {erased, type}.

    Args:
        type: the trace type
    """
    traces = store.every(ctx)
    doomed = [i for i, t in traces.items() if t["trace_type"] == type]
    return {"erased": store.remove(ctx, doomed, known=traces), "type": type}


def erase_by_agent(partition_id: str | None = None, *, ctx: Context) -> dict[str, Any]:
    """Erase all of an agent's memory (traces, co-activations, the decay summary): {erased
    (traces), partition_id}. An agent's memory is its own: partition_id must be the agent
    the call runs as (the default).

    Args:
        partition_id: the agent whose memory to erase; default the run's agent
    """
    partition = partition_id or ctx.agent
    if partition != ctx.agent:
        raise StepError(f"memory.consolidation.erase_by_agent runs as agent {ctx.agent!r} and can erase only that agent's "
                        f"memory, not {partition!r}'s: run it as agent {partition!r}", type="ForeignPartition")
    erased = len(store.every(ctx))
    ctx.state.clear()
    return {"erased": erased, "partition_id": partition}
