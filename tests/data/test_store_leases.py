"""Leases in the database, on SQLite, PostgreSQL and MariaDB: one holder at a time, renewed by
its holder, taken over once expired, given up on release; and racing takers get one winner."""

from __future__ import annotations

import threading

from legion.engine.data.store import Store


def test_one_holder_at_a_time(store: Store) -> None:
    assert store.acquire_lease("actor:x", "a", 60)
    assert not store.acquire_lease("actor:x", "b", 60)  # a holds it
    assert store.acquire_lease("actor:x", "a", 60)  # renewed by its holder
    assert store.acquire_lease("actor:y", "b", 60)  # another lease is another matter
    store.release_lease("actor:x", "b")  # not b's to give up
    assert not store.acquire_lease("actor:x", "b", 60)
    store.release_lease("actor:x", "a")
    assert store.acquire_lease("actor:x", "b", 60)


def test_an_expired_lease_is_taken_over(store: Store) -> None:
    assert store.acquire_lease("actor:x", "a", -1)  # expired as soon as taken: its holder died
    assert store.acquire_lease("actor:x", "b", 60)
    assert not store.acquire_lease("actor:x", "a", 60)


def test_of_racing_takers_one_wins(db_url: str, store: Store) -> None:
    """Eight processes' worth of stores (each its own connection pool) take a free lease at once."""
    stores = [Store(db_url) for _ in range(8)]
    go = threading.Barrier(len(stores))
    won: list[str] = []

    def take(i: int) -> None:
        go.wait()
        if stores[i].acquire_lease("actor:race", f"holder-{i}", 60):
            won.append(f"holder-{i}")

    threads = [threading.Thread(target=take, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for s in stores:
        s.close()
    assert len(won) == 1
    assert not store.acquire_lease("actor:race", "late", 60)
