"""Durations: one number and one unit (`250ms`, `30s`, `5m`, `2h`, `1d`) or plain seconds."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_ACCEPTED = "write e.g. 250ms, 30s, 5m, 2h, 1d or seconds"

# The longest duration Legion takes anywhere (a step's timeout or delay, a retry wait, a
# schedule's `every`, `--older-than`, `--timeout`): ten years. Longer means "never" in
# practice, and every one of them must stay far inside what timers (threading waits top out
# near 292 years), dates (year 9999) and floats can hold.
MAX_DURATION_DAYS = 3650
MAX_DURATION = MAX_DURATION_DAYS * 86400.0


def parse_duration(value: object) -> float:
    """Seconds for a duration: finite, from 0 to MAX_DURATION; raises ValueError with a
    sentence saying what is accepted."""
    seconds = _seconds(value)
    if seconds > MAX_DURATION:  # compared before any conversion: a huge int has no float
        raise ValueError(f"duration {_shown(value)} is too long; give at most {MAX_DURATION_DAYS}d (ten years)")
    return float(seconds)


def _seconds(value: object) -> float | int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; {_ACCEPTED}")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            raise ValueError(f"{value!r} is not a duration; {_ACCEPTED}")
        if value < 0:
            raise ValueError(f"duration {_shown(value)} is negative")
        return value
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
        try:
            seconds = float(value)
        except ValueError:
            pass
        else:
            if seconds >= 0:  # never NaN, which compares false
                return seconds
    raise ValueError(f"{_shown(value)} is not a duration; {_ACCEPTED}")


def _shown(value: object) -> str:
    """The value as written, cut short: messages quote what was given, not all of it."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's limit of digits for conversion to text
        return "a number of more than 4000 digits"
    return text if len(text) <= 40 else text[:37] + "..."


def format_duration(seconds: float) -> str:
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(round(seconds * 1000))}ms"
