"""The real database servers the integration tests use, and what to do when one is missing:
skip locally, fail when CI=true (the services must be up there)."""

from __future__ import annotations

import os

import pytest

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
