"""Settings for every test process (the `make test` run has several: pytest-xdist workers).

- Where the chain conformance suite is: the shared one beside this checkout when there is one
  (the freshest), else the copy kept in tests/conformance (so a checkout anywhere runs it).
  Test modules read the path from LEGION_CONFORMANCE.
- LEGION_HOME is a fresh directory per process, removed at the end: nothing a test runs falls
  back on ~/.legion, and parallel workers never share a home.
- The installed `legion` must show every module of this checkout (see `linked_files_missing`).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "conformance"
COPY = ROOT / "tests" / "conformance"
PACKAGE_DIRS = ("dsl", "engine", "extensions", "chains", "schemas", "sdk", "docs")  # legion.<name> is <name>/

os.environ.setdefault("LEGION_CONFORMANCE", str(SHARED if SHARED.is_dir() else COPY))

HOME = pytest.StashKey[Path]()
EGRESS = ROOT / "tests" / "egress"
EGRESS_LOG = "LEGION_TEST_EGRESS_LOG"


def _egress() -> Any:
    spec = importlib.util.spec_from_file_location("legion_test_egress", EGRESS / "sitecustomize.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def only_loopback() -> Iterator[Path]:
    """Fails the test during which a connection (of this process or one it started) tried to
    leave loopback."""
    log = Path(os.environ[EGRESS_LOG])
    log.unlink(missing_ok=True)
    yield log
    tried = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    assert tried == [], f"connections tried to leave loopback: {tried}"


def pytest_configure(config: pytest.Config) -> None:
    home = Path(tempfile.mkdtemp(prefix=f"legion-home-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-"))
    config.stash[HOME] = home
    os.environ["LEGION_HOME"] = str(home)
    # No connection leaves loopback, here or in a process a test starts (tests/egress).
    os.environ[EGRESS_LOG] = str(home / "egress.log")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(EGRESS), os.environ.get("PYTHONPATH", "")) if p)
    _egress().install()
    if not hasattr(config, "workerinput"):  # once per run: in the main process
        missing = linked_files_missing()
        if missing:
            raise pytest.UsageError(
                "the installed legion does not have these modules of this checkout: " + ", ".join(missing[:10])
                + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
                + ". Run `make setup`: the strict editable install links the files that existed when it ran, "
                "so a new file needs a reinstall (the Makefile redoes it when files come or go). If they are "
                "still missing after it, their package is missing from `packages` in pyproject.toml.")


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(HOME, None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


def linked_files_missing() -> list[str]:
    """Modules of this checkout that the installed `legion` cannot import. A strict editable
    install (what the Makefile does) is a tree of links to the files that existed when it
    ran; modules added since then are not in it. Nothing is checked when `legion` is
    installed some other way, or from another checkout."""
    try:
        import legion.engine
    except ImportError:
        return []
    module = Path(legion.engine.__file__)
    installed = module.parents[1]  # .../build/__editable__.legion-*/legion
    if not installed.parent.name.startswith("__editable__") or module.resolve().parents[1] != ROOT:
        return []
    return sorted(
        str(path.relative_to(ROOT))
        for folder in PACKAGE_DIRS
        for path in (ROOT / folder).rglob("*.py")
        if not (installed / path.relative_to(ROOT)).exists()
    )
