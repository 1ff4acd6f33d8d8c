"""What `/metrics` reads, on SQLite, PostgreSQL and MariaDB: counts by status, and a histogram
of step-run durations computed by the database."""

from __future__ import annotations

from datetime import timedelta

from legion.engine.data.store import Store
from legion.engine.data.types import utcnow


def test_counts_and_the_duration_histogram(store: Store) -> None:
    now = utcnow()
    store.create_run({"id": "m1", "chain_name": "c", "chain_version": 1, "status": "succeeded"})
    store.create_run({"id": "m2", "chain_name": "c", "chain_version": 1, "status": "running"})
    rows = [{"run_id": "m1", "number": n, "step": "s", "function": "core.util.noop", "status": "succeeded",
             "started_at": now, "finished_at": now + timedelta(seconds=took)} for n, took in enumerate((0.002, 0.3, 7.0), 1)]
    rows.append({"run_id": "m2", "number": 1, "step": "s", "function": "core.util.noop", "status": "queued"})
    store.record(None, rows)
    assert store.counts_by_status() == {"runs": {"succeeded": 1, "running": 1}, "tasks": {"succeeded": 3, "queued": 1}}
    found = store.step_durations((0.005, 0.5, 10.0))
    assert found["buckets"] == [(0.005, 1), (0.5, 2), (10.0, 3)]
    assert found["count"] == 3 and abs(found["sum"] - 7.302) < 0.01
