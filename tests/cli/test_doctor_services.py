"""`legion doctor`'s service checks against the real RabbitMQ, Redis and PostgreSQL (and
against ports where nothing listens). The Vault check is tested with the OpenBao server in
tests/secrets/test_vault.py."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from legion.engine.cli import doctor

AMQP = os.environ.get("LEGION_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
REDIS = os.environ.get("LEGION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES = os.environ.get("LEGION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # free now: nothing listens there


def require(url: str) -> None:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=2).close()
    except OSError as exc:
        message = f"{parts.scheme} at {parts.hostname}:{parts.port} is unreachable ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: integration services must be up)")
        pytest.skip(message)


def test_services_not_configured_are_fine(tmp_path: Path) -> None:
    assert doctor.rabbitmq(None).status == "ok" and doctor.redis(None).status == "ok"
    assert doctor.vault({}, tmp_path).message == f"VAULT_ADDR not set: secrets in the embedded store ({tmp_path / 'secrets.json'})"


def test_unreachable_services_fail_with_a_hint(tmp_path: Path) -> None:
    port = closed_port()
    amqp = doctor.rabbitmq(f"amqp://guest:s3cret@127.0.0.1:{port}/")
    assert amqp.status == "fail" and amqp.message.startswith(f"amqp://guest:***@127.0.0.1:{port}/: cannot connect")
    assert "s3cret" not in amqp.message and "LEGION_AMQP_URL" in (amqp.hint or "")
    redis = doctor.redis(f"redis://:s3cret@127.0.0.1:{port}/0")
    assert redis.status == "fail" and "cannot connect" in redis.message and "s3cret" not in redis.message
    vault = doctor.vault({"VAULT_ADDR": f"http://127.0.0.1:{port}", "VAULT_TOKEN": "t"}, tmp_path)
    assert vault.status == "fail" and vault.message == f"http://127.0.0.1:{port}: cannot connect ([Errno 111] Connection refused)"
    assert doctor.vault({"VAULT_ADDR": "http://127.0.0.1:8200"}, tmp_path).message.endswith("VAULT_TOKEN is not set")
    assert doctor.rabbitmq(f"http://127.0.0.1:{port}").status == "fail"  # not amqp://, and nothing there
    database = doctor.database(f"postgresql+psycopg://legion:s3cret@127.0.0.1:{port}/legion")
    assert database.status == "fail" and "cannot connect" in database.message and "s3cret" not in database.message


@pytest.mark.integration
def test_rabbitmq_reachable_and_refusing_a_password() -> None:
    require(AMQP)
    good = doctor.rabbitmq(AMQP)
    assert good.status == "ok" and good.message.endswith(": reachable, logged in"), good
    parts = urlsplit(AMQP)
    wrong = parts._replace(netloc=f"{parts.username or 'guest'}:not-the-password@{parts.hostname}:{parts.port or 5672}").geturl()
    bad = doctor.rabbitmq(wrong)
    assert bad.status == "fail" and "refused the login" in bad.message and "not-the-password" not in bad.message


@pytest.mark.integration
def test_redis_reachable() -> None:
    require(REDIS)
    check = doctor.redis(REDIS)
    assert check.status == "ok" and check.message == f"{REDIS}: reachable, answers PING"


@pytest.mark.integration
def test_database_server_without_and_with_the_schema(tmp_path: Path) -> None:
    require(POSTGRES.replace("postgresql+psycopg", "postgresql"))
    from sqlalchemy import create_engine, text

    from legion.engine.data import Store

    name = f"legion_doctor_{os.getpid()}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    url = POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        empty = doctor.database(url)
        assert empty.status == "warn" and empty.message.endswith("reachable, no Legion schema yet")
        Store(url).close()
        current = doctor.database(url)
        assert current.status == "ok" and "schema current" in current.message
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
