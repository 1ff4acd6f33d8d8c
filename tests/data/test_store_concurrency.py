"""Several writers at once, as with several worker processes on one database."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from legion.engine.data import Store
from legion.engine.errors import Conflict


def test_concurrent_records_all_land(store: Store, db_url: str) -> None:
    # separate Store objects = separate pools, like separate processes
    others = [Store(db_url) for _ in range(3)]
    writers = [store, *others]
    for w in range(len(writers)):
        store.create_run({"id": f"run-{w}", "chain_name": "alpha", "chain_version": 1})

    def work(w: int) -> None:
        writer, run_id = writers[w], f"run-{w}"
        for n in range(1, 41):
            writer.record({"id": run_id, "status": "running"},
                          [{"run_id": run_id, "number": n, "step": "s", "function": "core.util.echo"}])
            writer.record(None, [{"run_id": run_id, "number": n, "status": "succeeded", "result": n}])

    try:
        with ThreadPoolExecutor(len(writers)) as pool:
            list(pool.map(work, range(len(writers))))
    finally:
        for other in others:
            other.close()
    assert store.count_tasks() == 40 * len(writers)
    assert {t["status"] for t in store.list_tasks(limit=1000)} == {"succeeded"}


def test_concurrent_applies_of_one_chain_store_one_version(store: Store, db_url: str, chain_item: Any) -> None:
    others = [Store(db_url) for _ in range(3)]
    writers = [store, *others]

    def apply(w: int) -> str:
        try:
            return writers[w].apply_chains([chain_item("alpha")])[0]["action"]
        except Conflict:
            return "conflict"

    try:
        with ThreadPoolExecutor(len(writers)) as pool:
            outcomes = list(pool.map(apply, range(len(writers))))
    finally:
        for other in others:
            other.close()
    assert outcomes.count("created") == 1
    assert set(outcomes) <= {"created", "unchanged", "conflict"}
    assert [h["version"] for h in store.chain_history("alpha")] == [1]
