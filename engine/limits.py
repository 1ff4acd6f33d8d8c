"""The budgets of expressions and the storage cap of values, from the environment.

Read by every command before it does anything (they are cheap to read and bound what
rehearsals, `task run` and the runtime evaluate alike), and set process-wide in
`legion.dsl.budget`.
"""

from __future__ import annotations

from collections.abc import Mapping

from legion.dsl.budget import Limits
from legion.dsl.durations import parse_duration
from legion.engine.errors import ConfigError

# (lowest, highest) accepted: below, no real template would fit; above, one expression could
# hold a worker or the memory for longer than any step should.
TIME_RANGE = (0.001, 60.0)
SIZE_RANGE = (1_000, 100_000_000)
STEPS_RANGE = (1_000, 1_000_000_000)
VALUE_RANGE = (1_000, 1_000_000_000)


def limits_from_env(env: Mapping[str, str]) -> Limits:
    """The limits the environment sets (defaults for what it does not); ConfigError naming the
    variable for a value that is not accepted."""
    default = Limits()
    return Limits(
        time=_seconds(env, "LEGION_EXPRESSION_TIMEOUT", default.time),
        size=_count(env, "LEGION_EXPRESSION_MAX_SIZE", default.size, SIZE_RANGE, "characters or items"),
        steps=_count(env, "LEGION_EXPRESSION_MAX_STEPS", default.steps, STEPS_RANGE, "steps"),
        value=_count(env, "LEGION_MAX_VALUE_SIZE", default.value, VALUE_RANGE, "characters"),
    )


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    low, high = TIME_RANGE
    try:
        seconds = parse_duration(raw)
    except ValueError:
        seconds = -1.0
    if not low <= seconds <= high:
        raise ConfigError(f"{name}={raw!r}: give a duration from {low * 1000:g}ms to {high:g}s, such as 250ms or 2s")
    return seconds


def _count(env: Mapping[str, str], name: str, default: int, bounds: tuple[int, int], unit: str) -> int:
    raw = env.get(name)
    if not raw:
        return default
    low, high = bounds
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = -1
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r}: give a whole number of {unit} from {low:,} to {high:,}")
    return value
