"""YAML files on disk: finding them under folders, and telling chains from rehearsals.

Kept apart from the rehearsal driver so that commands that only read chain files (validate,
plan, apply) do not import the conductor and the function-calling machinery.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from legion.dsl.errors import ValidationFailed
from legion.dsl.loader import load_file


def find_yaml(paths: Iterable[str | Path]) -> list[Path]:
    """YAML files named, or found recursively under named folders, in a stable order."""
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml") and q.is_file()))
        else:
            found.append(p)
    return found


def classify(path: Path) -> str:
    """'rehearsal' (top-level `expect`), 'chain' (`chain` and `steps`) or 'other'."""
    try:
        data = load_file(path).data
    except ValidationFailed:
        return "broken"
    if isinstance(data, dict):
        if "expect" in data:
            return "rehearsal"
        if "chain" in data and "steps" in data:
            return "chain"
    return "other"
