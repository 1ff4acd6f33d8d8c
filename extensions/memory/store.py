"""How the memory extension keeps an agent's traces in its state (`ctx.state`).

Kinds of documents, all the agent's own:
- "traces": one document per trace, keyed by trace_id (helpers.new_trace's fields).
- "coactivations": one per trace that was ever co-activated, keyed by its trace_id:
  {"counts": {other_trace_id: n}}, kept on both sides of a pair.
- "meta": "decay" holds the last decay_cycle summary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from legion.sdk import Context

TRACES = "traces"
COACTIVATIONS = "coactivations"
META = "meta"


def get(ctx: Context, trace_id: str) -> dict[str, Any] | None:
    return ctx.state.get(TRACES, trace_id)


def every(ctx: Context) -> dict[str, dict[str, Any]]:
    return ctx.state.items(TRACES)


def save(ctx: Context, *traces: Mapping[str, Any]) -> None:
    if traces:
        ctx.state.put_many(TRACES, {t["trace_id"]: dict(t) for t in traces})


def coactivations(ctx: Context, trace_id: str) -> dict[str, int]:
    found = ctx.state.get(COACTIVATIONS, trace_id)
    return dict(found["counts"]) if found else {}


def save_coactivations(ctx: Context, counts: Mapping[str, Mapping[str, int]]) -> None:
    """Write co-activation counts; a trace left with none loses its document."""
    kept = {k: {"counts": dict(v)} for k, v in counts.items() if v}
    if kept:
        ctx.state.put_many(COACTIVATIONS, kept)
    ctx.state.delete(COACTIVATIONS, *(k for k, v in counts.items() if not v))


def remove(ctx: Context, trace_ids: Iterable[str], known: Mapping[str, Mapping[str, Any]] | None = None) -> int:
    """Delete traces and every trace of theirs in others: the links other traces hold to them
    and the co-activation counts. `known` (traces already read) spares reading them again.
    The number of traces deleted."""
    gone = set(trace_ids)
    if not gone:
        return 0
    neighbours: dict[str, dict[str, Any]] = {}  # traces that stay, links updated
    counts: dict[str, dict[str, int]] = {}  # their co-activation counts, updated
    for trace_id in gone:
        trace = known.get(trace_id) if known is not None else None
        trace = trace or get(ctx, trace_id) or {}
        others = set(coactivations(ctx, trace_id)) | set(trace.get("associated_traces") or ())
        for other in others - gone:
            if other not in neighbours:
                found = known.get(other) if known is not None else None
                found = found or get(ctx, other)
                if found is None:
                    continue
                neighbours[other] = dict(found)
                counts[other] = coactivations(ctx, other)
            neighbours[other]["associated_traces"] = [t for t in neighbours[other]["associated_traces"] if t != trace_id]
            counts[other].pop(trace_id, None)
    save(ctx, *neighbours.values())
    save_coactivations(ctx, counts)
    ctx.state.delete(COACTIVATIONS, *gone)
    return ctx.state.delete(TRACES, *gone)
