"""The recorder: batches on the happy path; one bad row never costs the other rows of a batch;
`flush()` returns only once what was handed over is committed (and says when it was not)."""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from services import SERVER_URLS, unreachable
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from legion.engine import recorder as recorder_module
from legion.engine.data import Store
from legion.engine.errors import BadInput, NotFound, ServiceUnavailable
from legion.engine.recorder import Recorder, scrub


def task_row(run_id: str, number: int, **extra: Any) -> dict[str, Any]:
    return {"run_id": run_id, "number": number, "step": f"s{number}", "function": "core.util.echo", **extra}


def log_entry(run_id: str, number: int, message: str) -> dict[str, Any]:
    return {"run_id": run_id, "number": number, "level": "info", "message": message, "data": None}


def batched(store: Any, **options: Any) -> Recorder:
    """A recorder whose writer waits for flush(): everything handed over before is one batch."""
    return Recorder(store, interval=3600, **options)


class FakeStore:
    """Keeps what it is given; `reject(row)` says why a row is refused (a BadInput), if it is."""

    def __init__(self, reject: Any = None, down: int = 0) -> None:
        self.reject = reject or (lambda row: None)
        self.down = down  # the next `down` calls fail with ServiceUnavailable
        self.calls: list[tuple[Any, list[Any], list[Any]]] = []
        self.tasks: dict[tuple[str, int], dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.logs: list[dict[str, Any]] = []

    def record(self, run: Any, tasks: list[Any], logs: list[Any] | None = None) -> None:
        self.calls.append((run, list(tasks), list(logs or [])))
        if self.down:
            self.down -= 1
            raise ServiceUnavailable("The database at x failed: connection lost. Nothing was changed; retry.")
        runs = [] if run is None else [run] if isinstance(run, dict) else list(run)
        for row in [*runs, *tasks, *(logs or [])]:
            if row is not None and (problem := self.reject(row)):
                raise BadInput(problem)
        for task in tasks:
            self.tasks.setdefault((task["run_id"], task["number"]), {}).update(task)
        for row in runs:
            self.runs.setdefault(row["id"], {}).update(row)
        self.logs.extend(logs or [])


def has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_nul(v) for v in value)
    return False


def refuses_nul(row: dict[str, Any]) -> str | None:
    return "NUL in text" if has_nul(row) else None


# -- scrub --------------------------------------------------------------------------------------


def test_scrub_replaces_only_what_databases_refuse() -> None:
    when = object()
    value = {
        "s": "a\x00b\ud800c", "ok": "wörld ✓ 😀", "n": [1, 2.5, math.nan, -math.inf, math.inf, True, None],
        "nested": ({"k\x00": "v"},), "when": when,
    }
    assert scrub(value) == {
        "s": "a\ufffdb\ufffdc", "ok": "wörld ✓ 😀", "n": [1, 2.5, None, None, None, True, None],
        "nested": [{"k\ufffd": "v"}], "when": when,
    }
    assert value["s"] == "a\x00b\ud800c"  # the input is left as it was
    assert scrub(math.nan) is None and scrub("plain") == "plain" and scrub(7) == 7


# -- batching and the happy path ----------------------------------------------------------------


def test_a_good_batch_is_one_transaction_and_not_scrubbed() -> None:
    store = FakeStore()
    recorder = batched(store)
    rows = [task_row("r1", n, result={"x": "a\x00b"}) for n in range(1, 4)]
    for row in rows:
        recorder.task(row)
    recorder.task({"run_id": "r1", "number": 2, "status": "succeeded"})  # merged into row 2
    recorder.run({"id": "r1", "status": "succeeded"})
    recorder.log(log_entry("r1", 1, "hello"))
    assert recorder.flush() is True
    assert len(store.calls) == 1
    run, tasks, logs = store.calls[0]
    assert run == [{"id": "r1", "status": "succeeded"}] and len(tasks) == 3 and len(logs) == 1
    assert tasks[0]["result"]["x"] == "a\x00b"  # written as handed over
    assert store.tasks[("r1", 2)]["status"] == "succeeded"
    assert recorder.dropped == 0
    recorder.close()


def test_flush_with_nothing_handed_over_returns_at_once() -> None:
    recorder = batched(FakeStore())
    started = time.monotonic()
    assert recorder.flush() is True
    assert time.monotonic() - started < 1
    recorder.close()


# -- one bad row ----------------------------------------------------------------------------------


def test_a_bad_row_is_scrubbed_and_the_other_runs_rows_are_written(caplog: pytest.LogCaptureFixture) -> None:
    store = FakeStore(reject=refuses_nul)
    recorder = batched(store)
    recorder.task(task_row("good", 1, result=[1]))
    recorder.task(task_row("bad", 1, result={"s": "a\x00b"}))
    recorder.task(task_row("good", 2))
    recorder.run({"id": "bad", "status": "failed", "error": {"message": "x\x00y"}})
    recorder.run({"id": "good", "status": "succeeded"})
    recorder.log(log_entry("good", 1, "fine"))
    recorder.log(log_entry("bad", 1, "not\x00fine"))
    with caplog.at_level(logging.WARNING, logger="legion.recorder"):
        assert recorder.flush() is True
    assert store.tasks[("good", 1)]["result"] == [1] and ("good", 2) in store.tasks
    assert store.tasks[("bad", 1)]["result"] == {"s": "a\ufffdb"}
    assert store.runs == {"bad": {"id": "bad", "status": "failed", "error": {"message": "x\ufffdy"}},
                          "good": {"id": "good", "status": "succeeded"}}
    assert [e["message"] for e in store.logs] == ["fine", "not\ufffdfine"]
    assert recorder.dropped == 0
    assert "writing them one by one" in caplog.text and "scrubbed" in caplog.text
    recorder.close()


def test_items_are_written_in_order_tasks_then_runs_then_logs() -> None:
    store = FakeStore(reject=refuses_nul)
    recorder = batched(store)
    recorder.log(log_entry("r1", 1, "x"))
    recorder.run({"id": "r1", "status": "succeeded"})
    recorder.task(task_row("r1", 1, node="\x00"))
    recorder.flush()
    single = [c for c in store.calls[1:]]
    kinds = ["run" if run else "task" if tasks else "log" for run, tasks, _ in single]
    assert kinds == ["task", "task", "run", "log"]  # the bad task twice: as it was, then scrubbed
    recorder.close()


def test_a_row_that_fails_even_scrubbed_is_dropped_loudly(caplog: pytest.LogCaptureFixture) -> None:
    store = FakeStore(reject=lambda row: "no such step run" if row.get("number") == 7 else None)
    recorder = batched(store)
    recorder.task(task_row("r1", 1))
    recorder.task(task_row("r1", 7))
    recorder.task(task_row("r2", 1))
    recorder.run({"id": "r2", "status": "succeeded"})
    with caplog.at_level(logging.WARNING, logger="legion.recorder"):
        assert recorder.flush() is False
    assert set(store.tasks) == {("r1", 1), ("r2", 1)}
    assert store.runs["r2"]["status"] == "succeeded"
    assert recorder.dropped == 1
    dropped = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(dropped) == 1 and "step run 7 of run r1" in dropped[0].getMessage()
    assert "no such step run" in dropped[0].getMessage()
    # the next batch is fine again
    recorder.task(task_row("r1", 2))
    assert recorder.flush() is True
    recorder.close()


def test_a_bad_run_row_is_scrubbed_on_its_own() -> None:
    store = FakeStore(reject=refuses_nul)
    recorder = batched(store)
    recorder.run({"id": "r1", "status": "succeeded"})
    recorder.run({"id": "r2", "status": "failed", "error": {"message": "\x00"}})
    recorder.run({"id": "r3", "status": "succeeded"})
    recorder.task(task_row("r1", 1))
    assert recorder.flush() is True
    assert {k: v["status"] for k, v in store.runs.items()} == {"r1": "succeeded", "r2": "failed", "r3": "succeeded"}
    assert store.runs["r2"]["error"] == {"message": "\ufffd"}
    # the batch was tried in one transaction (every run with the tasks), then row by row
    assert len(store.calls[0][1]) == 1 and [r["id"] for r in store.calls[0][0]] == ["r1", "r2", "r3"]
    recorder.close()


# -- the database unavailable ---------------------------------------------------------------------


def test_a_transient_failure_retries_the_batch_whole() -> None:
    store = FakeStore(down=1)
    recorder = batched(store, retry_delays=(0.01,))
    for n in range(1, 6):
        recorder.task(task_row("r1", n))
    assert recorder.flush() is True
    assert len(store.calls) == 2 and len(store.calls[1][1]) == 5
    assert len(store.tasks) == 5
    recorder.close()


def test_a_database_that_stays_down_drops_the_batch_without_trying_every_row(caplog: pytest.LogCaptureFixture) -> None:
    store = FakeStore(down=10**6)
    recorder = batched(store, retry_delays=(0.01,))
    for n in range(1, 101):
        recorder.task(task_row(f"r{n % 3}", n))
    with caplog.at_level(logging.WARNING, logger="legion.recorder"):
        assert recorder.flush() is False
    assert recorder.dropped == 100
    assert len(store.calls) <= 2 + 2 * recorder_module.DOWN_AFTER
    assert "the database is unavailable" in caplog.text and "r0, r1, r2" in caplog.text
    store.down = 0  # back up: later batches are written again
    recorder.task(task_row("r1", 200))
    assert recorder.flush() is True and ("r1", 200) in store.tasks
    recorder.close()


# -- flush ----------------------------------------------------------------------------------------


class SlowStore(FakeStore):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def record(self, run: Any, tasks: list[Any], logs: list[Any] | None = None) -> None:
        self.release.wait(10)
        super().record(run, tasks, logs)


def test_flush_returns_only_after_the_rows_are_committed() -> None:
    store = SlowStore()
    recorder = Recorder(store)
    recorder.task(task_row("r1", 1))
    recorder.run({"id": "r1", "status": "succeeded"})
    outcome: list[bool] = []
    flusher = threading.Thread(target=lambda: outcome.append(recorder.flush()))
    flusher.start()
    time.sleep(0.2)
    assert flusher.is_alive() and not store.tasks  # still being written: flush waits
    store.release.set()
    flusher.join(5)
    assert outcome == [True]
    assert ("r1", 1) in store.tasks and store.runs["r1"]["status"] == "succeeded"
    recorder.close()


def test_a_flush_waits_for_a_state_handed_over_while_an_older_snapshot_is_taken() -> None:
    """A run's final state handed over while the writer takes an older snapshot of it (the
    writer's batch already begun): flush returns only once the final state is written, so a
    parent told that its sub-chain ended reads the ended state."""

    class Gated(FakeStore):  # every write after the first waits for `gate`
        def __init__(self) -> None:
            super().__init__()
            self.gate = threading.Event()

        def record(self, run: Any, tasks: list[Any], logs: list[Any] | None = None) -> None:
            if self.calls:
                self.gate.wait(10)
            super().record(run, tasks, logs)

    store = Gated()
    recorder = Recorder(store)
    taking, go_on = threading.Event(), threading.Event()
    version = {"n": 1}

    def snapshot() -> dict[str, Any]:
        seen = version["n"]
        if seen == 1:
            taking.set()
            go_on.wait(5)
        return {"n": seen}

    recorder.state("r1", snapshot)
    assert taking.wait(5)  # the writer took its batch and is taking the old snapshot
    version["n"] = 2
    recorder.run({"id": "r1", "status": "succeeded"})
    recorder.state("r1", snapshot)  # the final state, handed over now
    done: list[tuple[bool, dict[str, Any]]] = []
    flusher = threading.Thread(target=lambda: done.append((recorder.flush(10), dict(store.runs.get("r1", {})))))
    flusher.start()
    go_on.set()
    flusher.join(0.5)
    assert flusher.is_alive() and store.runs["r1"]["state"] == {"n": 1}  # the older batch is written; flush still waits
    store.gate.set()
    flusher.join(10)
    assert done == [(True, {"id": "r1", "status": "succeeded", "state": {"n": 2}})]
    recorder.close()


def test_flush_that_times_out_says_so(caplog: pytest.LogCaptureFixture) -> None:
    store = SlowStore()
    recorder = Recorder(store)
    recorder.task(task_row("r1", 1))
    with caplog.at_level(logging.WARNING, logger="legion.recorder"):
        assert recorder.flush(timeout=0.1) is False
    assert "did not write everything" in caplog.text
    store.release.set()
    assert recorder.flush() is True
    recorder.close()


def test_a_broken_store_does_not_stop_the_writer() -> None:
    class Broken:
        def record(self, *args: Any) -> None:
            raise RuntimeError("bug")

    recorder = batched(Broken())
    recorder.task(task_row("r1", 1))
    assert recorder.flush(timeout=5) is False
    recorder.task(task_row("r1", 2))
    assert recorder.flush(timeout=5) is False
    assert recorder.dropped == 2
    recorder.close()


# -- with a real store ----------------------------------------------------------------------------


def server_database(backend: str) -> Iterator[str]:
    """A throwaway database on the server, dropped afterwards."""
    base = make_url(SERVER_URLS[backend])
    name = f"legion_test_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            charset = " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" if backend == "mariadb" else ""
            conn.execute(text(f"CREATE DATABASE {name}{charset}"))
    except DBAPIError as exc:
        admin.dispose()
        unreachable(f"{backend} at {SERVER_URLS[backend]} is unreachable: {exc.orig}")
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if backend == "postgresql" else ""
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}{force}"))
        admin.dispose()


@pytest.fixture(params=[
    pytest.param("sqlite"),
    pytest.param("postgresql", marks=pytest.mark.integration),
    pytest.param("mariadb", marks=pytest.mark.integration),
])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[Store]:
    if backend == "sqlite":
        with Store(f"sqlite:///{tmp_path / 'legion.db'}") as store:
            yield store
        return
    for url in server_database(backend):
        with Store(url) as store:
            yield store


class Spy:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls = 0

    def record(self, run: Any, tasks: list[Any], logs: list[Any] | None = None) -> None:
        self.calls += 1
        self.store.record(run, tasks, logs)


def test_a_poisoned_row_is_written_scrubbed_and_the_other_run_is_intact(store: Store, backend: str) -> None:
    for run_id in ("good", "bad"):
        store.create_run({"id": run_id, "chain_name": "alpha", "chain_version": 1, "status": "running"})
    spy = Spy(store)
    recorder = batched(spy)
    recorder.task(task_row("good", 1, status="succeeded", result={"n": 1.5, "s": "ü"}))
    recorder.task(task_row("bad", 1, status="succeeded", result={"s": "a\x00b", "x": math.nan, "keep": [1, "y"]}))
    recorder.task(task_row("good", 2, status="succeeded", node="n1"))
    recorder.task(task_row("bad", 2, status="failed", node="n\x00"))  # NUL in text: PostgreSQL refuses it
    recorder.run({"id": "good", "status": "succeeded", "output": {"ok": True}})
    recorder.run({"id": "bad", "status": "failed", "output": {"v": math.inf}})
    recorder.log(log_entry("good", 1, "fine"))
    recorder.log(log_entry("bad", 1, "not\x00fine"))
    assert recorder.flush() is True
    assert spy.calls > 2  # the batch failed and was written item by item
    # the other run: every row as handed over
    good = store.get_run("good")
    assert (good["status"], good["output"]) == ("succeeded", {"ok": True})
    assert store.get_task_by_number("good", 1)["result"] == {"n": 1.5, "s": "ü"}
    assert store.get_task_by_number("good", 2)["node"] == "n1"
    assert [entry["message"] for entry in store.task_logs(store.get_task_by_number("good", 1)["id"])] == ["fine"]
    # the poisoned rows: written, scrubbed (NaN and infinity refused everywhere, NUL in text by PostgreSQL)
    bad = store.get_run("bad")
    assert (bad["status"], bad["output"]) == ("failed", {"v": None})
    assert store.get_task_by_number("bad", 1)["result"] == {"s": "a\ufffdb", "x": None, "keep": [1, "y"]}
    nul_scrubbed = backend == "postgresql"
    assert store.get_task_by_number("bad", 2)["node"] == ("n\ufffd" if nul_scrubbed else "n\x00")
    messages = [entry["message"] for entry in store.task_logs(store.get_task_by_number("bad", 1)["id"])]
    assert messages == ["not\ufffdfine" if nul_scrubbed else "not\x00fine"]
    assert recorder.dropped == 0
    recorder.close()


def test_a_row_no_database_takes_is_dropped_and_the_rest_is_written(store: Store,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    store.create_run({"id": "r1", "chain_name": "alpha", "chain_version": 1, "status": "running"})
    recorder = batched(store)
    recorder.task(task_row("r1", 1, status="succeeded"))
    recorder.task(task_row("r1", 2, attempt=2**70))  # beyond any integer column
    recorder.task(task_row("missing-run", 1))  # its run was never created
    recorder.run({"id": "r1", "status": "succeeded"})
    with caplog.at_level(logging.WARNING, logger="legion.recorder"):
        assert recorder.flush() is False
    # A run that lost a row is never recorded as succeeded: it failed, saying which row.
    r1 = store.get_run("r1")
    assert r1["status"] == "failed" and r1["error"]["type"] == "RecordLost"
    assert "step run 2 of run r1" in r1["error"]["message"]
    assert store.get_task_by_number("r1", 1)["status"] == "succeeded"
    with pytest.raises(NotFound):
        store.get_task_by_number("r1", 2)
    assert recorder.dropped == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "step run 2 of run r1" in errors[0] and "step run 1 of run missing-run" in errors[1]
    recorder.close()


def test_the_happy_path_is_one_call_on_a_real_store(store: Store) -> None:
    store.create_run({"id": "r1", "chain_name": "alpha", "chain_version": 1, "status": "running"})
    spy = Spy(store)
    recorder = batched(spy)
    for n in range(1, 51):
        recorder.task(task_row("r1", n, status="succeeded", result=n))
    recorder.log(log_entry("r1", 1, "one"))
    recorder.run({"id": "r1", "status": "succeeded"})
    assert recorder.flush() is True
    assert spy.calls == 1
    assert store.count_tasks("r1") == 50 and store.get_run("r1")["status"] == "succeeded"
    recorder.close()
