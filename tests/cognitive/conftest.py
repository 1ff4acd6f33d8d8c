"""The cognitive extensions' tests: a database for their agents' state, fresh per test (`url`)
or shared by a module's tests (`shared_url`, each test using agents of its own)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/state.db"


@pytest.fixture(scope="module")
def shared_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp(request.module.__name__.rsplit('.', 1)[-1])}/state.db"
