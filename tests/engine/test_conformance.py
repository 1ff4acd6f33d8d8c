"""Every rehearsal of the shared conformance suite and of the project's own chains passes, and
every chain the project ships is pinned by at least one rehearsal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from legion.dsl.loader import load_file
from legion.engine.registry import Registry
from legion.engine.rehearsal import run_rehearsal
from legion.engine.yamlfiles import classify, find_yaml

REPO = Path(__file__).resolve().parents[2]
CONFORMANCE = Path(os.environ["LEGION_CONFORMANCE"]) / "rehearsals"
PROJECT_CHAINS = REPO / "chains"


def _rehearsals(root: Path) -> list[Path]:
    return [p for p in find_yaml([root]) if classify(p) == "rehearsal"] if root.is_dir() else []


def _chains(root: Path) -> list[Path]:
    return [p for p in find_yaml([root]) if classify(p) == "chain"] if root.is_dir() else []


CONFORMANCE_FILES = _rehearsals(CONFORMANCE)
PROJECT_FILES = _rehearsals(PROJECT_CHAINS)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.discover()


def test_the_suites_are_found() -> None:
    # The conformance suite has 25 rehearsals; an empty parametrization would pass vacuously.
    assert len(CONFORMANCE_FILES) >= 25
    assert PROJECT_FILES, f"no rehearsal under {PROJECT_CHAINS}"


@pytest.mark.parametrize("path", CONFORMANCE_FILES, ids=lambda p: f"conformance/{p.relative_to(CONFORMANCE)}")
def test_conformance_rehearsal(path: Path, registry: Registry) -> None:
    report = run_rehearsal(path, registry)
    assert report.passed, f"{path}: {report.failures} {[str(i) for i in report.issues]}"


@pytest.mark.parametrize("path", PROJECT_FILES, ids=lambda p: f"chains/{p.relative_to(PROJECT_CHAINS)}")
def test_project_rehearsal(path: Path, registry: Registry) -> None:
    report = run_rehearsal(path, registry)
    assert report.passed, f"{path}: {report.failures} {[str(i) for i in report.issues]}"


def test_every_project_chain_has_a_rehearsal() -> None:
    chains = _chains(PROJECT_CHAINS)
    assert chains, f"no chain file under {PROJECT_CHAINS}"
    covered: set[Path] = set()
    for path in PROJECT_FILES:
        target = load_file(path).data.get("chain")
        if isinstance(target, str):
            covered.add((path.parent / target).resolve())
    missing = [str(c.relative_to(REPO)) for c in chains if c.resolve() not in covered]
    assert not missing, f"chain files without a rehearsal pointing at them: {missing}"
