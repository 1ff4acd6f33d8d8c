"""When schedule entries fire (spec section 10).

Decisions, recorded in docs/decisions.md (Triggers):
- `cron` is evaluated in `tz` (UTC when omitted); `every` is anchored to the moment the
  chain was applied (first fire one interval later), then to each fire.
- Overlap: a schedule whose previous run is still going skips that slot (the slot is logged
  and counted as skipped), like a Kubernetes CronJob with `concurrencyPolicy: Forbid`.
- Missed slots after downtime fire once, not once per slot: the next fire is computed from
  now, never from the missed slot.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from legion.dsl.durations import parse_duration


def next_fire(kind: str, expression: str, tz: str | None, after: datetime) -> datetime:
    """The first fire time strictly after `after` (an aware datetime); returned in UTC."""
    if kind == "every":
        return after + timedelta(seconds=parse_duration(float(expression)))
    from croniter import croniter  # here, not at the top: only cron entries need it

    zone = ZoneInfo(tz) if tz else UTC
    local = after.astimezone(zone)
    nxt = croniter(expression, local).get_next(datetime)
    return nxt.astimezone(UTC)
