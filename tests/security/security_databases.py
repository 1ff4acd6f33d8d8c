"""Database fixtures for the hardening tests, on SQLite (always) and on PostgreSQL and MariaDB
(marked integration): `fresh_db_url`, a database nobody has opened yet (first use is what
some of these tests are about), dropped at the end of the test; `clean_store`, a store on a
database migrated once per session, emptied after each test. A server that cannot be reached
skips those tests locally and fails them when CI=true (as in tests/data/conftest.py).

A plugin, not a conftest.py: test modules here load it with `pytest_plugins`, so that this
folder, which several efforts add tests to, needs no shared file. Plugin fixtures are seen
by the whole session, hence the specific names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import services
from services import BACKENDS, SERVER_URLS, drop_database, unreachable
from sqlalchemy import delete
from sqlalchemy.exc import DBAPIError

from legion.engine.data.models import metadata
from legion.engine.data.store import Store


@pytest.fixture(params=BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def create_database(backend: str) -> str:
    """A new, empty database on the backend's server; its URL (skip or fail when unreachable)."""
    try:
        return services.create_database(backend, "legion_sec")
    except DBAPIError as exc:
        unreachable(f"{backend} at {SERVER_URLS[backend]} is unreachable: {exc.orig}")
        raise


@pytest.fixture
def fresh_db_url(db_backend: str, tmp_path: Path) -> Iterator[str]:
    """The URL of a database that exists and is empty: no table, no schema revision."""
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    url = create_database(db_backend)
    try:
        yield url
    finally:
        drop_database(db_backend, url)


@pytest.fixture(scope="session")
def migrated_databases() -> Iterator[dict[str, str]]:
    """Server databases created and migrated once per session (per test process), by backend."""
    urls: dict[str, str] = {}
    yield urls
    for backend, url in urls.items():
        drop_database(backend, url)


@pytest.fixture
def clean_store(db_backend: str, migrated_databases: dict[str, str], tmp_path: Path) -> Iterator[Store]:
    """A store on a migrated database with empty tables."""
    if db_backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'legion.db'}"
    elif db_backend not in migrated_databases:
        migrated_databases[db_backend] = url = create_database(db_backend)
    else:
        url = migrated_databases[db_backend]
    store = Store(url)
    try:
        yield store
    finally:
        with store._engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(delete(table))
        store.close()
