"""Waiting in tests: on a condition with a deadline, never for a fixed time.

A test that sleeps a fixed time and then counts what happened fails on a loaded machine (a
parallel test run, a slow CI host) and wastes the time on a fast one. Wait for the state the
test needs instead, and keep the assertion that the state is right:

    from waiting import wait_until

    run = wait_until(lambda: store.list_runs(chain="beat"), timeout=10, what="a run of beat")

`tests/` is on sys.path (pytest's `pythonpath` setting), so every test module can import it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0


def wait_until(predicate: Callable[[], T], timeout: float = DEFAULT_TIMEOUT, interval: float = 0.02,
               what: str | None = None) -> T:
    """Call `predicate` until it returns something truthy, and return that. Past `timeout`
    seconds, fail the test with an AssertionError that names `what` was awaited and the last
    value seen. An exception raised by `predicate` propagates at once."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what or _describe(predicate)} (last value: {value!r})")
        time.sleep(interval)


def _describe(predicate: Callable[[], object]) -> str:
    code = getattr(predicate, "__code__", None)
    if code is None:
        return repr(predicate)
    return f"{getattr(predicate, '__qualname__', 'the condition')} ({code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno})"
