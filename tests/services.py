"""The real database servers the integration tests use, and what to do when one is missing:
skip locally, fail when CI=true (the services must be up there)."""

from __future__ import annotations

import os
import secrets

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

SERVER_URLS = {
    "postgresql": os.environ.get("LEGION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("LEGION_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}

REDIS_URL = os.environ.get("LEGION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

BACKENDS = [
    pytest.param("sqlite"),
    pytest.param("postgresql", marks=pytest.mark.integration),
    pytest.param("mariadb", marks=pytest.mark.integration),
]


def unreachable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: integration services must be up)")
    pytest.skip(message)


def redis_url() -> str:
    """REDIS_URL, once Redis answers there (else `unreachable`)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5, socket_timeout=5)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        unreachable(f"Redis at {REDIS_URL} is unreachable: {exc}")
    finally:
        client.close()
    return REDIS_URL


def create_database(backend: str, prefix: str = "legion_test") -> str:
    """A new, empty database on the backend's server (UTF-8 with binary collation on MariaDB,
    as Legion's own); its URL. DBAPIError when the server cannot be reached."""
    base = make_url(SERVER_URLS[backend])
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            if backend == "mariadb":
                conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
            else:
                conn.execute(text(f"CREATE DATABASE {name}"))
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
