"""Small utilities every chain can use; the conformance suites are written with these."""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

from legion.sdk import Failure

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def echo(message: Any = None) -> Any:
    """Return `message` unchanged.

    Args:
        message: any JSON value
    """
    return message


def noop() -> None:
    """Do nothing and return null."""
    return None


def fail(message: str = "failed on purpose") -> None:
    """Fail the step with error type `Failure` and this message.

    Args:
        message: the error's message
    """
    raise Failure(message)


def log(message: str, level: Literal["debug", "info", "warning", "error"] = "info") -> None:
    """Write `message` to Legion's log at `level`; return null.

    Args:
        message: the text to log (it becomes a task log entry)
        level: the log level
    """
    logging.getLogger("legion.core").log(_LEVELS[level], "%s", message)
    return None


def sleep(seconds: float) -> None:
    """Wait `seconds` (on the virtual clock in rehearsals), then return null.

    Args:
        seconds: how long to wait
    """
    time.sleep(seconds)
    return None


def set(**values: Any) -> dict[str, Any]:  # noqa: A001 - the function is called core.util.set
    """Return the arguments as a mapping.

    Args:
        values: any arguments, returned as they are
    """
    return dict(values)
