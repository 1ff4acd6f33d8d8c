"""Budgets: how much time and memory one evaluation of a condition or template may use.

Chains come from many hands (git, the API, agents over MCP), so an expression must never be
able to freeze a worker or exhaust memory. Python cannot interrupt a running thread, so the
budget is enforced cooperatively: every loop iteration, call and filter of an evaluation
passes a checkpoint (`Evaluation.tick`) that counts and looks at the clock, and every
operator that could make a huge value in one step (`*`, `+`, `**`, `%`, `~`, padding and
joining) checks the size of what it would make *before* making it. One evaluation is
one field: a step's whole `with`, one edge's condition or `publish`, `for_each`, `vars`,
`output`, `retry.when`.

Exceeding a budget raises `BudgetExceeded`, an `ExpressionError`: the conductor turns it into
the run's `ExpressionError` naming the chain, step and field, as for any other expression
error. The limits are process-wide (`configure`), read from settings at start.

The same module also decides what a value may be to be stored (`check_value`): JSON, with
integers small enough to be written as text, and not larger than the storage cap.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from legion.dsl.errors import ExpressionError

# Python refuses to turn an integer of more than 4,300 digits into text (and so into JSON):
# a larger one could be computed but never stored or shown. Bounded a little below that.
MAX_INT_DIGITS = 4000
MAX_INT_BITS = int(MAX_INT_DIGITS * math.log2(10))


@dataclass(frozen=True, slots=True)
class Limits:
    """The budgets of one evaluation, and the storage cap of a value."""

    time: float = 0.25  # seconds of wall time (LEGION_EXPRESSION_TIMEOUT)
    size: int = 1_000_000  # characters of a string, items of a list or mapping made (LEGION_EXPRESSION_MAX_SIZE)
    steps: int = 1_000_000  # loop iterations, calls and filters (LEGION_EXPRESSION_MAX_STEPS)
    value: int = 4_000_000  # characters of a stored value's JSON: a result, an output, an input (LEGION_MAX_VALUE_SIZE)


_limits = Limits()


def configure(limits: Limits) -> None:
    """Set the process's limits (the CLI does, from settings, before anything runs)."""
    global _limits
    _limits = limits


def limits() -> Limits:
    return _limits


class BudgetExceeded(ExpressionError):
    """An evaluation went over one of its budgets."""


class Evaluation:
    """One evaluation in progress: its deadline, its step count, and the step run its
    `secret()` tokens are bound to (spec section 7)."""

    __slots__ = ("limits", "deadline", "steps", "next_check", "binding")

    def __init__(self, limits: Limits, binding: str) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.time
        self.steps = 0
        self.next_check = CHECK_EVERY
        self.binding = binding

    def tick(self, cost: int = 1) -> None:
        """Count `cost` steps: one for a loop iteration, call or filter, plus the length of
        the value it walks (sorting a list of a million items costs a million)."""
        self.steps += cost
        if self.steps >= self.next_check:  # the clock is read every few steps, each of bounded work
            self.next_check = self.steps + CHECK_EVERY
            self.check()

    def check(self) -> None:
        if self.steps > self.limits.steps:
            raise BudgetExceeded(f"it went past its budget of {self.limits.steps:,} steps (loop iterations, calls and "
                                 f"filters; LEGION_EXPRESSION_MAX_STEPS)")
        if time.monotonic() > self.deadline:
            raise BudgetExceeded(f"it ran past its time budget of {self.limits.time * 1000:g} ms (LEGION_EXPRESSION_TIMEOUT)")

    def size(self, n: int, what: str = "a value") -> None:
        if n > self.limits.size:
            raise BudgetExceeded(f"{what} ({n:,} characters or items) would be over the size budget of "
                                 f"{self.limits.size:,} (LEGION_EXPRESSION_MAX_SIZE)")


# Steps between two looks at the clock.
CHECK_EVERY = 32


def cost(*values: Any) -> int:
    """The steps a call on these values costs: one, plus the items of each list or mapping
    among them, plus a step per 64 characters of each string (string methods run at the
    speed of C)."""
    n = 1
    for value in values:
        if isinstance(value, str):
            n += len(value) >> 6
        elif isinstance(value, (list, tuple, dict)):
            n += len(value)
    return n


_local = threading.local()
# Text no step run's binding can be: the binding of evaluations outside a step's `with`, so
# that a `secret()` token made there never resolves.
UNBOUND = ""


def active() -> Evaluation | None:
    """The evaluation this thread is in, if any."""
    return getattr(_local, "evaluation", None)  # type: ignore[no-any-return]


def current() -> Evaluation:
    """The evaluation this thread is in; a fresh one when there is none (a caller that
    evaluates outside `evaluating`, as validation's checks do)."""
    ev = active()
    return ev if ev is not None else Evaluation(_limits, UNBOUND)


class evaluating:  # noqa: N801 - used as a context manager, like `open`
    """Enter an evaluation (or stay in the one already entered: a field's templates share
    their field's budget). `binding` names the step run whose `with` is rendered."""

    __slots__ = ("binding", "outer")

    def __init__(self, binding: str = UNBOUND) -> None:
        self.binding = binding

    def __enter__(self) -> Evaluation:
        self.outer = active()
        if self.outer is not None:
            return self.outer
        ev = _local.evaluation = Evaluation(_limits, self.binding)
        return ev

    def __exit__(self, *exc: object) -> None:
        if self.outer is None:
            _local.evaluation = None


def step_binding(run_id: str, number: int) -> str:
    """The binding of a step run's `with`: only its own call resolves the tokens made there."""
    return f"{run_id}/{number}"


# ---------------------------------------------------------------- bounded operators


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, (str, list, tuple, dict)) else None


def _int_bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) and not isinstance(value, bool) else 0


def _check_int(value: Any) -> Any:
    if _int_bits(value) > MAX_INT_BITS:
        raise BudgetExceeded(f"an integer of more than {MAX_INT_DIGITS:,} digits is too large")
    return value


# The operators do not pass the checkpoint: alone they are bounded by the size of what they
# make; only repeating them (a loop, a call) takes time, and loops and calls tick.


def mul(a: Any, b: Any) -> Any:
    if _int_bits(a) + _int_bits(b) > MAX_INT_BITS + 1:
        raise BudgetExceeded(f"the product would have more than {MAX_INT_DIGITS:,} digits")
    for seq, n in ((a, b), (b, a)):
        length = _length(seq)
        if length is not None and isinstance(n, int):
            current().size(length * max(n, 0), "the repeated value")
    return a * b


def add(a: Any, b: Any) -> Any:
    la, lb = _length(a), _length(b)
    if la is not None and lb is not None:
        current().size(la + lb, "the joined value")
    return _check_int(a + b)


def power(a: Any, b: Any) -> Any:
    if isinstance(b, (int, float)) and not isinstance(b, bool) and isinstance(a, (int, float)) and not isinstance(a, bool):
        if abs(a) > 1 and b > 0 and b * math.log2(abs(a)) > (MAX_INT_BITS if isinstance(a, int) else 1100):
            raise BudgetExceeded(f"{a!r} ** {b!r} would be too large (more than {MAX_INT_DIGITS:,} digits)")
    try:
        return _check_int(a**b)
    except OverflowError:
        raise BudgetExceeded(f"{a!r} ** {b!r} is too large for a number") from None


def shift(a: Any, b: Any) -> Any:
    if isinstance(b, int) and _int_bits(a) + b > MAX_INT_BITS:
        raise BudgetExceeded(f"the shift would make an integer of more than {MAX_INT_DIGITS:,} digits")
    return a << b


def modulo(a: Any, b: Any) -> Any:
    """`%`: on a string it formats, and a width or precision in the format may be huge."""
    if isinstance(a, str):
        ev = current()
        for match in _PERCENT_SPEC.finditer(a):
            for number in match.groups():
                if number == "*":  # the width comes from the arguments
                    for arg in b if isinstance(b, tuple) else (b,):
                        if isinstance(arg, int):
                            ev.size(abs(arg), "a width or precision in the format")
                elif number:
                    _check_width(number, ev)
        result = a % b
        ev.size(len(result), "the formatted text")
        return result
    return _check_int(a % b)


# A %-format conversion's width and precision; a str.format replacement field's spec.
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_FORMAT_SPEC = re.compile(r"\{[^{}]*:([^{}]*)\}")


def check_format(text: str) -> None:
    """Refuse a `str.format` text whose widths or precisions alone would make text over the
    size budget."""
    ev = current()
    for spec in _FORMAT_SPEC.finditer(text):
        for number in re.findall(r"\d+", spec.group(1)):
            _check_width(number, ev)


def _check_width(number: str, ev: Evaluation) -> None:
    if len(number) > len(str(ev.limits.size)) or int(number) > ev.limits.size:
        raise BudgetExceeded(f"a width or precision of {number[:12]}{'...' if len(number) > 12 else ''} in the format "
                             f"is over the size budget of {ev.limits.size:,} (LEGION_EXPRESSION_MAX_SIZE)")


# String methods that can make text much longer than their string in one call.
PADDING_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs", "format", "format_map", "join", "replace"})


def check_string_call(text: str, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Size what a padding, joining, replacing or formatting method of `text` would make,
    before it does."""
    ev = current()
    numbers = [a for a in (*args, *kwargs.values()) if isinstance(a, int) and not isinstance(a, bool)]
    if name in ("ljust", "rjust", "center", "zfill"):
        ev.size(max(numbers, default=0), "the padded text")
    elif name == "expandtabs":
        ev.size(len(text) + text.count("\t") * max(numbers, default=8), "the expanded text")
    elif name in ("format", "format_map"):
        check_format(text)
        for n in numbers:
            ev.size(abs(n), "a width or precision in the format")
    elif name == "join" and args:
        items = args[0] if isinstance(args[0], (list, tuple)) else list(args[0])
        ev.size(len(text) * len(items) + sum(len(i) for i in items if isinstance(i, str)), "the joined text")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        check_replace(text, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count"))


def check_replace(text: str, old: str, new: str, count: Any = None) -> None:
    if len(new) <= len(old):
        return
    found = len(text) + 1 if old == "" else text.count(old)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    current().size(len(text) + found * (len(new) - len(old)), "the replaced text")


def concat(*parts: Any) -> str:
    """`~`: the parts as text, joined, never larger than the budget."""
    ev = current()
    texts = [p if isinstance(p, str) else str(p) for p in parts]
    ev.size(sum(len(t) for t in texts), "the joined text")
    return "".join(texts)


def ticking(iterable: Iterable[Any]) -> Iterator[Any]:
    """An iterable whose every item passes the checkpoint (loops, and lazy filters)."""
    ev = current()
    for item in iterable:
        ev.tick()
        yield item


# ---------------------------------------------------------------- storable values


class ValueProblem(ValueError):
    """Why a value cannot be stored: `kind` is `ResultInvalid` (not JSON) or `ResultTooLarge`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def check_value(value: Any, cap: int | None = None) -> None:
    """Raise ValueProblem unless `value` can be stored: plain JSON (str, int, float, bool,
    None, list, dict with string keys), finite numbers, integers of at most MAX_INT_DIGITS
    digits, and its JSON text (counted approximately, in characters) within `cap` (the
    storage cap by default)."""
    if value is None or (type(value) is dict and not value):  # most results and arguments: nothing to walk
        return
    limit = _limits.value if cap is None else cap
    size = 0
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item) + 2
        elif item is None or isinstance(item, bool):
            size += 5
        elif isinstance(item, int):
            if _int_bits(item) > MAX_INT_BITS:
                raise ValueProblem("ResultInvalid", f"it holds an integer of more than {MAX_INT_DIGITS:,} digits, "
                                                    f"which cannot be stored; write it as a string")
            size += 20
        elif isinstance(item, float):
            if math.isnan(item) or math.isinf(item):
                raise ValueProblem("ResultInvalid", f"{item} is not a JSON number")
            size += 24
        elif isinstance(item, Mapping):
            for key in item:
                if not isinstance(key, str):
                    raise ValueProblem("ResultInvalid", f"mapping key {key!r} is not a string")
                size += len(key) + 4
            stack.extend(item.values())
            size += 2
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
            size += 2 + len(item)
        else:
            raise ValueProblem("ResultInvalid", f"{type(item).__name__} is not a JSON value")
        if size > limit:
            raise ValueProblem("ResultTooLarge", f"it is larger than the cap of {limit:,} characters of JSON "
                                                 f"(LEGION_MAX_VALUE_SIZE)")
