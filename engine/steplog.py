"""Step logs: what a step's function logs becomes its task's log entries."""

from __future__ import annotations

import contextvars
import logging
from datetime import UTC, datetime
from typing import Any


class StepLogCapture(logging.Handler):
    """Log records emitted while a step's function runs become that task's log entries
    (`legion task logs ID`): the function's own logging (`ctx.log` included), and its
    libraries'. The entries list is a context variable, so records from an async function,
    which runs on the process's event loop in a task that inherits the worker's context,
    land in the right task too."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.entries: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar("legion_step_log", default=None)

    def emit(self, record: logging.LogRecord) -> None:
        entries = self.entries.get()
        if entries is not None:
            try:
                message = record.getMessage()
            except Exception:  # a malformed log call must not fail the step
                message = str(record.msg)
            entries.append({"at": datetime.fromtimestamp(record.created, UTC),
                            "level": record.levelname.lower(), "message": message, "data": {"logger": record.name}})

    def begin(self) -> contextvars.Token[list[dict[str, Any]] | None]:
        return self.entries.set([])

    def end(self, token: contextvars.Token[list[dict[str, Any]] | None]) -> list[dict[str, Any]]:
        entries = self.entries.get()
        self.entries.reset(token)
        return entries or []
