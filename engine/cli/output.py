"""Printing: text for people, or exactly one JSON document (`--json`) in the API's envelope.

Every secret value known to this process is masked as `***` in all of it (spec section 7):
values on their structure before they become JSON (`dumps`, the envelope), so that what is
printed stays JSON; the text for people once more as a whole, for what it says in words.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO

from legion.dsl.errors import LegionError
from legion.engine.jsontext import dumps, encode, masked
from legion.engine.secrets import MASKER


class Output:
    """Where results go. In JSON mode the envelope goes to the stdout this was made with,
    while `sys.stdout` may be pointed elsewhere (see `main`)."""

    def __init__(self, json_mode: bool, stdout: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self._stdout = stdout

    @property
    def stdout(self) -> TextIO:
        return self._stdout if self._stdout is not None else sys.stdout

    def data(self, data: Any, text: Callable[[], str] | str | None = None) -> None:
        """Print the result: the JSON envelope, or the text rendering."""
        if self.json_mode:
            # The envelope's own keys are never masked, so the document keeps its shape.
            self.stdout.write(encode({"data": masked(data)}) + "\n")
            self.stdout.flush()
            return
        rendered = text() if callable(text) else text
        if rendered is None:
            rendered = dumps(data, indent=2)
        if rendered:
            # The JSON in the text came from `dumps`, masked already; this catches what the
            # text says in words (a message, a table cell), which is not JSON.
            self.stdout.write(MASKER.text(rendered.rstrip("\n")) + "\n")

    def progress(self, line: str) -> None:
        """Live progress: text mode only (JSON mode prints one document and nothing else)."""
        if not self.json_mode:
            self.stdout.write(MASKER.text(line) + "\n")
            self.stdout.flush()

    def error(self, exc: LegionError) -> int:
        if self.json_mode:
            error = {key: masked(value) for key, value in exc.to_dict().items()}  # its fields are its shape
            self.stdout.write(encode({"error": error}) + "\n")
            self.stdout.flush()
        else:
            sys.stderr.write(MASKER.text(f"error: {exc.message}") + "\n")
        return exc.exit_code


def table(rows: list[dict[str, Any]], columns: list[str], empty: str = "(none)") -> str:
    if not rows:
        return empty
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (dict, list)):
        text = dumps(value)  # masked (by `dumps`) before it is cut short
        return text if len(text) <= 60 else text[:57] + "..."
    return str(value)


class MaskingFormatter(logging.Formatter):
    """Log lines on stderr with known secret values masked, as everything else printed."""

    def format(self, record: logging.LogRecord) -> str:
        return MASKER.text(super().format(record))
