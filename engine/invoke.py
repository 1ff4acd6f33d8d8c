"""Calling an extension function and turning what happens into a step outcome."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from legion.dsl.expressions import NotJsonValue, json_value
from legion.engine.errors import StepError
from legion.engine.registry import Function


@dataclass(slots=True)
class Outcome:
    status: str  # succeeded | failed
    result: Any = None
    error: dict[str, Any] | None = None


def outcome_of_exception(exc: BaseException) -> Outcome:
    """A raised exception as a step failure: StepError keeps its type, a timeout is `Timeout`,
    anything else is `StepFailed` with the exception's message."""
    if isinstance(exc, StepError):
        return Outcome("failed", None, {"type": exc.type, "message": exc.message})
    if isinstance(exc, TimeoutError):
        return Outcome("failed", None, {"type": "Timeout", "message": str(exc) or "the step timed out"})
    return Outcome("failed", None, {"type": "StepFailed", "message": str(exc) or type(exc).__name__})


def result_outcome(function: str, value: Any) -> Outcome:
    try:
        return Outcome("succeeded", json_value(value))
    except NotJsonValue as exc:
        return Outcome("failed", None, {"type": "ResultInvalid", "message": f"{function} returned a value that is not JSON: {exc}"})


def call(function: Function, args: dict[str, Any], timeout: float | None = None) -> Outcome:
    """Run a function (sync, or async on a fresh event loop) and check that it returned JSON.

    An async function is cancelled after `timeout`; a sync one cannot be stopped, so its
    timeout is the caller's to enforce."""
    try:
        if function.is_async:
            coroutine = function.call(**args)
            value = asyncio.run(coroutine if timeout is None else asyncio.wait_for(coroutine, timeout))
        else:
            value = function.call(**args)
    except GeneratorExit:
        raise
    except BaseException as exc:  # KeyboardInterrupt, SystemExit, CancelledError from a step: a failure
        return outcome_of_exception(exc)
    return result_outcome(function.ref, value)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
