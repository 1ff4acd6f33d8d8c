"""Fixtures for the persistence tests: the same tests run on SQLite (always) and on
PostgreSQL and MariaDB (marked integration). A server that cannot be reached skips those
tests locally and fails them when CI=true. Each test session gets its own throwaway database
on each server, dropped at the end; each test starts from empty tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from services import BACKENDS, SERVER_URLS, create_database, drop_database, unreachable
from sqlalchemy import delete
from sqlalchemy.exc import DBAPIError

from legion.engine.data import Store
from legion.engine.data.models import metadata


class Servers:
    """Creates one database per server on first use and drops them all at the end."""

    def __init__(self) -> None:
        self._urls: dict[str, str] = {}
        self._errors: dict[str, str] = {}
        self._drops: list[tuple[str, str]] = []

    def url(self, backend: str) -> str:
        if backend in self._errors:
            unreachable(self._errors[backend])
        if backend not in self._urls:
            try:
                self._urls[backend] = self._create(backend)
            except DBAPIError as exc:
                self._errors[backend] = f"{backend} at {SERVER_URLS[backend]} is unreachable: {exc.orig}"
                unreachable(self._errors[backend])
        return self._urls[backend]

    def _create(self, backend: str) -> str:
        url = create_database(backend)
        self._drops.append((backend, url))
        return url

    def drop_all(self) -> None:
        for backend, url in self._drops:
            drop_database(backend, url)


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    servers = Servers()
    yield servers
    servers.drop_all()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, servers: Servers, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'legion.db'}"
    return servers.url(backend)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store(db_url)
    yield store
    wipe(store)
    store.close()


def wipe(store: Store) -> None:
    """Empty every table (the server databases live for the whole session)."""
    with store._engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(delete(table))


# -- builders shared by the tests (as fixtures: test modules do not import conftest) -------


def make_edge(trigger: str, target: str | None, index: int = 0, **extra: Any) -> dict[str, Any]:
    """A relationship as the compiler emits it (`chain` and `version` included)."""
    return {
        "chain": "ignored", "version": None, "kind": "edge", "edge_index": index,
        "trigger_step": trigger, "trigger_function": "core.util.echo", "condition": "succeeded",
        "publish": {}, "allow_new_chains": False, "action": None if target is None else "step",
        "action_step": target, "action_function": None if target is None else "core.util.echo",
        "join": None, "delay": 0.0, "priority": 0, **extra,
    }


def make_chain(name: str, body: str = "a", **extra: Any) -> dict[str, Any]:
    """An apply item whose content (and so content_hash) is determined by `body`."""
    source = f"chain: {name}\nsteps:\n  {body}:\n    run: core.util.echo\n"
    return {
        "name": name,
        "source": source,
        "content_hash": f"{name}:{body}".ljust(64, "0")[:64],
        "definition": {"chain": name, "steps": {body: {"run": "core.util.echo"}}},
        "path": f"chains/{name}.yaml",
        "relationships": [make_edge(body, None)],
        **extra,
    }


@pytest.fixture(name="edge")
def edge_fixture() -> Any:
    return make_edge


@pytest.fixture(name="chain_item")
def chain_item_fixture() -> Any:
    return make_chain
