"""Extinction constants and pure functions: the five levels, who may move between them, the
history entries, events and archive records. No clock, no state: callers pass `now`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

Authority = Literal["governance_council", "council_plus_executive", "physical_keyholders"]

# Level -> name, authority required, reversible, description (helpers/levels.rb).
LEVELS: dict[int, dict[str, Any]] = {
    0: {"name": "normal", "authority_required": None, "reversible": True,
        "description": "No extinction active"},
    1: {"name": "mesh_isolation", "authority_required": "governance_council", "reversible": True,
        "description": "Disconnect from mesh network"},
    2: {"name": "capability_suspension", "authority_required": "governance_council", "reversible": True,
        "description": "Suspend all non-essential capabilities"},
    3: {"name": "memory_lockdown", "authority_required": "council_plus_executive", "reversible": True,
        "description": "Lock all memory writes, read-only mode"},
    4: {"name": "cryptographic_erasure", "authority_required": "physical_keyholders", "reversible": False,
        "description": "Erase all memory, terminate all workers"},
}
ERASURE_LEVEL = 4

# Settings (settings.rb DEFAULTS), fixed here: a chain cannot switch a safety gate off.
GOVERNANCE_REQUIRED = True
STALE_THRESHOLD_HOURS = 24
MONITOR_INTERVAL = 300  # seconds: how often LegionIO's monitor actor runs monitor_protocol
ARCHIVE_ON_ESCALATE = True  # the code's default (its CLAUDE.md says false)
ARCHIVE_FROM_LEVEL = 3
MAX_HISTORY = 500

EMERGENCY_TRIGGER = "extinction_protocol"  # the tick's emergency that forces full_active
ERASURE_ACTION = "extinction_escalate_4"  # what the governance gate asks about


def valid_level(level: object) -> bool:
    return isinstance(level, int) and not isinstance(level, bool) and level in LEVELS


def required_authority(level: int) -> str | None:
    info = LEVELS.get(level)
    return info["authority_required"] if info else None


def reversible(level: int) -> bool:
    info = LEVELS.get(level)
    return bool(info and info["reversible"])


def level_info(level: int) -> dict[str, Any] | None:
    info = LEVELS.get(level)
    return dict(info) if info else None


def check_escalation(current: int, level: int, authority: str, *, erasure_pending: bool = False) -> dict[str, Any] | None:
    """Why escalating from `current` to `level` is refused, or None when it may go ahead. A
    level 4 recorded whose erasure did not finish may be asked for again (to finish it)."""
    if not valid_level(level):
        return {"success": False, "reason": "invalid_level"}
    retry = level == ERASURE_LEVEL and current == ERASURE_LEVEL and erasure_pending
    if level <= current and not retry:
        return {"success": False, "reason": "invalid_escalation"}
    required = required_authority(level)
    if required is not None and authority != required:
        return {"success": False, "reason": "insufficient_authority", "required": required, "provided": authority}
    return None


def check_deescalation(current: int, target: int, authority: str) -> dict[str, Any] | None:
    """Why de-escalating from `current` to `target` is refused, or None. The authority asked
    for is the one the *current* level required."""
    if not valid_level(target):
        return {"success": False, "reason": "invalid_level"}
    if target >= current:
        return {"success": False, "reason": "invalid_deescalation"}
    if not reversible(current):
        return {"success": False, "reason": "not_reversible"}
    required = required_authority(current)
    if required is not None and authority != required:
        return {"success": False, "reason": "insufficient_authority", "required": required, "provided": authority}
    return None


def history_entry(action: str, from_level: int, to_level: int, authority: str, reason: str, now: datetime) -> dict[str, Any]:
    return {"action": action, "from": from_level, "to": to_level, "authority": authority, "reason": reason,
            "at": now.isoformat()}


def protocol_view(protocol: dict[str, Any]) -> dict[str, Any]:
    """The protocol state as LegionIO's ProtocolState#to_h shows it."""
    level = protocol["current_level"]
    info = LEVELS.get(level)
    return {
        "current_level": level,
        "level_name": info["name"] if info else None,
        "reversible": reversible(level),
        "history_count": min(protocol["history_seq"], MAX_HISTORY),
        "last_change": protocol["last_change"],
    }


def stale(last_change: dict[str, Any] | None, now: datetime, threshold_hours: float = STALE_THRESHOLD_HOURS) -> bool:
    """No change of level for longer than the threshold (never, when there was none)."""
    if not last_change:
        return False
    try:
        changed = datetime.fromisoformat(str(last_change["at"]))
    except (KeyError, ValueError):
        return False
    return (now - changed).total_seconds() > threshold_hours * 3600


def escalation_events(level: int, authority: str, reason: str, now: datetime) -> list[dict[str, Any]]:
    """What LegionIO emits on escalation: the level's own event (its effect), then
    extinction.escalated. In Legion a chain reacts with `on.events: [extinction.extinction.escalate]`
    and reads these from its input."""
    at = now.isoformat()
    return [
        {"event": f"extinction.level_{level}", "level": level, "reason": f"escalation to level {level}", "at": at},
        {"event": "extinction.escalated", "level": level, "authority": authority, "reason": reason, "at": at},
    ]


def deescalation_events(target_level: int, authority: str, reason: str, now: datetime) -> list[dict[str, Any]]:
    return [{"event": "extinction.deescalated", "target_level": target_level, "authority": authority, "reason": reason,
             "at": now.isoformat()}]


def archive_record(agent_id: str, reason: str, metadata: dict[str, Any], level: int, now: datetime,
                   snapshot: dict[str, Any]) -> dict[str, Any]:
    return {"agent_id": agent_id, "reason": reason, "metadata": metadata, "level": level, "archived_at": now.isoformat(),
            "state_snapshot": snapshot}


def status(protocol: dict[str, Any]) -> dict[str, Any]:
    """What the tick asks: is an emergency in force (any level above normal)?"""
    level = protocol["current_level"]
    active = level > 0
    return {"active": active, "current_level": level, "level_name": LEVELS[level]["name"],
            "emergency": EMERGENCY_TRIGGER if active else None,
            "erasure_pending": bool(protocol.get("erasure_pending"))}
