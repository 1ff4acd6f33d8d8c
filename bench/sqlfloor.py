"""The database floor of Legion's RabbitMQ runtime: the statements it issues per run and per
step on PostgreSQL, issued by a bare psycopg loop, with no engine, no broker and no Python but
the driver's. What Legion's runtime cannot beat while it keeps its records the way it does.

    .venv/bin/python bench/sqlfloor.py [--quick] [--json]

A fresh database (tests/services.py; LEGION_TEST_POSTGRES_URL) with Legion's own schema (its
migrations, through `Store`), dropped at the end. The state written is a real run's core (the
conductor's, after the start of a two-step chain). Connections keep prepared statements, as
Legion's pooled ones do.

(f1) Single runs. One thread starts N runs one after another as `legion chain run` does: one
     transaction whose commit waits for the disk, inserting the run's row (with its state), its
     first task row and its outbox row. Each started run is handed to 8 threads (Legion's 2
     worker processes x 4 threads) over a queue, in place of the broker; one claims the task
     row (one statement, autocommit, as `DurableStore.claim_step`) and finishes the run (one
     transaction that does not wait for the disk: the run's row locked, the task row finished,
     the run's row ended with its state). Runs/s from the first start to the last finish, and
     starts/s alone.
(f2) Steps of 5 concurrent 100-step chains, a thread each: per step the claim and one
     transaction (the run's row locked, the task row finished, the next one inserted queued,
     the run's state written, one outbox row inserted).

Legion also reads what it needs back, renders templates, keeps leases, deletes outbox rows, and
talks to RabbitMQ; none of that is here.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
import uuid
from typing import Any

from report import heading, rate, run_main, table

CHAINS = 5
CHAIN_STEPS = 100
WORKER_THREADS = 8  # Legion's bench: 2 worker processes x 4 threads

START_RUN = ("INSERT INTO runs (id, chain_name, chain_version, status, input, state, depth, trigger, created_at, started_at, node, revision)"
             " VALUES (%s, 'floor', 1, 'running', '{}'::json, %s::json, 0, 'manual', now(), now(), 'bench', 1)")
QUEUE_TASK = ("INSERT INTO tasks (run_id, number, step, function, status, attempt, queued_at, claims)"
              " VALUES (%s, %s, 'step', 'core.util.noop', 'queued', 1, now(), 0)")
OUTBOX = "INSERT INTO outbox (run_id, message, created_at) VALUES (%s, %s::json, now()) RETURNING id"
CLAIM = ("UPDATE tasks SET status = 'running', node = 'bench', started_at = now(), args = '{}'::json,"
         " lease_until = now() + interval '30 seconds', claims = claims + 1"
         " WHERE run_id = %s AND number = %s AND status = 'queued' AND claims < 3"
         " AND EXISTS (SELECT 1 FROM runs WHERE id = %s AND status = 'running')"
         " RETURNING set_config('synchronous_commit', 'off', true)")
LOCK = "SELECT status, revision, set_config('synchronous_commit', 'off', true) FROM runs WHERE id = %s FOR UPDATE"
FINISH_TASK = ("UPDATE tasks SET status = 'succeeded', result = 'null'::json, finished_at = now(), lease_until = NULL"
               " WHERE run_id = %s AND number = %s")
KEEP_STATE = "UPDATE runs SET state = %s::json, revision = revision + 1 WHERE id = %s"
END_RUN = "UPDATE runs SET status = 'succeeded', state = %s::json, ended_at = now(), revision = revision + 1 WHERE id = %s"


def real_core() -> str:
    """The JSON of a run's core as the conductor leaves it after starting a two-step chain."""
    from legion.dsl.model import Chain
    from legion.engine.conductor import ChainProgram, Conductor
    from legion.engine.runstate import RunState

    chain = Chain.model_validate({"chain": "floor", "steps": {
        "first": {"run": "core.util.noop", "next": [{"do": ["second"]}]}, "second": {"run": "core.util.noop"}}})
    state = RunState.new(str(uuid.uuid4()), "floor", 1, time.time(), {})
    Conductor(ChainProgram(chain), state).start(time.time())
    return json.dumps(state.core(), separators=(",", ":"))


def message(run_id: str, number: int) -> str:
    return json.dumps({"kind": "step", "run_id": run_id, "number": number, "function": "core.util.noop", "priority": 0})


def connect(dsn: str) -> Any:
    import psycopg

    conn = psycopg.connect(dsn)
    conn.prepare_threshold = 0  # prepared from the first use, as a warmed-up pool's are
    return conn


def claim(conn: Any, run_id: str, number: int) -> None:
    conn.autocommit = True
    if conn.execute(CLAIM, (run_id, number, run_id)).fetchone() is None:
        raise RuntimeError(f"step {number} of run {run_id} could not be claimed")
    conn.autocommit = False


def singles(dsn: str, n: int, state: str) -> dict[str, Any]:
    """(f1) n runs started one after another and finished by WORKER_THREADS threads."""
    started: queue.Queue[str | None] = queue.Queue()
    finished: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        with connect(dsn) as conn:
            while (run_id := started.get()) is not None:
                claim(conn, run_id, 1)
                conn.execute(LOCK, (run_id,))
                conn.execute(FINISH_TASK, (run_id, 1))
                conn.execute(END_RUN, (state, run_id))
                conn.commit()
                with lock:
                    finished.append(time.perf_counter())

    threads = [threading.Thread(target=worker) for _ in range(WORKER_THREADS)]
    for t in threads:
        t.start()
    with connect(dsn) as conn:
        t0 = time.perf_counter()
        for _ in range(n):
            run_id = str(uuid.uuid4())
            conn.execute(START_RUN, (run_id, state))  # commits wait for the disk (the server's default)
            conn.execute(QUEUE_TASK, (run_id, 1))
            conn.execute(OUTBOX, (run_id, message(run_id, 1)))
            conn.commit()
            started.put(run_id)
        sent = time.perf_counter()
    for _ in threads:
        started.put(None)
    for t in threads:
        t.join()
    if len(finished) != n:
        raise RuntimeError(f"{len(finished)} of {n} runs finished")
    return {"runs_per_s": n / (max(finished) - t0), "start_per_s": n / (sent - t0)}


def chains(dsn: str, count: int, steps: int, state: str) -> dict[str, Any]:
    """(f2) `count` chains of `steps` steps at once, one thread each."""
    errors: list[BaseException] = []

    def chain() -> None:
        try:
            with connect(dsn) as conn:
                run_id = str(uuid.uuid4())
                conn.execute(START_RUN, (run_id, state))
                conn.execute(QUEUE_TASK, (run_id, 1))
                conn.commit()
                go.wait()
                for number in range(1, steps + 1):
                    claim(conn, run_id, number)
                    conn.execute(LOCK, (run_id,))
                    conn.execute(FINISH_TASK, (run_id, number))
                    conn.execute(QUEUE_TASK, (run_id, number + 1))
                    conn.execute(KEEP_STATE, (state, run_id))
                    conn.execute(OUTBOX, (run_id, message(run_id, number + 1)))
                    conn.commit()
        except BaseException as exc:  # noqa: BLE001 -- reported by the caller
            errors.append(exc)

    go = threading.Barrier(count + 1)
    threads = [threading.Thread(target=chain) for _ in range(count)]
    for t in threads:
        t.start()
    go.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return {"steps_per_s": count * steps / seconds, "seconds": seconds}


def floor_figures(quick: bool) -> dict[str, Any]:
    """Every floor figure, on a database of its own: {single_per_s, start_per_s,
    chain_steps_per_s, state_bytes, repetitions} (best of 3; --quick: 1), or {error}."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
    import services

    from legion.engine.data.store import Store

    reps = 1 if quick else 3
    n = 100 if quick else 500
    url = services.create_database("postgresql", "legion_floor")
    try:
        Store(url).close()  # Legion's schema, by its migrations
        dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        state = real_core()
        singles(dsn, 20, state)  # warm-up
        single = max((singles(dsn, n, state) for _ in range(reps)), key=lambda r: r["runs_per_s"])
        chain = max((chains(dsn, CHAINS, CHAIN_STEPS, state) for _ in range(reps)), key=lambda r: r["steps_per_s"])
        return {"single_per_s": single["runs_per_s"], "start_per_s": single["start_per_s"], "runs": n,
                "chain_steps_per_s": chain["steps_per_s"], "state_bytes": len(state), "repetitions": reps}
    except Exception as exc:  # noqa: BLE001 -- reported; the other figures still stand
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        services.drop_database("postgresql", url)


def print_floor(floor: dict[str, Any]) -> None:
    heading("(f) the database floor: Legion's statements per run and per step, by a bare psycopg loop")
    if "error" in floor:
        print(f"  ! the floor could not be measured: {floor['error']}")
        return
    print(f"  PostgreSQL, Legion's schema; a {floor['state_bytes']:,}-byte state per write; no engine, no broker; "
          f"best of {floor['repetitions']}.")
    table(["scenario", "runs or steps/s", "note"], [
        [f"(f1) {floor['runs']:,} single runs", rate(floor["single_per_s"]), f"starting alone {rate(floor['start_per_s'])}/s"],
        [f"(f2) {CHAINS} x {CHAIN_STEPS}-step chains", rate(floor["chain_steps_per_s"]), ""],
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer runs, one repetition")
    parser.add_argument("--json", action="store_true", help="also print one JSON document of all figures at the end")
    args = parser.parse_args(argv)
    floor = floor_figures(args.quick)
    print_floor(floor)
    if args.json:
        print(json.dumps(floor, indent=2))
    return 1 if "error" in floor else 0


if __name__ == "__main__":
    run_main(main)
