"""Every chain and rehearsal shipped in chains/ names its JSON Schema for editors."""

from __future__ import annotations

from pathlib import Path

import pytest

from legion.engine.yamlfiles import classify, find_yaml

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = find_yaml([ROOT / "chains"])


def test_there_are_shipped_chains() -> None:
    assert any(classify(p) == "chain" for p in SHIPPED)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_schema_line(path: Path) -> None:
    kind = classify(path)
    assert kind in ("chain", "rehearsal")
    first = path.read_text().splitlines()[0]
    schema = "chain.schema.json" if kind == "chain" else "rehearsal.schema.json"
    assert first.startswith("# yaml-language-server: $schema=") and first.endswith(schema)
    assert (path.parent / first.split("=", 1)[1]).resolve() == ROOT / "schemas" / schema
