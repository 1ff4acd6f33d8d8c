"""The one exception root, and the validation issue type.

`LegionError` lives here, in the innermost package, so that `legion.dsl` (which imports no
engine code) and `legion.engine` share it; the engine adds its own subtrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class LegionError(Exception):
    """Root of every error Legion raises on purpose.

    `code` is the stable machine name used in `--json` and API envelopes; `exit_code` is what
    the CLI exits with (1 the work failed, 2 bad input, 3 a service is unreachable).
    """

    code = "error"
    exit_code = 1

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class BadInput(LegionError):
    """The user gave something Legion cannot accept (usage, arguments, files)."""

    code = "bad_input"
    exit_code = 2


@dataclass(frozen=True)
class Issue:
    """One problem found in a chain or rehearsal file, pointing at a place in it."""

    message: str
    file: str = "<chain>"
    line: int = 0  # 1-based; 0 when unknown
    col: int = 0  # 1-based; 0 when unknown
    severity: str = "error"  # "error" or "warning"
    path: tuple[str | int, ...] = field(default=())

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "severity": self.severity,
            "message": self.message,
            "path": [p for p in self.path],
        }


class ValidationFailed(BadInput):
    """A chain or rehearsal file has errors; `issues` holds every one of them (and warnings)."""

    code = "validation_failed"

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        errors = [i for i in issues if i.severity == "error"]
        lines = "\n".join(str(i) for i in errors)
        super().__init__(
            f"{len(errors)} problem(s) found:\n{lines}",
            details=[i.to_dict() for i in issues],
        )


class ExpressionError(LegionError):
    """A condition or template failed to parse, evaluate or render."""

    code = "expression_error"
