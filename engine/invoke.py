"""Calling an extension function and turning what happens into a step outcome."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from typing import Any

from legion.engine.errors import StepError
from legion.engine.registry import Function


@dataclass(slots=True)
class Outcome:
    status: str  # succeeded | failed
    result: Any = None
    error: dict[str, Any] | None = None


def json_result(value: Any) -> Any:
    """The value as JSON (tuples become lists); raise TypeError when it is not JSON."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise TypeError(f"{value} is not a JSON number")
        return value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"mapping key {k!r} is not a string")
            out[k] = json_result(v)
        return out
    if isinstance(value, (list, tuple)):
        return [json_result(v) for v in value]
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def outcome_of_exception(exc: BaseException) -> Outcome:
    if isinstance(exc, StepError):
        return Outcome("failed", None, {"type": exc.type, "message": exc.message})
    if isinstance(exc, TimeoutError):
        return Outcome("failed", None, {"type": "Timeout", "message": str(exc) or "the step timed out"})
    message = str(exc) or type(exc).__name__
    return Outcome("failed", None, {"type": "StepFailed", "message": f"{type(exc).__name__}: {message}" if not isinstance(exc, Exception) or str(exc) == "" else message})


def call(function: Function, args: dict[str, Any]) -> Outcome:
    """Run a function (sync, or async on a fresh event loop) and check that it returned JSON."""
    try:
        if function.is_async:
            value = asyncio.run(function.call(**args))
        else:
            value = function.call(**args)
    except Exception as exc:
        return outcome_of_exception(exc)
    try:
        return Outcome("succeeded", json_result(value))
    except TypeError as exc:
        return Outcome("failed", None, {"type": "ResultInvalid", "message": f"{function.ref} returned a value that is not JSON: {exc}"})


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
