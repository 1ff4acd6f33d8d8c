"""A run written in parts, on SQLite, PostgreSQL and MariaDB: an event writes its core and the
parts it changed, at the run's next revision; a reader gets all parts or those written since a
revision; a quiet run's parts are deleted; a deleted run takes its parts with it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from legion.engine.data.models import run_parts
from legion.engine.data.store import Store
from legion.engine.data.types import utcnow


def _new_run(store: Store, run_id: str) -> None:
    row = {"id": run_id, "chain_name": "c", "chain_version": 1, "status": "running"}
    with store.lock_run(run_id, create=row) as locked:
        locked.save({"state": {"core": 0}}, [])


def _event(store: Store, run_id: str, core: dict[str, Any], parts: list[tuple[str, int, Any]], quiet: bool = False) -> int:
    with store.lock_run(run_id) as locked:
        locked.save({"state": core}, [], parts=parts, quiet=quiet)
        return locked.revision


def _core(n: int, groups: int = 1) -> dict[str, Any]:
    """A core as far as the store reads it: whether it has groups, or step runs in parts."""
    return {"core": n, "groups": {str(g): [] for g in range(1, groups + 1)}, "grouped": [groups, 0]}


def test_parts_are_written_per_revision_and_read_since_one(store: Store) -> None:
    _new_run(store, "r1")
    r2 = _event(store, "r1", _core(2), [("g1", 1, ["items", {"a": 1}, [None] * 4, [1, 2]]), ("s2", 1, [1, 0, "queued", None, None])])
    r3 = _event(store, "r1", _core(3), [("s2", 1, None), ("r1.0", 1, {"x": "é"}), ("s3", 1, [1, 1, "queued", None, None])])
    assert (r2, r3) == (2, 3)
    with store.lock_run("r1") as locked:
        core, parts = locked.state()
        assert core == _core(3)
        assert sorted(parts) == [("g1", 1, ["items", {"a": 1}, [None] * 4, [1, 2]]), ("r1.0", 1, {"x": "é"}),
                                 ("s2", 1, None), ("s3", 1, [1, 1, "queued", None, None])]
        assert sorted(locked.state(since=2)[1]) == [("r1.0", 1, {"x": "é"}), ("s2", 1, None), ("s3", 1, [1, 1, "queued", None, None])]
        assert locked.state(since=3)[1] == []
    core, parts, revision = store.run_state("r1", since=2)
    assert (core, revision) == (_core(3), 3) and len(parts) == 3
    _event(store, "r1", _core(4, groups=0), [])
    assert store.run_state("r1") == (_core(4, groups=0), [], 4)  # no group in the core: no parts read
    with store.lock_run("r1", known=4) as locked:
        assert locked.core is None  # the caller's copy is current: the state does not come with the lock
    with store.lock_run("r1", known=3) as locked:
        assert locked.core == _core(4, groups=0)
        assert locked.state(since=3) == (_core(4, groups=0), [])
    _event(store, "r1", _core(5), [], quiet=True)
    assert store.run_state("r1") == (_core(5), [], 6 - 1)


def test_a_purged_run_takes_its_parts_with_it(store: Store) -> None:
    _new_run(store, "r2")
    _event(store, "r2", _core(1), [("g1", 1, ["items", {}, [None] * 4, [1]])])
    with store.lock_run("r2") as locked:
        locked.save({"status": "canceled", "ended_at": utcnow() - timedelta(days=2)}, [])
    store.purge_tasks(utcnow() - timedelta(days=1))
    with store._engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(run_parts)).scalar_one() == 0
