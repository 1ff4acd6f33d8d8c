"""The copy of the conformance suite in tests/conformance matches the shared one when both exist."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "conformance"
COPY = ROOT / "tests" / "conformance"


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.yaml"))}


def test_the_copy_has_the_whole_suite() -> None:
    assert len(files(COPY / "rehearsals")) == 25 and len(files(COPY / "chains")) >= 16


@pytest.mark.skipif(not SHARED.is_dir(), reason="no shared conformance suite beside this checkout")
def test_the_copy_is_current() -> None:
    assert files(COPY) == files(SHARED), "refresh it: cp -r ../shared/conformance/{chains,rehearsals} tests/conformance/"
