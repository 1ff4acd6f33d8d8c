"""YAML files on disk: finding them under folders, loading each once, and telling chains from
rehearsals.

Kept apart from the rehearsal driver so that commands that only read chain files (validate,
plan, apply) do not import the conductor and the function-calling machinery.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from legion.dsl.errors import Issue, ValidationFailed
from legion.dsl.loader import Document, load_file


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


@dataclass(frozen=True)
class YamlFile:
    """One YAML file as loaded: its document, or the issues that kept it from loading."""

    path: Path
    doc: Document | None
    issues: tuple[Issue, ...] = ()

    @property
    def kind(self) -> str:
        """'rehearsal' (top-level `expect`), 'chain' (`chain` and `steps`), 'other', or
        'broken' (it does not load)."""
        if self.doc is None:
            return "broken"
        data = self.doc.data
        if isinstance(data, dict):
            if "expect" in data:
                return "rehearsal"
            if "chain" in data and "steps" in data:
                return "chain"
        return "other"

    def document(self) -> Document:
        """The document; ValidationFailed with the file's issues when it does not load."""
        if self.doc is None:
            raise ValidationFailed(list(self.issues))
        return self.doc


class YamlFiles:
    """The YAML files one command reads, each read and parsed once however often it is asked
    for (a command first tells chains from rehearsals, then validates them, and rehearsals
    look up the chains of their folder): parsing is most of what validation costs.

    A file reached by another path (`chains/a.yaml`, `./chains/../chains/a.yaml`) is the same
    file, named in messages as it was asked for.
    """

    def __init__(self) -> None:
        self._files: dict[Path, YamlFile] = {}

    def get(self, path: str | Path) -> YamlFile:
        path = Path(path)
        key = path.resolve()
        found = self._files.get(key)
        if found is None:
            try:
                found = YamlFile(path, load_file(path))
            except ValidationFailed as exc:
                found = YamlFile(path, None, tuple(exc.issues))
            self._files[key] = found
        if found.path == path:
            return found
        name = str(path)
        return YamlFile(path, found.doc.named(name) if found.doc is not None else None,
                        tuple(dataclasses.replace(i, file=name) if i.file == str(found.path) else i for i in found.issues))

    def load(self, path: str | Path) -> Document:
        """The file's document; ValidationFailed when it does not load."""
        return self.get(path).document()


def classify(path: Path, files: YamlFiles | None = None) -> str:
    """'rehearsal' (top-level `expect`), 'chain' (`chain` and `steps`), 'other' or 'broken'."""
    return (files if files is not None else YamlFiles()).get(path).kind
