"""Database fixtures for the hardening tests, on SQLite (always) and on PostgreSQL and MariaDB
(marked integration): `fresh_db_url`, a database nobody has opened yet (first use is what
some of these tests are about), dropped at the end of the test; `clean_store`, a store on a
database migrated once per session, emptied after each test. A server that cannot be reached
skips those tests locally and fails them when CI=true (as in tests/data/conftest.py).

A plugin, not a conftest.py: test modules here load it with `pytest_plugins`, so that this
folder, which several efforts add tests to, needs no shared file. Plugin fixtures are seen
by the whole session, hence the specific names."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from legion.engine.data.models import metadata
from legion.engine.data.store import Store

SERVER_URLS = {
    "postgresql": os.environ.get("LEGION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("LEGION_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}

BACKENDS = [
    pytest.param("sqlite"),
    pytest.param("postgresql", marks=pytest.mark.integration),
    pytest.param("mariadb", marks=pytest.mark.integration),
]


def unreachable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: integration services must be up)")
    pytest.skip(message)


@pytest.fixture(params=BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def create_database(backend: str) -> str:
    """A new, empty database on the backend's server; its URL."""
    base = make_url(SERVER_URLS[backend])
    name = f"legion_sec_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            if backend == "mariadb":
                conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
            else:
                conn.execute(text(f"CREATE DATABASE {name}"))
    except DBAPIError as exc:
        unreachable(f"{backend} at {SERVER_URLS[backend]} is unreachable: {exc.orig}")
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def drop_database(backend: str, url: str) -> None:
    admin = create_engine(SERVER_URLS[backend], isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if backend == "postgresql" else ""
            conn.execute(text(f"DROP DATABASE IF EXISTS {make_url(url).database}{force}"))
    finally:
        admin.dispose()


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
