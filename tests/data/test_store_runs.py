"""Runs, tasks, the `record` hot path, task logs, purge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from legion.engine.data import Store
from legion.engine.errors import BadInput, Conflict, NotFound

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def run_row(run_id: str, chain: str = "alpha", **extra: Any) -> dict[str, Any]:
    return {"id": run_id, "chain_name": chain, "chain_version": 1, **extra}


def task_row(run_id: str, number: int, **extra: Any) -> dict[str, Any]:
    return {"run_id": run_id, "number": number, "step": f"s{number}", "function": "core.util.echo", **extra}


def test_create_and_get_run_with_defaults(store: Store) -> None:
    created = store.create_run(run_row("r1", input={"who": "wörld", "n": [1, 2]}))
    assert created == store.get_run("r1")
    assert (created["status"], created["trigger"], created["depth"]) == ("pending", "manual", 0)
    assert created["input"] == {"who": "wörld", "n": [1, 2]}
    assert created["output"] is None and created["state"] is None
    assert created["created_at"].tzinfo is not None
    with pytest.raises(Conflict, match="r1"):
        store.create_run(run_row("r1"))
    with pytest.raises(BadInput, match="chain_version"):
        store.create_run({"id": "r2", "chain_name": "alpha"})
    with pytest.raises(BadInput, match="colour"):
        store.create_run(run_row("r3", colour="red"))


def test_update_run(store: Store) -> None:
    store.create_run(run_row("r1"))
    state = {"queue": [1, 2], "joins": {"j": {"round": 1}}}
    updated = store.update_run("r1", status="succeeded", output={"ok": True}, state=state, ended_at=T0)
    assert updated["status"] == "succeeded" and updated["state"] == state
    assert store.get_run("r1")["ended_at"] == T0
    with pytest.raises(NotFound, match="legion run list"):
        store.update_run("nope", status="failed")
    with pytest.raises(NotFound):
        store.get_run("nope")


def test_datetimes_come_back_as_aware_utc(store: Store) -> None:
    plus_two = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    store.create_run(run_row("r1", started_at=plus_two))
    started = store.get_run("r1")["started_at"]
    assert started == T0 and started.utcoffset() == timedelta(0)


def test_list_runs_newest_first_with_filters(store: Store) -> None:
    for i in range(5):
        store.create_run(run_row(f"r{i}", chain="alpha" if i % 2 else "beta", status="running" if i < 2 else "succeeded",
                                 created_at=T0 + timedelta(seconds=i)))
    assert [r["id"] for r in store.list_runs()] == ["r4", "r3", "r2", "r1", "r0"]
    assert [r["id"] for r in store.list_runs(chain="alpha")] == ["r3", "r1"]
    assert [r["id"] for r in store.list_runs(status="running")] == ["r1", "r0"]
    assert [r["id"] for r in store.list_runs(chain="beta", status="succeeded", limit=1)] == ["r4"]


def test_record_upserts_only_the_given_columns(store: Store) -> None:
    store.create_run(run_row("r1"))
    store.record(None, [task_row("r1", 1, args={"x": 1}), task_row("r1", 2)])
    first = store.get_task_by_number("r1", 1)
    assert (first["status"], first["attempt"], first["args"]) == ("queued", 1, {"x": 1})
    assert first["queued_at"] is not None
    # an update names only what changed; step, function, args and queued_at stay
    store.record({"id": "r1", "status": "running", "started_at": T0},
                 [{"run_id": "r1", "number": 1, "status": "running", "started_at": T0, "node": "n1"}])
    running = store.get_task_by_number("r1", 1)
    assert (running["status"], running["node"], running["args"], running["step"]) == ("running", "n1", {"x": 1}, "s1")
    assert running["queued_at"] == first["queued_at"] and running["id"] == first["id"]
    assert store.get_run("r1")["status"] == "running"
    # mixed column sets in one call, a new task and an update
    store.record({"id": "r1", "state": {"n": 3}}, [
        {"run_id": "r1", "number": 1, "status": "succeeded", "result": [1, "ü"], "finished_at": T0},
        task_row("r1", 3, status="delayed"),
    ])
    assert store.get_task_by_number("r1", 1)["result"] == [1, "ü"]
    assert store.get_task_by_number("r1", 3)["status"] == "delayed"
    assert store.get_run("r1")["state"] == {"n": 3}
    assert store.count_tasks("r1") == 3


def test_record_is_one_transaction(store: Store) -> None:
    store.create_run(run_row("r1"))
    with pytest.raises(NotFound, match="nope"):
        store.record({"id": "nope", "status": "running"}, [task_row("r1", 1)])
    assert store.count_tasks() == 0
    with pytest.raises(NotFound):
        store.record(None, [task_row("r1", 1), task_row("missing-run", 1)])
    assert store.count_tasks() == 0
    with pytest.raises(BadInput, match="colour"):
        store.record(None, [task_row("r1", 1, colour="red")])
    with pytest.raises(BadInput, match="run_id and number"):
        store.record(None, [{"run_id": "r1", "status": "running"}])


def test_record_rejects_a_new_task_without_its_step(store: Store) -> None:
    store.create_run(run_row("r1"))
    with pytest.raises((NotFound, BadInput)):
        store.record(None, [{"run_id": "r1", "number": 1, "status": "running"}])
    assert store.count_tasks() == 0


def test_record_with_the_key_only_is_a_no_op_on_an_existing_task(store: Store) -> None:
    store.create_run(run_row("r1"))
    store.record(None, [task_row("r1", 1, status="running")])
    store.record(None, [{"run_id": "r1", "number": 1}])
    assert store.get_task_by_number("r1", 1)["status"] == "running"


def test_task_lookups(store: Store) -> None:
    store.create_run(run_row("r1"))
    store.create_run(run_row("r2"))
    store.record(None, [
        task_row("r1", 1, status="succeeded", started_at=T0 + timedelta(seconds=2)),
        task_row("r1", 2, status="running", started_at=T0),
        task_row("r1", 3, status="queued"),
        task_row("r1", 4, status="running", started_at=T0),
        task_row("r2", 1, status="running"),
    ])
    one = store.get_task_by_number("r1", 1)
    assert store.get_task(one["id"]) == one
    with pytest.raises(NotFound):
        store.get_task(10**9)
    with pytest.raises(NotFound, match="number 9"):
        store.get_task_by_number("r1", 9)
    assert [t["number"] for t in store.run_tasks("r1")] == [2, 4, 1, 3]
    assert [(t["run_id"], t["number"]) for t in store.list_tasks(status="running")] == [("r2", 1), ("r1", 4), ("r1", 2)]
    assert [t["number"] for t in store.list_tasks(run_id="r1", limit=2)] == [4, 3]
    assert len(store.list_tasks()) == 5


def test_task_logs(store: Store) -> None:
    store.create_run(run_row("r1"))
    store.record(None, [task_row("r1", 1)])
    task_id = store.get_task_by_number("r1", 1)["id"]
    first = store.add_task_log(task_id, "info", "started")
    store.add_task_log(task_id, "error", "x" * 70_000, data={"attempt": 2})
    logs = store.task_logs(task_id)
    assert [(log["level"], len(log["message"]), log["data"]) for log in logs] == [
        ("info", 7, None), ("error", 70_000, {"attempt": 2})
    ]
    assert logs[0]["id"] == first["id"] and logs[0]["at"].tzinfo is not None
    with pytest.raises(NotFound, match="no such task"):
        store.add_task_log(10**9, "info", "lost")


def test_purge_removes_old_finished_runs_and_keeps_running_ones(store: Store) -> None:
    old, recent = T0 - timedelta(days=30), T0
    runs = {
        "done-old": {"status": "succeeded", "ended_at": old},
        "failed-old": {"status": "failed", "ended_at": old},
        "done-recent": {"status": "succeeded", "ended_at": recent},
        "running-old": {"status": "running", "created_at": old},
        "paused-odd": {"status": "paused", "ended_at": old},  # never purged while not finished
    }
    for run_id, fields in runs.items():
        store.create_run(run_row(run_id, **fields))
        store.record(None, [task_row(run_id, 1, finished_at=old), task_row(run_id, 2)])
        store.add_task_log(store.get_task_by_number(run_id, 1)["id"], "info", "hello")
    purged = store.purge_tasks(T0 - timedelta(days=1))
    assert purged == 4
    assert sorted(r["id"] for r in store.list_runs()) == ["done-recent", "paused-odd", "running-old"]
    assert store.count_tasks() == 6
    assert store.task_logs(store.get_task_by_number("running-old", 1)["id"])
    assert store.purge_tasks(T0 - timedelta(days=1)) == 0


def test_purge_works_in_batches(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import legion.engine.data._runs as runs_module

    monkeypatch.setattr(runs_module, "PURGE_BATCH", 2)
    for i in range(5):
        store.create_run(run_row(f"r{i}", status="succeeded", ended_at=T0))
        store.record(None, [task_row(f"r{i}", 1)])
    assert store.purge_tasks(T0 + timedelta(seconds=1)) == 5
    assert store.list_runs() == []


def test_record_updating_missing_tasks_is_not_found(store: Store) -> None:
    store.create_run(run_row("r1"))
    store.record(None, [task_row("r1", 1)])
    for updates in (
        [{"run_id": "r1", "number": 2, "status": "running"}],
        [{"run_id": "r1", "number": 1, "status": "running"}, {"run_id": "r1", "number": 2, "status": "running"}],
        [{"run_id": "r1", "number": 2}],
    ):
        with pytest.raises(NotFound, match="do not exist"):
            store.record({"id": "r1", "status": "running"}, updates)
    # nothing of the failed calls was written
    assert store.get_task_by_number("r1", 1)["status"] == "queued"
    assert store.get_run("r1")["status"] == "pending"


CANCELED = {"type": "Canceled", "message": "canceled by request", "step": None}


def test_cancel_run_cancels_pending_and_running_runs(store: Store) -> None:
    store.create_run(run_row("pending"))
    store.create_run(run_row("running", status="running", started_at=T0))
    store.record(None, [task_row("running", 1, status="running")])
    before = datetime.now(UTC) - timedelta(seconds=5)
    for run_id in ("pending", "running"):
        assert store.cancel_run(run_id, CANCELED) is True
        run = store.get_run(run_id)
        assert (run["status"], run["error"]) == ("canceled", CANCELED)
        assert run["ended_at"] is not None and run["ended_at"] >= before
    # only the run row changes: the process running the run cancels its tasks
    assert store.get_task_by_number("running", 1)["status"] == "running"
    assert store.get_run("running")["started_at"] == T0


def test_cancel_run_never_overwrites_an_ended_run(store: Store) -> None:
    failure = {"type": "StepFailed", "message": "boom", "step": "a"}
    store.create_run(run_row("done", status="succeeded", output={"ok": True}, ended_at=T0))
    store.create_run(run_row("failed", status="failed", error=failure, ended_at=T0))
    store.create_run(run_row("canceled"))
    assert store.cancel_run("canceled", CANCELED) is True
    first = store.get_run("canceled")
    for run_id in ("done", "failed", "canceled"):
        before = store.get_run(run_id)
        assert store.cancel_run(run_id, {"type": "Canceled", "message": "again", "step": None}) is False
        assert store.get_run(run_id) == before
    assert store.get_run("done")["status"] == "succeeded" and store.get_run("done")["error"] is None
    assert store.get_run("failed")["error"] == failure
    assert store.get_run("canceled") == first
    with pytest.raises(NotFound, match="nope"):
        store.cancel_run("nope", CANCELED)


def test_concurrent_cancels_cancel_once(store: Store, db_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store.create_run(run_row("r1", status="running"))
    others = [Store(db_url) for _ in range(3)]
    try:
        with ThreadPoolExecutor(len(others)) as pool:
            outcomes = list(pool.map(lambda i: others[i].cancel_run("r1", dict(CANCELED, message=f"by {i}")),
                                     range(len(others))))
    finally:
        for other in others:
            other.close()
    assert sorted(outcomes) == [False, False, True]
    winner = outcomes.index(True)
    assert store.get_run("r1")["error"]["message"] == f"by {winner}"


def test_runs_with_id_prefix(store: Store) -> None:
    for run_id in ("abcd-1", "abcd-2", "abce-1", "ABCD-3", "ab%d-4", "ab_d-5", "ab*d-6", "ab[d-7"):
        store.create_run(run_row(run_id))
    assert [r["id"] for r in store.runs_with_id_prefix("abcd")] == ["abcd-1", "abcd-2"]
    assert [r["id"] for r in store.runs_with_id_prefix("abcd-2")] == ["abcd-2"]
    assert [r["id"] for r in store.runs_with_id_prefix("ABCD")] == ["ABCD-3"]  # case-sensitive everywhere
    assert store.runs_with_id_prefix("abcf") == []
    # LIKE and GLOB wildcards in the prefix are plain characters.
    for wild, only in (("ab%", "ab%d-4"), ("ab_", "ab_d-5"), ("ab*", "ab*d-6"), ("ab[", "ab[d-7")):
        assert [r["id"] for r in store.runs_with_id_prefix(wild)] == [only]
    assert len(store.runs_with_id_prefix("ab", limit=3)) == 3
    row = store.runs_with_id_prefix("abce")[0]
    assert set(row) == {"id", "chain_name", "status", "created_at"} and row["chain_name"] == "alpha"
