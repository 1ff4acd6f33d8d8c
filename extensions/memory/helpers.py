"""Memory traces: LegionIO's constants and formulas as pure functions.

Nothing here reads a clock, the state or anything else: each function takes `now` and the
values it needs. The runners (`memory.traces`, `memory.consolidation`) read and write the
agent's state and call these.

Decay, the one formula changed from LegionIO (docs/agents/memory.md explains why): LegionIO's
power law `peak * (ticks + 1) ** -rate_eff` is kept as `compute_decay` and is LegionIO's one
tick of decay (`ticks_since_access = 1`). Here decay accumulates: every TICK_SECONDS of time
elapsed since a trace's strength was last set apply that one-tick step again to what the
previous step left, so a trace weakens for as long as nobody touches it, whatever the
number of decay cycles run meanwhile, and reaches the prune threshold.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, get_args

TraceType = Literal["firmware", "identity", "procedural", "trust", "semantic", "episodic", "sensory"]
Origin = Literal["firmware", "direct_experience", "mesh_transfer", "imprint"]
StorageTier = Literal["hot", "warm", "cold", "erased"]
Eviction = Literal["lru", "lowest_confidence"]

TRACE_TYPES: tuple[str, ...] = get_args(TraceType)
ORIGINS: tuple[str, ...] = get_args(Origin)
STORAGE_TIERS: tuple[str, ...] = get_args(StorageTier)

BASE_DECAY_RATES: dict[str, float] = {
    "firmware": 0.000,
    "identity": 0.001,
    "procedural": 0.005,
    "trust": 0.008,
    "semantic": 0.010,
    "episodic": 0.020,
    "sensory": 0.100,
}
STARTING_STRENGTHS: dict[str, float] = {
    "firmware": 1.000,
    "identity": 1.000,
    "procedural": 0.400,
    "trust": 0.300,
    "semantic": 0.500,
    "episodic": 0.600,
    "sensory": 0.400,
}

E_WEIGHT = 0.3  # how much emotional intensity slows decay
R_AMOUNT = 0.10  # one reinforcement
IMPRINT_MULTIPLIER = 3.0  # reinforcement during the imprint window
AUTO_FIRE_THRESHOLD = 0.85  # defined by LegionIO, used nowhere (kept for reference)
ARCHIVE_THRESHOLD = 0.05  # defined by LegionIO, used nowhere (kept for reference)
PRUNE_THRESHOLD = 0.01  # at or below it a trace is pruned by decay_cycle and its tier is "erased"
HOT_TIER_WINDOW = 86_400  # seconds since last reinforced: hot
WARM_TIER_WINDOW = 7_776_000  # 90 days: warm; older: cold
RETRIEVAL_RECENCY_HALF = 3600  # half-life of the recency factor of the retrieval score (seconds)
ASSOCIATION_BONUS = 0.15
MAX_ASSOCIATIONS = 20  # links kept per trace
COACTIVATION_THRESHOLD = 3  # co-activations of a pair before it is linked
VALENCE_SCALAR_KEYS = ("valence", "emotional_valence", "sentiment", "polarity", "score")

# One tick of decay is an hour of elapsed time (RETRIEVAL_RECENCY_HALF, LegionIO's own unit of
# memory time). With it, an untouched trace of intensity 0 is pruned after about 2 days
# (sensory), 12 (episodic), 24 (semantic), 26 (trust), 44 (procedural) and 277 (identity):
# lifetimes that fit LegionIO's tiers (hot for a day, warm for 90 days, then cold).
TICK_SECONDS = 3600.0
RETRIEVE_MIN_STRENGTH = 0.1  # retrieve_and_reinforce considers traces at least this strong
WALK_MAX_HOPS = 12
WALK_MIN_STRENGTH = 0.1
QUOTA_MAX_TRACES = 10_000
QUOTA_MAX_BYTES = 52_428_800  # 50 MB of trace documents
QUOTA_EVICTION: Eviction = "lru"
# decay_cycle writes a trace back only once it has lost this much since it was last written:
# a trace's strength is always computed from its last written value and the time since, so a
# skipped write loses nothing, and a tick that runs every second does not rewrite every trace.
DECAY_WRITE_EPSILON = 1e-3


# ---------------------------------------------------------------- time


def iso(moment: datetime) -> str:
    """How times are kept in trace documents: ISO 8601 in UTC."""
    return as_utc(moment).isoformat()


def as_utc(moment: datetime) -> datetime:
    """A naive datetime (from a chain's argument) is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_time(text: str) -> datetime:
    return as_utc(datetime.fromisoformat(text))


def seconds_between(earlier: str | datetime, later: datetime) -> float:
    """Seconds from `earlier` to `later`, never negative (a clock that went back decays nothing)."""
    start = parse_time(earlier) if isinstance(earlier, str) else as_utc(earlier)
    return max((as_utc(later) - start).total_seconds(), 0.0)


# ---------------------------------------------------------------- decay and reinforcement


def effective_rate(base_decay_rate: float, emotional_intensity: float = 0.0) -> float:
    """Emotionally intense traces decay more slowly: rate / (1 + intensity * E_WEIGHT)."""
    return base_decay_rate / (1.0 + emotional_intensity * E_WEIGHT)


def compute_decay(peak_strength: float, base_decay_rate: float, ticks_since_access: float,
                  emotional_intensity: float = 0.0) -> float:
    """LegionIO's power law, exactly: peak * (ticks_since_access + 1) ** -rate_eff, clamped
    to [0, 1]; the peak itself when the rate is zero (firmware)."""
    if base_decay_rate == 0:
        return peak_strength
    if peak_strength == 0:
        return 0.0
    strength = peak_strength * (ticks_since_access + 1.0) ** -effective_rate(base_decay_rate, emotional_intensity)
    return clamp(strength, 0.0, 1.0)


def decayed_strength(strength: float, base_decay_rate: float, ticks: float, emotional_intensity: float = 0.0) -> float:
    """`strength` after `ticks` ticks of cumulative decay: LegionIO's one-tick step
    (compute_decay with ticks_since_access = 1, i.e. a factor 2 ** -rate_eff) applied once per
    tick, each to what the previous left. `ticks` may be fractional; zero rate never decays."""
    if base_decay_rate == 0 or ticks <= 0:
        return clamp(strength, 0.0, 1.0)
    step = compute_decay(1.0, base_decay_rate, 1, emotional_intensity)
    return clamp(strength * step ** ticks, 0.0, 1.0)


def ticks_between(earlier: str | datetime, later: datetime) -> float:
    """Elapsed time in decay ticks (TICK_SECONDS each)."""
    return seconds_between(earlier, later) / TICK_SECONDS


def ticks_to_prune(strength: float, base_decay_rate: float, emotional_intensity: float = 0.0) -> float:
    """How many ticks until `strength` decays to PRUNE_THRESHOLD (inf for firmware)."""
    if base_decay_rate == 0:
        return math.inf
    if strength <= PRUNE_THRESHOLD:
        return 0.0
    return math.log(PRUNE_THRESHOLD / strength) / math.log(compute_decay(1.0, base_decay_rate, 1, emotional_intensity))


def live_strength(trace: Mapping[str, Any], now: datetime) -> float:
    """A trace's strength at `now`: its stored strength (valid at `last_decayed`) decayed by
    the ticks elapsed since."""
    return decayed_strength(float(trace["strength"]), float(trace["base_decay_rate"]),
                            ticks_between(trace["last_decayed"], now), float(trace.get("emotional_intensity") or 0.0))


def compute_reinforcement(current_strength: float, imprint_active: bool = False) -> float:
    """current + R_AMOUNT (times IMPRINT_MULTIPLIER during the imprint window), clamped to [0, 1]."""
    multiplier = IMPRINT_MULTIPLIER if imprint_active else 1.0
    return clamp(current_strength + R_AMOUNT * multiplier, 0.0, 1.0)


def compute_retrieval_score(strength: float, seconds_since_reinforced: float, emotional_intensity: float,
                            associated: bool = False) -> float:
    """strength * 2 ** (-seconds / RETRIEVAL_RECENCY_HALF) * (1 + intensity) * (1.15 if associated)."""
    recency = 2.0 ** (-max(seconds_since_reinforced, 0.0) / RETRIEVAL_RECENCY_HALF)
    bonus = 1.0 + ASSOCIATION_BONUS if associated else 1.0
    return strength * recency * (1.0 + emotional_intensity) * bonus


def compute_storage_tier(strength: float, seconds_since_reinforced: float) -> StorageTier:
    """erased at or below the prune threshold, else hot (reinforced within 24 h), warm (90 d), cold."""
    if strength <= PRUNE_THRESHOLD:
        return "erased"
    if seconds_since_reinforced <= HOT_TIER_WINDOW:
        return "hot"
    if seconds_since_reinforced <= WARM_TIER_WINDOW:
        return "warm"
    return "cold"


def clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


# ---------------------------------------------------------------- emotional context


def normalize_valence(value: Any) -> float:
    """A valence in [-1, 1] from a number, a numeric string, a JSON string or a mapping
    (its valence/emotional_valence/sentiment/polarity/score, else its only scalar); 0.0 otherwise."""
    return _scalar(value, -1.0, 1.0, VALENCE_SCALAR_KEYS)


def normalize_intensity(value: Any) -> float:
    """An intensity in [0, 1], read as normalize_valence reads a valence (a mapping's only scalar)."""
    return _scalar(value, 0.0, 1.0, ())


def _scalar(value: Any, low: float, high: float, keys: tuple[str, ...]) -> float:
    if isinstance(value, bool) or value is None:
        return 0.0
    if isinstance(value, (int, float)):
        return clamp(float(value), low, high) if math.isfinite(value) else 0.0
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0.0
        try:
            return _scalar(float(text), low, high, keys)
        except ValueError:
            pass
        if text[0] in "{[":
            try:
                return _scalar(json.loads(text), low, high, keys)
            except ValueError:
                return 0.0
        return 0.0
    if isinstance(value, Mapping):
        for key in keys:
            if _is_scalar(value.get(key)):
                return _scalar(value[key], low, high, keys)
        scalars = [v for v in value.values() if _is_scalar(v)]
        return _scalar(scalars[0], low, high, keys) if len(scalars) == 1 else 0.0
    return 0.0


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (int, float, str)) and not isinstance(value, bool)


# ---------------------------------------------------------------- traces


def new_trace(*, trace_id: str, trace_type: str, content_payload: Any, now: datetime, partition_id: str,
              content_embedding: list[float] | None = None, emotional_valence: Any = 0.0, emotional_intensity: Any = 0.0,
              domain_tags: Iterable[str] = (), origin: str = "direct_experience", source_agent_id: str | None = None,
              imprint_active: bool = False, unresolved: bool = False, consolidation_candidate: bool = False,
              confidence: float | None = None) -> dict[str, Any]:
    """A new trace document with LegionIO's fields and defaults (times as ISO strings)."""
    if trace_type not in TRACE_TYPES:
        raise ValueError(f"invalid trace type: {trace_type}")
    if origin not in ORIGINS:
        raise ValueError(f"invalid origin: {origin}")
    stamp = iso(now)
    return {
        "trace_id": trace_id,
        "trace_type": trace_type,
        "content_payload": content_payload,
        "content_embedding": content_embedding,
        "strength": STARTING_STRENGTHS[trace_type],
        "peak_strength": STARTING_STRENGTHS[trace_type],
        "base_decay_rate": BASE_DECAY_RATES[trace_type],
        "emotional_valence": normalize_valence(emotional_valence),
        "emotional_intensity": normalize_intensity(emotional_intensity),
        "domain_tags": list(dict.fromkeys(domain_tags)),
        "origin": origin,
        "source_agent_id": source_agent_id,
        "created_at": stamp,
        "last_reinforced": stamp,
        "last_decayed": stamp,
        "reinforcement_count": 1 if imprint_active else 0,
        "confidence": confidence if confidence is not None else (1.0 if trace_type == "firmware" else 0.5),
        "storage_tier": "hot",
        "partition_id": partition_id,
        "encryption_key_id": None,
        "associated_traces": [],
        "parent_trace_id": None,
        "child_trace_ids": [],
        "unresolved": unresolved,
        "consolidation_candidate": consolidation_candidate,
    }


def at(trace: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The trace as it is at `now` (its live strength), for a result."""
    return {**trace, "strength": live_strength(trace, now)}


def settle(trace: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The trace with its decay up to `now` written in: same live strength, anchored at `now`."""
    return {**trace, "strength": live_strength(trace, now), "last_decayed": iso(now)}


SUMMARY_FIELDS = ("trace_id", "trace_type", "content_payload", "strength", "emotional_valence", "emotional_intensity",
                  "domain_tags", "origin", "confidence", "reinforcement_count", "unresolved")


def summary(trace: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The part of a trace a tick phase needs: no bookkeeping (times, links, embedding)."""
    live = at(trace, now)
    return {k: live.get(k) for k in SUMMARY_FIELDS}


def reinforce_trace(trace: Mapping[str, Any], now: datetime, imprint_active: bool) -> dict[str, Any]:
    """The trace after one reinforcement at `now` (callers keep firmware out)."""
    strength = compute_reinforcement(live_strength(trace, now), imprint_active)
    stamp = iso(now)
    return {**trace, "strength": strength, "peak_strength": max(float(trace["peak_strength"]), strength),
            "last_reinforced": stamp, "last_decayed": stamp, "reinforcement_count": int(trace["reinforcement_count"]) + 1}


def rank(traces: Iterable[Mapping[str, Any]], now: datetime, min_strength: float, limit: int) -> list[dict[str, Any]]:
    """Traces at least `min_strength` strong at `now`, strongest first, at most `limit`, live."""
    live = [at(t, now) for t in traces]
    kept = [t for t in live if t["strength"] >= min_strength]
    kept.sort(key=lambda t: -t["strength"])
    return kept[:limit]


def link(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Make a and b list each other, each side capped at MAX_ASSOCIATIONS (so a full trace
    may be listed by another it does not list back, as in LegionIO)."""
    if b["trace_id"] not in a["associated_traces"] and len(a["associated_traces"]) < MAX_ASSOCIATIONS:
        a["associated_traces"].append(b["trace_id"])
    if a["trace_id"] not in b["associated_traces"] and len(b["associated_traces"]) < MAX_ASSOCIATIONS:
        b["associated_traces"].append(a["trace_id"])


def walk(start_id: str, neighbours: Callable[[str], Iterable[str]], strength: Callable[[str], float | None],
         max_hops: int = WALK_MAX_HOPS, min_strength: float = WALK_MIN_STRENGTH) -> list[dict[str, Any]]:
    """Breadth-first over associations from `start_id`: each trace reached once, with its depth
    and path; traces weaker than `min_strength` (or gone: strength None) are neither listed
    nor walked through."""
    if strength(start_id) is None:
        return []
    found: list[dict[str, Any]] = []
    seen = {start_id}
    queue: deque[tuple[str, int, list[str]]] = deque([(start_id, 0, [start_id])])
    while queue:
        current, depth, path = queue.popleft()
        for neighbour in neighbours(current):
            if neighbour in seen:
                continue
            level = strength(neighbour)
            if level is None or level < min_strength:
                continue
            seen.add(neighbour)
            route = [*path, neighbour]
            found.append({"trace_id": neighbour, "depth": depth + 1, "path": route})
            if depth + 1 < max_hops:
                queue.append((neighbour, depth + 1, route))
    return found


# ---------------------------------------------------------------- quota


def document_bytes(trace: Mapping[str, Any]) -> int:
    """A trace's size as kept: its JSON in UTF-8 (before sealing)."""
    return len(json.dumps(trace, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def bytes_eviction_count(overage_bytes: int) -> int:
    """LegionIO's estimate of traces to evict for a byte overage: ceil(overage / 1024 * 10), at least 1."""
    return max(math.ceil(overage_bytes / 1024.0 * 10), 1)


def eviction_order(traces: Iterable[Mapping[str, Any]], eviction: Eviction) -> list[str]:
    """Trace ids in the order quota enforcement evicts them: least recently reinforced first
    (lru) or least confident first, the older first on ties. Firmware is never evicted."""
    candidates = [t for t in traces if t["trace_type"] != "firmware"]
    if eviction == "lru":
        candidates.sort(key=lambda t: (parse_time(t["last_reinforced"]), t["trace_id"]))
    else:
        candidates.sort(key=lambda t: (float(t["confidence"]), parse_time(t["last_reinforced"]), t["trace_id"]))
    return [t["trace_id"] for t in candidates]
