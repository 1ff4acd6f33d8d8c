"""What reaches an agent and what it says back: signals wait in its inbox until a tick drains
them (LegionIO's sensory buffer, kept in the agent's state so it survives a restart and works
across workers); a partner's message (`human_direct`) stays until the agent has answered it,
so the tick that wakes the agent and the tick that answers may be different ticks."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from legion.extensions.tick import helpers as h
from legion.sdk import Context, StepError

__all__ = ["receive", "drain_signals", "filter_signals", "reply", "conversation"]

INBOX, OUTBOX, COUNTERS = "inbox", "outbox", "counters"
MAX_INBOX = 1000  # signals kept waiting; the oldest ambient ones go first (LegionIO's buffer of 1000)
MAX_OUTBOX = 200  # replies kept for `legion agent status` and `conversation`
ATTENTION_FLOOR = 0.1  # below this salience an ambient signal is not attended to


def _next(ctx: Context, name: str) -> int:
    """The next number of `name` (atomic: two signals arriving at once get two numbers)."""
    counters = ctx.state.update(COUNTERS, "seq", lambda c: dict(c or {}, **{name: int((c or {}).get(name, 0)) + 1}))
    return int((counters or {})[name])


def _key(n: int) -> str:
    return f"{n:012d}"  # keys sort in arrival order


def receive(ctx: Context, value: Annotated[str, Field(min_length=1, max_length=100_000, description="what arrived")],
            source_type: Annotated[str, Field(description="human_direct (the partner), ambient, or another source")] = "ambient",
            salience: Annotated[float, Field(ge=0, le=1, description="how much it asks for attention")] = 0.0,
            channel: Annotated[str | None, Field(description="where it came from")] = None) -> dict[str, Any]:
    """Put a signal in the agent's inbox for its next tick: {id, received_at}. A partner's
    message also carries the behaviour it shows (identity's six dimensions)."""
    now = ctx.now()
    signal: dict[str, Any] = {"value": value, "source_type": source_type, "salience": 1.0 if source_type == h.HUMAN_DIRECT else salience,
                              "channel": channel, "received_at": now.isoformat()}
    if source_type == h.HUMAN_DIRECT:
        last = ctx.state.get(COUNTERS, "partner") or {}
        gap = None if last.get("at") is None else now.timestamp() - float(last["at"])
        signal["observations"] = h.observations(value, list(last.get("recent", [])), gap, now.hour)
        ctx.state.put(COUNTERS, "partner", {"at": now.timestamp(), "recent": [*last.get("recent", []), value][-5:]})
    n = _next(ctx, "in")
    signal["id"] = n
    ctx.state.put(INBOX, _key(n), signal)
    waiting = ctx.state.items(INBOX)
    if len(waiting) > MAX_INBOX:  # drop the oldest signals that are not a partner's message
        extra = [k for k in sorted(waiting) if not h.is_human(waiting[k])][: len(waiting) - MAX_INBOX]
        ctx.state.delete(INBOX, *extra)
    return {"id": n, "received_at": signal["received_at"]}


def drain_signals(ctx: Context) -> dict[str, Any]:
    """The signals waiting for this tick, oldest first: {signals, count}; each says whether an
    earlier tick saw it (`seen`). Ambient signals are taken out of the inbox; a partner's
    message stays until `reply` answers it."""
    waiting = ctx.state.items(INBOX)
    signals = [dict(waiting[k], seen=bool(waiting[k].get("seen"))) for k in sorted(waiting)]
    taken = [k for k in sorted(waiting) if not h.is_human(waiting[k])]
    ctx.state.delete(INBOX, *taken)
    # A partner's message waits for its answer, but is felt and remembered once: marked seen.
    fresh = {k: dict(waiting[k], seen=True) for k in sorted(waiting) if h.is_human(waiting[k]) and not waiting[k].get("seen")}
    if fresh:
        ctx.state.put_many(INBOX, fresh)
    return {"signals": signals, "count": len(signals)}


def filter_signals(signals: Annotated[list[dict[str, Any]], Field(description="the tick's signals")],
                   floor: Annotated[float, Field(ge=0, le=1, description="the salience an ambient signal needs")] = ATTENTION_FLOOR,
                   ) -> dict[str, Any]:
    """The sensory_processing phase: what is worth attending to: {signals (a partner's messages
    and signals at or over `floor`), dropped, last (the one to feel: the last new partner
    message, else the last new signal; null when nothing is new), partner_messages (new ones),
    observations (of the last new partner message)}. New: not seen by an earlier tick."""
    kept = [s for s in signals if h.is_human(s) or h.salience(s) >= floor]
    new = [s for s in kept if not s.get("seen")]
    partner = [s for s in new if h.is_human(s)]
    last = partner[-1] if partner else (new[-1] if new else None)
    return {"signals": kept, "dropped": len(signals) - len(kept), "last": last, "partner_messages": len(partner),
            "observations": partner[-1].get("observations") if partner else None}


def reply(ctx: Context, text: Annotated[str, Field(description="what the agent says to its partner")],
          in_reply_to: Annotated[list[int], Field(description="the ids of the partner's messages it answers")]) -> dict[str, Any]:
    """Say `text` to the partner in answer to messages `in_reply_to` (they leave the inbox):
    {id, at}."""
    if not in_reply_to:
        raise StepError("a reply answers at least one message: give in_reply_to", type="InvalidArguments")
    n = _next(ctx, "out")
    at = ctx.now().isoformat()
    ctx.state.put(OUTBOX, _key(n), {"id": n, "text": text, "in_reply_to": in_reply_to, "at": at})
    ctx.state.delete(INBOX, *[_key(i) for i in in_reply_to])
    kept = sorted(ctx.state.items(OUTBOX))
    if len(kept) > MAX_OUTBOX:
        ctx.state.delete(OUTBOX, *kept[: len(kept) - MAX_OUTBOX])
    return {"id": n, "at": at}


def conversation(ctx: Context, limit: Annotated[int, Field(ge=1, le=MAX_OUTBOX)] = 20) -> dict[str, Any]:
    """The agent's last replies, and the partner's messages still waiting: {replies, waiting}."""
    out = ctx.state.items(OUTBOX)
    waiting = ctx.state.items(INBOX)
    return {"replies": [out[k] for k in sorted(out)][-limit:],
            "waiting": [waiting[k] for k in sorted(waiting) if h.is_human(waiting[k])]}
