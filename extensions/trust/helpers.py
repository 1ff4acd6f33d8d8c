"""Trust's constants and formulas (LegionIO's `Social::Trust::Helpers::TrustModel` and
`TrustMap`), as pure functions: no clock, no state. Each takes the entry it changes and the
time `now` the caller read from the run's clock, and returns a new entry.

An entry is a JSON document:
    {agent_id, domain, dimensions: {reliability, competence, integrity, benevolence},
     composite, interaction_count, positive_count, negative_count,
     last_interaction (ISO or None), created_at (ISO), decayed_at (ISO)}
`decayed_at` is the time up to which decay has been applied to `dimensions`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

# Trust is emergent, multidimensional and domain-specific.
TRUST_DIMENSIONS: tuple[str, ...] = ("reliability", "competence", "integrity", "benevolence")

TRUST_CONSIDER_THRESHOLD = 0.3  # the least trust for an agent's input to be considered
TRUST_DELEGATE_THRESHOLD = 0.7  # the least trust to delegate actions to an agent
TRUST_DECAY_RATE = 0.005  # subtracted from every dimension per DECAY_INTERVAL
TRUST_REINFORCEMENT = 0.05  # added to every dimension per positive interaction
TRUST_PENALTY = 0.15  # subtracted from every dimension per negative interaction (asymmetric)
NEUTRAL_TRUST = 0.3  # where a new agent starts, on every dimension

# LegionIO subtracted TRUST_DECAY_RATE once per call of its decay actor, which ran every
# 300 s. Here decay is a function of the time elapsed on the run's clock: the same rate per
# 300 s, applied continuously, so trust read at any moment is what it would be had the actor
# run all along, and calling decay twice at the same moment changes nothing.
DECAY_INTERVAL = 300.0
DEFAULT_DOMAIN = "general"

Entry = dict[str, Any]


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return min(max(value, low), high)


def composite_score(dimensions: Mapping[str, float]) -> float:
    """The plain mean of the dimensions (no weighting); 0.0 for none."""
    if not dimensions:
        return 0.0
    return sum(dimensions.values()) / len(dimensions)


def entry_key(agent_id: str, domain: str) -> str:
    """The document key of (agent_id, domain): LegionIO's "agent_id:domain", with each part
    percent-encoded so that an id holding a colon cannot collide with another pair."""
    return f"{quote(agent_id, safe='')}:{quote(domain, safe='')}"


def new_trust_entry(agent_id: str, domain: str, now: datetime) -> Entry:
    stamp = now.isoformat()
    return {
        "agent_id": agent_id,
        "domain": domain,
        "dimensions": {d: NEUTRAL_TRUST for d in TRUST_DIMENSIONS},
        "composite": NEUTRAL_TRUST,
        "interaction_count": 0,
        "positive_count": 0,
        "negative_count": 0,
        "last_interaction": None,
        "created_at": stamp,
        "decayed_at": stamp,
    }


def decay_amount(elapsed_seconds: float) -> float:
    """What decay takes from each dimension over `elapsed_seconds` (nothing for a negative span)."""
    return TRUST_DECAY_RATE * max(elapsed_seconds, 0.0) / DECAY_INTERVAL


def decayed(entry: Entry, now: datetime) -> Entry:
    """The entry with decay applied from its `decayed_at` up to `now`. Linear decay floored at
    0 composes exactly (max(0, max(0, x - a) - b) == max(0, x - a - b)), so decaying in
    several steps gives what one step gives. A `now` earlier than `decayed_at` (a clock read
    out of order) decays nothing and does not move `decayed_at` back."""
    since = datetime.fromisoformat(entry["decayed_at"])
    elapsed = (now - since).total_seconds()
    if elapsed <= 0:
        return dict(entry)
    amount = decay_amount(elapsed)
    dimensions = {d: clamp(v - amount) for d, v in entry["dimensions"].items()}
    return {**entry, "dimensions": dimensions, "composite": composite_score(dimensions), "decayed_at": now.isoformat()}


def record_interaction(entry: Entry, positive: bool, now: datetime) -> Entry:
    """One interaction, after decay up to `now`: every dimension gains TRUST_REINFORCEMENT when
    positive, loses TRUST_PENALTY when not (clamped to [0, 1])."""
    entry = decayed(entry, now)
    step = TRUST_REINFORCEMENT if positive else -TRUST_PENALTY
    dimensions = {d: clamp(v + step) for d, v in entry["dimensions"].items()}
    return {
        **entry,
        "dimensions": dimensions,
        "composite": composite_score(dimensions),
        "interaction_count": entry["interaction_count"] + 1,
        "positive_count": entry["positive_count"] + (1 if positive else 0),
        "negative_count": entry["negative_count"] + (0 if positive else 1),
        "last_interaction": now.isoformat(),
    }


def reinforce_dimension(entry: Entry, dimension: str, amount: float, now: datetime) -> Entry:
    """One dimension moved by `amount` (clamped), after decay up to `now`; an unknown
    dimension changes nothing."""
    entry = decayed(entry, now)
    if dimension not in TRUST_DIMENSIONS:
        return entry
    dimensions = {**entry["dimensions"], dimension: clamp(entry["dimensions"][dimension] + amount)}
    return {**entry, "dimensions": dimensions, "composite": composite_score(dimensions)}


def public(entry: Entry) -> Entry:
    """An entry as callers see it: LegionIO's keys (the decay bookkeeping left out)."""
    return {k: v for k, v in entry.items() if k != "decayed_at"}


def trusted(entries: Iterable[Entry], domain: str, min_trust: float) -> list[Entry]:
    """The entries of `domain` whose composite is at least `min_trust`, most trusted first
    (ties in agent_id order, so the answer does not depend on storage order)."""
    found = [e for e in entries if e["domain"] == domain and e["composite"] >= min_trust]
    return sorted(found, key=lambda e: (-e["composite"], e["agent_id"]))
