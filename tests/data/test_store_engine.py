"""The embedded runtime over each database: the same chains, the same records."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from conformance_order import output_matches

from legion.dsl.loader import load_file
from legion.dsl.model import Rehearsal
from legion.engine.chains import apply_items, load_chains
from legion.engine.data import Store
from legion.engine.registry import Registry
from legion.engine.runtime import Engine

REGISTRY = Registry.discover()
CONFORMANCE = Path(os.environ["LEGION_CONFORMANCE"])
UNMOCKED = ["join-all-success", "for-each-concurrency", "for-each", "sub-chain", "cycle", "core-util", "split"]


def test_conformance_chains_run_on_every_database(store: Store) -> None:
    files, _ = load_chains([CONFORMANCE / "chains"], REGISTRY)
    store.apply_chains(apply_items(files))
    with Engine(REGISTRY, store, workers=3) as engine:
        for name in UNMOCKED:
            rehearsal = Rehearsal.model_validate(load_file(CONFORMANCE / "rehearsals" / f"{name}.yaml").data)
            assert not rehearsal.mocks, name  # the runtime has no mocks: only unmocked rehearsals here
            chain = load_file((CONFORMANCE / "rehearsals" / str(rehearsal.chain)).resolve()).data["chain"]
            run = engine.wait(engine.submit(chain, dict(rehearsal.input)), 30)
            assert run["status"] == rehearsal.expect.status, (name, run["error"])
            if "output" in rehearsal.expect.model_fields_set:
                assert output_matches(name, run["output"], rehearsal.expect.output), (name, run["output"])
            tasks = store.run_tasks(run["id"])
            assert Counter(t["step"] for t in tasks) == Counter(rehearsal.expect.sequence), name
            assert all(t["finished_at"] is not None for t in tasks), name


def test_retries_and_logs_are_recorded_on_every_database(store: Store, tmp_path: Path) -> None:
    (tmp_path / "flaky.yaml").write_text(
        "chain: flaky\nsteps:\n  call:\n    run: core.util.fail\n    with: {message: 'no luck'}\n"
        "    retry: {count: 1, delay: 50ms, jitter: false}\n"
    )
    files, _ = load_chains([tmp_path], REGISTRY)
    store.apply_chains(apply_items(files))
    with Engine(REGISTRY, store, workers=1) as engine:
        run = engine.wait(engine.submit("flaky", {}), 10)
    assert run["status"] == "failed" and run["error"]["type"] == "Failure"
    tasks = store.run_tasks(run["id"])
    assert [(t["attempt"], t["status"]) for t in tasks] == [(1, "failed"), (2, "failed")]
    messages = [e["message"] for e in store.task_logs(tasks[0]["id"])]
    assert messages[0] == "attempt 1 failed: Failure: no luck" and messages[1].startswith("attempt 2 in ")
