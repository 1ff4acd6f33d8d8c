"""Conflict's constants and rules (LegionIO's `Social::Conflict::Helpers::Severity`,
`ConflictLog` and the prompts of `LlmEnhancer`), as pure functions: no clock, no state, no
model. Times are passed in as `now` (a datetime) by the runners.

A conflict is a JSON document:
    {conflict_id, parties, severity, posture, description, status (active | resolved),
     outcome, created_at, resolved_at, exchanges: [{speaker, message, at}],
     resolution_notes, stale_marked_at}
The index (one document per agent) holds, per conflict id, {status, created_at, resolved_at}
in epoch seconds: what listing, stale checks and eviction need without opening every conflict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

LEVELS: tuple[str, ...] = ("low", "medium", "high", "critical")  # least to most severe
LEVEL_ORDER: dict[str, int] = {level: i for i, level in enumerate(LEVELS)}
POSTURES: tuple[str, ...] = ("speak_once", "persistent_engagement", "stubborn_presence")
PERSISTENT_THRESHOLD = "high"
STUBBORN_THRESHOLD = "critical"
STALE_CONFLICT_TIMEOUT = 86_400  # seconds an active conflict may stay unresolved before it is stale

MAX_CONFLICTS = 1000  # conflicts kept per agent
RESOLVED_RETENTION_DAYS = 30  # days a resolved conflict is kept
KEEP_RESOLVED_ON_OVERFLOW = 50  # resolved conflicts left when the log overflows
KEEP_ACTIVE_ON_OVERFLOW = 10  # active conflicts left when it still overflows

OUTCOMES: tuple[str, ...] = ("resolved", "deferred", "escalated")  # what a mediator may suggest
RECOMMENDATIONS: tuple[str, ...] = ("escalate", "retry", "close")  # what to do with a stale conflict
STALE_MESSAGE = "conflict marked stale — no resolution after 24h"
SYSTEM_SPEAKER = "system"

Conflict = dict[str, Any]
Index = dict[str, dict[str, Any]]


def valid_level(level: Any) -> bool:
    return level in LEVEL_ORDER


def valid_posture(posture: Any) -> bool:
    return posture in POSTURES


def recommended_posture(severity: str) -> str:
    """critical -> stubborn_presence, high -> persistent_engagement, anything else -> speak_once."""
    if severity == STUBBORN_THRESHOLD:
        return "stubborn_presence"
    if severity == PERSISTENT_THRESHOLD:
        return "persistent_engagement"
    return "speak_once"


def severity_gte(left: str, right: str) -> bool:
    """Whether `left` is at least as severe as `right` (an unknown level counts as low)."""
    return LEVEL_ORDER.get(left, 0) >= LEVEL_ORDER.get(right, 0)


def new_conflict(conflict_id: str, parties: Sequence[str], severity: str, description: str, now: datetime) -> Conflict:
    return {"conflict_id": conflict_id, "parties": list(parties), "severity": severity,
            "posture": recommended_posture(severity), "description": description, "status": "active", "outcome": None,
            "created_at": now.isoformat(), "resolved_at": None, "exchanges": [], "resolution_notes": None,
            "stale_marked_at": None}


def with_exchange(conflict: Conflict, speaker: str, message: str, now: datetime) -> Conflict:
    return {**conflict, "exchanges": [*conflict["exchanges"], {"speaker": speaker, "message": message, "at": now.isoformat()}]}


def resolved(conflict: Conflict, outcome: str, notes: str | None, now: datetime) -> Conflict:
    return {**conflict, "status": "resolved", "outcome": outcome, "resolution_notes": notes, "resolved_at": now.isoformat()}


def index_entry(conflict: Conflict) -> dict[str, Any]:
    resolved_at = conflict["resolved_at"]
    return {"status": conflict["status"], "created_at": datetime.fromisoformat(conflict["created_at"]).timestamp(),
            "resolved_at": None if resolved_at is None else datetime.fromisoformat(resolved_at).timestamp()}


def age_seconds(created_at: float, now: datetime) -> float:
    return now.timestamp() - created_at


def active_ids(index: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The active conflicts' ids, oldest first."""
    return [i for i, e in sorted(index.items(), key=lambda p: (p[1]["created_at"], p[0])) if e["status"] == "active"]


def stale_ids(index: Mapping[str, Mapping[str, Any]], now: datetime) -> list[str]:
    """The active conflicts older than STALE_CONFLICT_TIMEOUT, oldest first."""
    return [i for i in active_ids(index) if age_seconds(index[i]["created_at"], now) > STALE_CONFLICT_TIMEOUT]


def resolved_between(index: Mapping[str, Mapping[str, Any]], since: datetime, now: datetime) -> list[str]:
    """The conflicts resolved in [since, now], in the order they were resolved."""
    low, high = since.timestamp(), now.timestamp()
    found = [(e["resolved_at"], i) for i, e in index.items()
             if e["status"] == "resolved" and e["resolved_at"] is not None and low <= e["resolved_at"] <= high]
    return [i for _, i in sorted(found)]


def due_for_stale_mark(conflict: Conflict, now: datetime) -> bool:
    """A stale conflict is marked (a system exchange) once, then again only after another
    STALE_CONFLICT_TIMEOUT: LegionIO marked it at every hourly check, without end."""
    marked = conflict.get("stale_marked_at")
    return marked is None or (now - datetime.fromisoformat(marked)).total_seconds() >= STALE_CONFLICT_TIMEOUT


def evictions(index: Mapping[str, Mapping[str, Any]], now: datetime) -> list[str]:
    """The conflicts to forget: those resolved more than RESOLVED_RETENTION_DAYS ago; then, while
    more than MAX_CONFLICTS remain, the oldest resolved down to KEEP_RESOLVED_ON_OVERFLOW of
    them; then, if still over, the oldest active down to KEEP_ACTIVE_ON_OVERFLOW."""
    cutoff = now.timestamp() - RESOLVED_RETENTION_DAYS * 86_400
    gone = [i for i, e in index.items() if e["status"] == "resolved" and e["resolved_at"] is not None and e["resolved_at"] < cutoff]
    expired = set(gone)
    left = {i: e for i, e in index.items() if i not in expired}
    if len(left) <= MAX_CONFLICTS:
        return gone
    old_resolved = sorted((i for i, e in left.items() if e["status"] == "resolved"),
                          key=lambda i: (left[i]["resolved_at"] or left[i]["created_at"], i))
    dropped = old_resolved[:max(0, len(old_resolved) - KEEP_RESOLVED_ON_OVERFLOW)]
    gone += dropped
    if len(left) - len(dropped) <= MAX_CONFLICTS:
        return gone
    old_active = sorted((i for i, e in left.items() if e["status"] == "active"), key=lambda i: (left[i]["created_at"], i))
    return gone + old_active[:max(0, len(old_active) - KEEP_ACTIVE_ON_OVERFLOW)]


# The mediator: LegionIO's prompts, asking for JSON that fits a schema instead of "OUTCOME: ..." lines.

SYSTEM_PROMPT = (
    "You are the conflict mediation processor for an autonomous AI agent.\n"
    "You analyze disagreements between the agent and human partners, then suggest resolution approaches.\n"
    "Be neutral, constructive, and specific. Focus on finding common ground and actionable next steps.\n"
    "Do not take sides. Identify the underlying needs behind each position.")

RESOLUTION_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["outcome", "notes"], "additionalProperties": False,
    "properties": {"outcome": {"enum": list(OUTCOMES)},
                   "notes": {"type": "string", "minLength": 1,
                             "description": "2-3 sentences describing the resolution approach and next steps"}}}

STALE_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["recommendation", "analysis"], "additionalProperties": False,
    "properties": {"recommendation": {"enum": list(RECOMMENDATIONS)},
                   "analysis": {"type": "string", "minLength": 1, "description": "2-3 sentences explaining the recommendation"}}}


def resolution_prompt(conflict: Conflict) -> str:
    exchanges = conflict["exchanges"]
    lines = "\n".join(f"[{e['speaker']}]: {e['message']}" for e in exchanges)
    return (f"Analyze this conflict and suggest a resolution.\n\nDESCRIPTION: {conflict['description']}\n"
            f"SEVERITY: {conflict['severity']}\nEXCHANGE HISTORY ({len(exchanges)} exchanges):\n{lines}\n\n"
            "Suggest a constructive resolution approach: the outcome (resolved, deferred or escalated) and notes of "
            "2-3 sentences describing the approach and next steps.")


def stale_prompt(conflict: Conflict, now: datetime) -> str:
    hours = age_seconds(datetime.fromisoformat(conflict["created_at"]).timestamp(), now) / 3600
    return (f"A conflict has been unresolved for {hours:.1f} hours with {len(conflict['exchanges'])} exchanges.\n\n"
            f"DESCRIPTION: {conflict['description']}\nSEVERITY: {conflict['severity']}\n\n"
            "Recommend how to proceed with this stale conflict (escalate, retry or close), with an analysis of 2-3 "
            "sentences explaining the recommendation.")


def stale_message(analysis: str | None = None, recommendation: str | None = None) -> str:
    if analysis is None or recommendation is None:
        return STALE_MESSAGE
    return f"conflict marked stale — {analysis} (recommendation: {recommendation})"


# Without a model: rules.

def suggested_outcome(conflict: Conflict) -> str:
    """The rule-based mediator's outcome: a critical conflict is escalated; one where nobody has
    spoken yet is deferred (no position is known); any other is resolved."""
    if conflict["severity"] == "critical":
        return "escalated"
    if not conflict["exchanges"]:
        return "deferred"
    return "resolved"


def rule_notes(conflict: Conflict, outcome: str, now: datetime) -> str:
    """Notes written from the record when no model is configured."""
    parties = ", ".join(conflict["parties"]) or "no named parties"
    hours = age_seconds(datetime.fromisoformat(conflict["created_at"]).timestamp(), now) / 3600
    count = len(conflict["exchanges"])
    return (f"Closed as {outcome}: a {conflict['severity']} conflict between {parties} (posture {conflict['posture']}), "
            f"after {count} exchange{'' if count == 1 else 's'} over {hours:.1f} h. "
            f"Suggested by rule: {suggested_outcome(conflict)}.")
