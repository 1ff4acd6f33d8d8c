"""Durations: one number and one unit (`250ms`, `30s`, `5m`, `2h`, `1d`) or plain seconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


def parse_duration(value: object) -> float:
    """Seconds for a duration; raises ValueError with a sentence saying what is accepted."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; write e.g. 250ms, 30s, 5m, 2h, 1d or seconds")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"duration {value} is negative")
        return float(value)
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
        try:
            seconds = float(value)
        except ValueError:
            pass
        else:
            if seconds >= 0:
                return seconds
    raise ValueError(f"{value!r} is not a duration; write e.g. 250ms, 30s, 5m, 2h, 1d or seconds")


def format_duration(seconds: float) -> str:
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(round(seconds * 1000))}ms"
