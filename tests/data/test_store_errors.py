"""Bad values are BadInput with a sentence saying what was wrong, on every backend; a database
that cannot serve is ServiceUnavailable."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import legion.engine.data.connect as connect_module
from legion.engine.data import Store
from legion.engine.errors import BadInput, NotFound, ServiceUnavailable


def run_row(run_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": run_id, "chain_name": "alpha", "chain_version": 1, **extra}


def task_row(run_id: str, number: int, **extra: Any) -> dict[str, Any]:
    return {"run_id": run_id, "number": number, "step": f"s{number}", "function": "core.util.echo", **extra}


def bad_input(call: Any) -> BadInput:
    """The BadInput `call` raises, which is not a NotFound in disguise."""
    with pytest.raises(BadInput) as caught:
        call()
    assert not isinstance(caught.value, NotFound), caught.value
    assert caught.value.exit_code == 2
    return caught.value


def test_ids_out_of_range_are_bad_input(store: Store) -> None:
    # SQLite's driver raises OverflowError, PostgreSQL "bigint out of range", MariaDB finds nothing
    with pytest.raises(BadInput):
        store.get_task(99999999999999999999)
    store.create_run(run_row("r1"))
    error = bad_input(lambda: store.record(None, [task_row("r1", 2**70)]))
    assert "out of range" in error.message.lower()
    bad_input(lambda: store.record(None, [task_row("r1", 1, attempt=2**70)]))
    assert store.count_tasks() == 0


@pytest.mark.parametrize("method", ["list_runs", "list_tasks"])
def test_negative_limits_are_bad_input_everywhere(store: Store, method: str) -> None:
    # SQLite would read -1 as "no limit", PostgreSQL refuses it, MariaDB calls it a syntax error
    error = bad_input(lambda: getattr(store, method)(limit=-1))
    assert "limit" in error.message and "-1" in error.message
    assert getattr(store, method)(limit=0) == []


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, {"x": [1, math.nan]}])
def test_json_has_no_nan_or_infinity_on_any_backend(store: Store, value: Any) -> None:
    error = bad_input(lambda: store.create_run(run_row("r1", input=value)))
    assert "NaN" in error.message
    store.create_run(run_row("r2"))
    bad_input(lambda: store.update_run("r2", output=value))
    bad_input(lambda: store.record({"id": "r2", "state": value}, []))
    bad_input(lambda: store.record(None, [task_row("r2", 1, result=value)]))
    assert store.get_run("r2")["output"] is None and store.count_tasks() == 0
    with pytest.raises(NotFound):
        store.get_run("r1")


def test_values_json_has_no_form_for_are_bad_input(store: Store) -> None:
    store.create_run(run_row("r1"))
    error = bad_input(lambda: store.record(None, [task_row("r1", 1, result={"when": object()})]))
    assert "JSON" in error.message


def test_lone_surrogates_are_bad_input(store: Store, backend: str) -> None:
    store.create_run(run_row("r1"))
    error = bad_input(lambda: store.record(None, [task_row("r1", 1, node="a\ud800b")]))
    assert "UTF-8" in error.message
    bad_input(lambda: store.update_run("r1", node="\udfff"))
    assert store.count_tasks() == 0
    # in JSON one is an escape (\ud800): MariaDB's JSON check refuses it, the others keep it
    if backend == "mariadb":
        error = bad_input(lambda: store.record(None, [task_row("r1", 1, result="\ud800")]))
        assert "JSON" in error.message
    else:
        store.record(None, [task_row("r1", 1, result="\ud800")])
        assert store.get_task_by_number("r1", 1)["result"] == "\ud800"


def test_nul_in_text_is_bad_input_where_the_database_cannot_hold_it(store: Store, backend: str) -> None:
    store.create_run(run_row("r1"))
    store.record(None, [task_row("r1", 1)])
    entry = {"run_id": "r1", "number": 1, "level": "info", "message": "a\x00b"}
    if backend == "postgresql":
        error = bad_input(lambda: store.record(None, [], [entry]))
        assert "NUL" in error.message
        bad_input(lambda: store.record(None, [task_row("r1", 2, node="n\x00")]))
        assert store.count_tasks() == 1
    else:
        store.record(None, [task_row("r1", 2, node="n\x00")], [entry])
        assert store.get_task_by_number("r1", 2)["node"] == "n\x00"
        assert store.task_logs(store.get_task_by_number("r1", 1)["id"])[0]["message"] == "a\x00b"
    # inside JSON a NUL is an escape (\u0000), which every backend keeps
    store.record(None, [task_row("r1", 3, result={"s": "a\x00b"})])
    assert store.get_task_by_number("r1", 3)["result"] == {"s": "a\x00b"}


def test_too_long_text_is_bad_input_where_the_database_checks_it(store: Store, backend: str) -> None:
    store.create_run(run_row("r1"))
    if backend == "sqlite":  # SQLite does not enforce VARCHAR lengths
        store.update_run("r1", node="x" * 1000)
    else:
        error = bad_input(lambda: store.update_run("r1", node="x" * 1000))
        assert "long" in error.message
        assert store.get_run("r1")["node"] is None


def test_a_missing_required_field_is_bad_input_not_a_missing_run(store: Store) -> None:
    store.create_run(run_row("r1"))
    error = bad_input(lambda: store.record(None, [task_row("r1", 1, status=None)]))
    assert "required field" in error.message
    bad_input(lambda: store.update_run("r1", chain_name=None))
    # a task whose run does not exist is still NotFound
    with pytest.raises(NotFound, match="run does not exist"):
        store.record(None, [task_row("nope", 1)])
    assert store.count_tasks() == 0


def test_database_is_locked_is_service_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "legion.db"
    Store(f"sqlite:///{path}").close()
    monkeypatch.setattr(connect_module, "SQLITE_BUSY_TIMEOUT_MS", 100)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        with Store(f"sqlite:///{path}") as store:
            holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            with pytest.raises(ServiceUnavailable, match="locked") as caught:
                store.create_run(run_row("r1"))
            assert caught.value.exit_code == 3
            holder.execute("ROLLBACK")
            store.create_run(run_row("r1"))  # the store is fine once the lock is gone
            assert store.get_run("r1")["status"] == "pending"
    finally:
        holder.close()
