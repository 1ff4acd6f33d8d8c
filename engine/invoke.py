"""Calling an extension function and turning what happens into a step outcome.

Every driver (the embedded runtime, rehearsals, actors) calls functions through `call`: the
arguments are checked against the function's signature first (a value that does not fit
fails the step run with `InvalidArguments`, and the function is not called), a function
that declares a `Context` parameter gets one, and a raised exception becomes a failure that
keeps its origin (`exception`, `traceback`).

Async functions run on one event loop per process, in a thread of its own, for as long as
the process lives: a client an extension keeps between calls (an `httpx.AsyncClient`, a model
client, an MCP session) is bound to the loop it was first used on, so a loop per call would
break it on the second call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import threading
import traceback
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from legion.dsl.budget import ValueProblem, check_value
from legion.dsl.expressions import NotJsonValue, json_value
from legion.engine.errors import ExtensionError, StepError
from legion.engine.registry import Function
from legion.engine.sdk import Context
from legion.engine.secrets import MASKER
from legion.engine.signature import ArgumentProblem

ENGINE_DIR = os.path.dirname(os.path.abspath(__file__))
ASYNCIO_DIR = os.path.dirname(asyncio.__file__)
_STDLIB_RUNNERS = (os.path.join(os.path.dirname(ASYNCIO_DIR), "concurrent"), os.path.join(os.path.dirname(ASYNCIO_DIR), "threading.py"))
MAX_FRAMES = 30


@dataclass(slots=True)
class Outcome:
    status: str  # succeeded | failed
    result: Any = None
    error: dict[str, Any] | None = None


def failure(type_: str, message: str) -> Outcome:
    return Outcome("failed", None, {"type": type_, "message": message})


def outcome_of_exception(exc: BaseException) -> Outcome:
    """A raised exception as a step failure: StepError keeps its type (a failure the function
    chose), a timeout is `Timeout`, anything else is `StepFailed` with the exception's message
    and where it came from: `exception` (its class) and `traceback` (the frames of the
    extension's code), masked for secrets."""
    if isinstance(exc, StepError):
        return failure(exc.type, exc.message)
    if isinstance(exc, TimeoutError):
        return failure("Timeout", str(exc) or "the step timed out")
    error = {"type": "StepFailed", "message": MASKER.text(str(exc) or type(exc).__name__), "exception": type(exc).__name__}
    frames = origin(exc)
    if frames:
        error["traceback"] = MASKER.text(frames)
    return Outcome("failed", None, error)


def origin(exc: BaseException) -> str:
    """The traceback of `exc` without the engine's frames (nor asyncio's and the thread
    pool's that carried the call): what is left is the extension's code and what it called.
    Empty when no frame is left (the engine raised it)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not _carrier(f.filename)]
    if not frames:
        return ""
    lines = traceback.format_list(frames[-MAX_FRAMES:])
    lines += traceback.format_exception_only(type(exc), exc)
    return "Traceback (most recent call last):\n" + "".join(lines).rstrip("\n")


def _carrier(filename: str) -> bool:
    return filename.startswith(ENGINE_DIR) or filename.startswith(ASYNCIO_DIR) or filename.startswith(_STDLIB_RUNNERS)


def result_outcome(function: str, value: Any) -> Outcome:
    """A function's return value as the step's result, when it can be stored: a value that is
    not JSON fails the step with `ResultInvalid`, one over the storage cap with
    `ResultTooLarge` (rather than be lost when its record cannot be written)."""
    try:
        result = json_value(_structured(value))
        check_value(result)
    except NotJsonValue as exc:
        return Outcome("failed", None, {"type": "ResultInvalid", "message": f"{function} returned a value that is not JSON: {exc}"})
    except ValueProblem as exc:
        return Outcome("failed", None, {"type": exc.kind, "message": f"{function} returned a value that cannot be stored: {exc.message}"})
    return Outcome("succeeded", result)


def _structured(value: Any) -> Any:
    """A pydantic model, dataclass or enum that a function returns, as JSON data (the same
    kinds of values its signature may declare as a return type)."""
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    from pydantic import BaseModel

    if isinstance(value, BaseModel) or hasattr(type(value), "__dataclass_fields__") or hasattr(value, "_value_"):
        from pydantic_core import to_jsonable_python

        return to_jsonable_python(value)
    return value


def checked_arguments(function: Function, args: dict[str, Any], chain: str | None = None,
                      step: str | None = None) -> dict[str, Any] | Outcome:
    """`args` coerced to the function's signature, or the failure (`InvalidArguments`)."""
    try:
        return function.signature.validate(function.ref, args)
    except ExtensionError as exc:
        return failure("StepFailed", exc.message)
    except ArgumentProblem as exc:
        return failure("InvalidArguments", MASKER.text(_where(chain, step) + str(exc)))


def _where(chain: str | None, step: str | None) -> str:
    return f"chain {chain!r}, step {step!r}: " if chain is not None else ""


def call(function: Function, args: dict[str, Any], timeout: float | None = None, context: Context | None = None, *,
         chain: str | None = None, step: str | None = None) -> Outcome:
    """Check the arguments, then run the function (sync here, async on the process's loop)
    and check that it returned JSON.

    An async function is cancelled after `timeout`, or when `context` is canceled; a sync one
    cannot be stopped, so its timeout is the caller's to enforce (its context says canceled)."""
    if context is not None:
        chain, step = context.chain, context.step
    checked = checked_arguments(function, args, chain, step)
    if isinstance(checked, Outcome):
        return checked
    args = checked
    if function.signature.context is not None:
        args[function.signature.context] = context if context is not None else Context(
            run_id="", chain="", step="", number=0, attempt=1, function=function.ref)
    try:
        if function.is_async:
            value = run_async(function.call(**args), timeout, context)
        else:
            value = function.call(**args)
    except GeneratorExit:
        raise
    except BaseException as exc:  # KeyboardInterrupt, SystemExit, CancelledError from a step: a failure
        return outcome_of_exception(exc)
    return result_outcome(function.ref, value)


# ---------------------------------------------------------------- the process's event loop


class _LoopThread:
    """An event loop running in a daemon thread for the life of the process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="legion-async", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()


_loop: _LoopThread | None = None
_loop_lock = threading.Lock()


def event_loop() -> asyncio.AbstractEventLoop:
    """The process's loop for async step functions, started on first use."""
    global _loop
    if _loop is None:
        with _loop_lock:
            if _loop is None:
                _loop = _LoopThread()
    return _loop.loop


def run_async(coroutine: Coroutine[Any, Any, Any], timeout: float | None = None, context: Context | None = None) -> Any:
    """Run `coroutine` on the process's loop and wait for it here. The task inherits this
    thread's context variables (the step's log capture among them). It is cancelled after
    `timeout` (TimeoutError) or when `context` is canceled (CancelledError)."""
    future = asyncio.run_coroutine_threadsafe(coroutine, event_loop())
    if context is not None:
        context.on_cancel(future.cancel)
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise TimeoutError(f"the step ran past its timeout of {timeout:g}s") from None
    except concurrent.futures.CancelledError:
        raise asyncio.CancelledError("the step run was canceled") from None


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
