"""Leases in Redis (LEGION_REDIS_URL): the same rules as the database's (tests/data/
test_store_leases.py), against a real Redis; skipped locally when it is down, failed when CI=true."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from services import REDIS_URL, unreachable

from legion.engine.errors import ServiceUnavailable
from legion.engine.leases import RedisLeases, StoreLeases, leases_for


@pytest.fixture
def redis_leases() -> Iterator[RedisLeases]:
    leases = RedisLeases(REDIS_URL)
    try:
        leases.client.ping()
    except Exception as exc:
        unreachable(f"Redis at {REDIS_URL} is unreachable: {exc}")
    yield leases
    leases.client.close()


@pytest.mark.integration
def test_one_holder_at_a_time_in_redis(redis_leases: RedisLeases) -> None:
    name = f"test:{uuid.uuid4().hex}"
    assert redis_leases.acquire(name, "a", 60)
    assert not redis_leases.acquire(name, "b", 60)
    assert redis_leases.acquire(name, "a", 60)  # renewed by its holder
    redis_leases.release(name, "b")  # not b's to give up
    assert not redis_leases.acquire(name, "b", 60)
    redis_leases.release(name, "a")
    assert redis_leases.acquire(name, "b", 60)
    assert 0 < redis_leases.client.pttl("legion:lease:" + name) <= 60_000
    redis_leases.release(name, "b")


@pytest.mark.integration
def test_of_racing_takers_one_wins_in_redis(redis_leases: RedisLeases) -> None:
    name = f"test:{uuid.uuid4().hex}"
    takers = [RedisLeases(REDIS_URL) for _ in range(8)]
    go = threading.Barrier(len(takers))
    won: list[int] = []

    def take(i: int) -> None:
        go.wait()
        if takers[i].acquire(name, f"holder-{i}", 60):
            won.append(i)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(len(takers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(won) == 1
    takers[won[0]].release(name, f"holder-{won[0]}")


def test_an_unreachable_redis_is_service_unavailable() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ServiceUnavailable, match="LEGION_REDIS_URL"):
        RedisLeases(f"redis://127.0.0.1:{port}/0").acquire("x", "a", 1)


def test_redis_is_used_when_configured_else_the_database() -> None:
    assert isinstance(leases_for(REDIS_URL, object()), RedisLeases)
    assert isinstance(leases_for(None, object()), StoreLeases)
