"""Item 9: the reaper finishes every unfinished task of a run whose process is gone.

`legion run cancel` marks a run canceled at once; the process running it then stops its
tasks. When that process dies first, the run is canceled but a task stays `running` forever,
and the reaper (which looked at runs still pending or running only) never saw it. Now any
run of this host whose process is gone has its queued, delayed and running tasks canceled
with an `Interrupted` error; a run that ended keeps its status, a running one fails.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from datetime import timedelta
from typing import Any

import pytest

from legion.engine.data.store import Store
from legion.engine.data.types import utcnow
from legion.engine.registry import Registry
from legion.engine.runtime import Engine

pytest_plugins = ["security_databases"]  # clean_store: on SQLite, PostgreSQL and MariaDB


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.discover()


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The id of a process of this host that has ended (and been waited for: no zombie)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def reap(registry: Registry, store: Store) -> list[str]:
    engine = Engine(registry, store, workers=1)
    try:
        return engine.reap_interrupted()
    finally:
        engine.recorder.close()


def make_run(store: Store, node: str, status: str, tasks: dict[str, str]) -> str:
    """A run of `node` ("host:pid") in `status`, with one task per step in the given status."""
    run_id = str(uuid.uuid4())
    now = utcnow()
    ended = status in ("succeeded", "failed", "canceled")
    error = {"type": "Canceled", "message": "canceled by request", "step": None} if status == "canceled" else None
    store.create_run({"id": run_id, "chain_name": "slow", "chain_version": 1, "status": status, "node": node,
                      "started_at": now - timedelta(seconds=5), "ended_at": now if ended else None, "error": error})
    store.record(None, [
        {"run_id": run_id, "number": number, "step": step, "function": "core.util.sleep", "status": task_status,
         "started_at": now - timedelta(seconds=4) if task_status != "queued" else None,
         "finished_at": now if task_status == "succeeded" else None}
        for number, (step, task_status) in enumerate(tasks.items(), start=1)
    ])
    return run_id


def by_step(store: Store, run_id: str) -> dict[str, dict[str, Any]]:
    return {t["step"]: t for t in store.run_tasks(run_id)}


def test_item9_a_canceled_run_of_a_dead_process_gets_its_running_task_canceled(
        registry: Registry, clean_store: Store, dead_pid: int) -> None:
    node = f"{socket.gethostname()}:{dead_pid}"
    run_id = make_run(clean_store, node, "canceled", {"nap": "running"})
    before = clean_store.get_run(run_id)

    assert reap(registry, clean_store) == [run_id]

    run = clean_store.get_run(run_id)
    assert run["status"] == "canceled" and run["error"] == before["error"]  # the run keeps its status and error
    assert run["ended_at"] == before["ended_at"]
    task = by_step(clean_store, run_id)["nap"]
    assert task["status"] == "canceled" and task["finished_at"] is not None
    assert task["error"]["type"] == "Interrupted" and task["error"]["step"] == "nap"
    assert f"process running it ({node}) stopped" in task["error"]["message"]
    assert reap(registry, clean_store) == []  # nothing is left to finish


@pytest.mark.parametrize("status", ["failed", "succeeded"])
def test_item9_any_ended_run_keeps_its_status_and_loses_its_leftover_tasks(
        registry: Registry, clean_store: Store, dead_pid: int, status: str) -> None:
    run_id = make_run(clean_store, f"{socket.gethostname()}:{dead_pid}", status,
                      {"done": "succeeded", "waiting": "delayed", "next": "queued"})

    assert reap(registry, clean_store) == [run_id]

    assert clean_store.get_run(run_id)["status"] == status
    tasks = by_step(clean_store, run_id)
    assert {step: t["status"] for step, t in tasks.items()} == {"done": "succeeded", "waiting": "canceled", "next": "canceled"}
    assert tasks["done"]["error"] is None
    assert {tasks[s]["error"]["type"] for s in ("waiting", "next")} == {"Interrupted"}


def test_item9_a_running_run_of_a_dead_process_fails_interrupted(registry: Registry, clean_store: Store, dead_pid: int) -> None:
    node = f"{socket.gethostname()}:{dead_pid}"
    run_id = make_run(clean_store, node, "running",
                      {"done": "succeeded", "nap": "running", "waiting": "delayed", "next": "queued"})

    assert reap(registry, clean_store) == [run_id]

    run = clean_store.get_run(run_id)
    assert run["status"] == "failed" and run["error"]["type"] == "Interrupted" and run["ended_at"] is not None
    assert f"({node}) stopped before the run ended" in run["error"]["message"]
    statuses = {step: t["status"] for step, t in by_step(clean_store, run_id).items()}
    assert statuses == {"done": "succeeded", "nap": "canceled", "waiting": "canceled", "next": "canceled"}


def test_item9_runs_of_a_live_process_or_of_another_host_are_left_alone(
        registry: Registry, clean_store: Store, dead_pid: int) -> None:
    here = socket.gethostname()
    mine = make_run(clean_store, f"{here}:{os.getpid()}", "canceled", {"nap": "running"})  # its process is stopping it
    parent = make_run(clean_store, f"{here}:{os.getppid()}", "running", {"nap": "running"})
    elsewhere = make_run(clean_store, f"not-{here}:{dead_pid}", "canceled", {"nap": "running"})

    assert reap(registry, clean_store) == []

    for run_id, status in ((mine, "canceled"), (parent, "running"), (elsewhere, "canceled")):
        assert clean_store.get_run(run_id)["status"] == status
        assert by_step(clean_store, run_id)["nap"]["status"] == "running"


def test_item9_a_node_whose_pid_no_process_can_have_is_gone(registry: Registry, clean_store: Store) -> None:
    # A corrupt row must not stop every engine of the host from starting (os.kill overflowed).
    run_id = make_run(clean_store, f"{socket.gethostname()}:99999999999999999999", "canceled", {"nap": "running"})
    assert reap(registry, clean_store) == [run_id]
    assert by_step(clean_store, run_id)["nap"]["status"] == "canceled"
