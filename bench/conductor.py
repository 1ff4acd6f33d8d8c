"""Step-transition throughput of Legion with no-op steps, against baselines measured in the
same invocation.

    .venv/bin/python bench/conductor.py [--quick] [--json]

A *transition* is one step run: the conductor queues it, it starts, and the conductor handles
its finish (queued -> finished). Every step calls `core.util.noop`, so what is measured is the
engine's own cost per step: the conductor in REHEARSAL mode (the deterministic virtual-clock
driver, no persistence) and the EMBEDDED runtime with SQLite persistence (worker threads, the
memory transport, the recorder writing task rows in batches). Programs are built from the
pydantic model, outside the timed region.

Baselines: Celery 5 with its in-memory broker and a solo worker in a thread (a chain of N
no-op tasks, and a chord of 100 tasks plus a callback), and a plain Python loop that calls the
no-op function and, per step, inserts a task row and updates it to finished, writing the run's
state once per batched transaction (the floor of what persisting a step costs).

`--quick` measures 100 and 1,000 steps only, one repetition each; `--json` also prints one
JSON document with every figure at the end. Nothing here raises past `main`: a scenario that
fails is reported as failed and the rest still run.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from report import heading, rate, run_main, table

from legion.dsl.model import Chain, Edge, Step
from legion.engine.conductor import ChainProgram
from legion.engine.data.store import Store
from legion.engine.registry import Registry
from legion.engine.rehearsal import VirtualRun
from legion.engine.runtime import Engine
from legion.extensions.core.runners.util import noop

NOOP = "core.util.noop"
TARGET_REHEARSAL_TPS = 20_000
TARGET_EMBEDDED_TPS = 2_000
TARGET_SCALING = 1.5
TARGET_VS_FLOOR = 4.0  # embedded per-step time <= 4x the sqlite3 floor's, measured in the same run
CELERY_BUDGET_S = 60.0  # Celery's 10,000-step chain runs only if it is expected to finish within this
CELERY_POLLING_INTERVAL = 0.001  # kombu's virtual transports poll an empty queue every 1 s by default
FLOOR_BATCH = 1000  # rows per transaction in the sqlite3 floor
WORKER_COUNTS = (1, 4)

DEFINITION = ("A transition = one step run: a step run the conductor queued, which started and whose "
              "finish (queued -> finished) the conductor handled; every step calls core.util.noop")


# ---------------------------------------------------------------- programs


@dataclass
class Scenario:
    key: str  # stable id used in the JSON document
    label: str
    program: ChainProgram
    step_runs: int  # transitions one run makes
    size: int | None = None  # N of the sequential scenarios


def chain_program(name: str, steps: dict[str, Step]) -> ChainProgram:
    return ChainProgram(Chain(chain=name, steps=steps, max_steps=10**6))


def sequential(n: int) -> Scenario:
    names = [f"s{i:05d}" for i in range(n)]
    steps = {
        name: Step(run=NOOP, next=[Edge(do=[names[i + 1]])] if i + 1 < n else [])
        for i, name in enumerate(names)
    }
    return Scenario(f"sequential-{n}", f"sequential {n:,}", chain_program(f"bench-seq-{n}", steps), n, n)


def for_each_join(items: int, concurrency: int | None) -> Scenario:
    """start -> (for_each over `items` elements | side) -> join: all."""
    steps = {
        "start": Step(run=NOOP, next=[Edge(do=["items", "side"])]),
        "items": Step(run=NOOP, for_each=list(range(items)), concurrency=concurrency, next=[Edge(do=["join"])]),
        "side": Step(run=NOOP, next=[Edge(do=["join"])]),
        "join": Step(run=NOOP, join="all"),
    }
    limit = "unbounded" if concurrency is None else str(concurrency)
    return Scenario(f"for_each-{items}-c{limit}", f"for_each {items} (conc. {limit}) + join",
                    chain_program(f"bench-foreach-{limit}", steps), items + 3)


def split_join(branches: int) -> Scenario:
    """start --do: [b000..b099]--> each branch --> join: all."""
    names = [f"b{i:03d}" for i in range(branches)]
    steps = {"start": Step(run=NOOP, next=[Edge(do=names)])}
    steps.update({name: Step(run=NOOP, next=[Edge(do=["join"])]) for name in names})
    steps["join"] = Step(run=NOOP, join="all")
    return Scenario(f"split_join-{branches}", f"split/join {branches} branches",
                    chain_program(f"bench-split-{branches}", steps), branches + 2)


# ---------------------------------------------------------------- measuring


@dataclass
class Figure:
    """The best of `reps` timed runs of one scenario (after one warm-up run)."""

    steps: int
    reps: int = 0
    seconds: float | None = None
    cpu_seconds: float | None = None  # process CPU time of the best run (all threads)
    rows: int | None = None  # task rows written (embedded)
    error: str | None = None
    note: str | None = None

    @property
    def per_step_us(self) -> float | None:
        return None if self.seconds is None else self.seconds / self.steps * 1e6

    @property
    def tps(self) -> float | None:
        return None if not self.seconds else self.steps / self.seconds

    @property
    def cores(self) -> float | None:
        return None if not self.seconds or self.cpu_seconds is None else self.cpu_seconds / self.seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_runs": self.steps, "repetitions": self.reps, "best_seconds": self.seconds,
            "per_step_us": self.per_step_us, "transitions_per_s": self.tps, "cpu_seconds": self.cpu_seconds,
            "cores_used": self.cores, "task_rows": self.rows, "error": self.error, "note": self.note,
        }


def best_of(steps: int, reps: int, once: Callable[[], tuple[float, float, int | None]], warmup: bool = True) -> Figure:
    """Run `once` (which returns wall seconds, CPU seconds and rows, and raises when the run is
    wrong) once to warm up, then `reps` times; keep the fastest."""
    fig = Figure(steps)
    try:
        if warmup:
            once()
        for _ in range(reps):
            gc.collect()
            wall, cpu, rows = once()
            fig.reps += 1
            if fig.seconds is None or wall < fig.seconds:
                fig.seconds, fig.cpu_seconds, fig.rows = wall, cpu, rows
    except Exception as exc:  # noqa: BLE001 -- report it and go on with the next scenario
        fig.error = f"{type(exc).__name__}: {exc}"
        fig.seconds = None
    return fig


def rehearsal_once(scenario: Scenario, registry: Registry) -> tuple[float, float, int | None]:
    c0, t0 = time.process_time(), time.perf_counter()
    result = VirtualRun(scenario.program, registry).run({})
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if result.status != "succeeded":
        raise RuntimeError(f"rehearsal run {result.status}: {result.error}")
    if result.step_runs != scenario.step_runs:
        raise RuntimeError(f"rehearsal made {result.step_runs} step runs, expected {scenario.step_runs}")
    return wall, cpu, None


def embedded_once(scenario: Scenario, registry: Registry, store: Store, workers: int) -> tuple[float, float, int | None]:
    """One run on a fresh engine; timed from start_program to the run being durably ended
    (`wait` returns after the recorder committed every row of the run)."""
    engine = Engine(registry, store, workers=workers).start()
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        run_id = engine.start_program(scenario.program, {})
        run = engine.wait(run_id, timeout=120)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        engine.stop()
    if run["status"] != "succeeded":
        raise RuntimeError(f"embedded run {run['status']}: {run.get('error')}")
    rows = store.count_tasks(run_id)
    if rows != scenario.step_runs:
        raise RuntimeError(f"{rows} task rows for {scenario.step_runs} step runs")
    return wall, cpu, rows


class SqliteFloor:
    """Call the no-op function and write, per step, what the embedded runtime writes per step:
    one task row inserted (running, with its arguments and started_at) and updated (succeeded,
    with its result and finished_at); and, once per batch, the run's state (a JSON document
    updated in the run's row). Committing every FLOOR_BATCH steps, with the settings Legion's
    store uses (WAL, synchronous=NORMAL). The connection stays open across runs, as the
    store's pooled connection does."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS run (id TEXT PRIMARY KEY, status TEXT NOT NULL, state TEXT)")
        self.conn.execute("CREATE TABLE IF NOT EXISTS task (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, number INTEGER NOT NULL, "
                          "step TEXT NOT NULL, function TEXT NOT NULL, status TEXT NOT NULL, args TEXT, result TEXT, "
                          "started_at TEXT, finished_at TEXT, UNIQUE (run_id, number))")

    def once(self, n: int) -> tuple[float, float, int | None]:
        conn = self.conn
        run_id = str(uuid.uuid4())
        insert = ("INSERT INTO task (run_id, number, step, function, status, args, started_at) "
                  "VALUES (?, ?, ?, ?, 'running', ?, ?)")
        finish = "UPDATE task SET status = 'succeeded', result = ?, finished_at = ? WHERE run_id = ? AND number = ?"
        state = "UPDATE run SET state = ? WHERE id = ?"
        c0, t0 = time.process_time(), time.perf_counter()
        conn.execute("INSERT INTO run (id, status) VALUES (?, 'running')", (run_id,))
        conn.execute("BEGIN")
        for number in range(1, n + 1):
            step = f"s{number - 1:05d}"
            conn.execute(insert, (run_id, number, step, NOOP, json.dumps({}), datetime.now(UTC).isoformat()))
            result = noop()
            conn.execute(finish, (json.dumps(result), datetime.now(UTC).isoformat(), run_id, number))
            if number % FLOOR_BATCH == 0 or number == n:
                conn.execute(state, (json.dumps({"status": "running", "steps": number, "last": {"step": step, "number": number}}),
                                     run_id))
                conn.execute("COMMIT")
                conn.execute("BEGIN")
        conn.execute("COMMIT")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows = conn.execute("SELECT count(*) FROM task WHERE run_id = ? AND status = 'succeeded'", (run_id,)).fetchone()[0]
        if rows != n:
            raise RuntimeError(f"{rows} rows for {n} steps")
        return wall, cpu, rows

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------- Celery


@dataclass
class CeleryResult:
    available: bool = False
    version: str | None = None
    reason: str | None = None  # why Celery did not run at all
    figures: dict[str, Figure] = field(default_factory=dict)


def celery_baseline(chain_sizes: list[int], try_10k: bool, chord_size: int, reps: int) -> CeleryResult:
    out = CeleryResult()
    try:
        import celery
        from celery import Celery, chain, chord
        from celery.contrib.testing.worker import start_worker
    except Exception as exc:  # noqa: BLE001 -- any failure to import means no Celery baseline
        out.reason = f"Celery cannot be imported: {type(exc).__name__}: {exc} (pip install -e '.[bench]')"
        return out
    out.version = celery.__version__
    for name in ("celery", "kombu"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        app = Celery("legion-bench", broker="memory://localhost/", backend="cache+memory://")
        app.conf.update(
            broker_transport_options={"polling_interval": CELERY_POLLING_INTERVAL},
            broker_connection_retry_on_startup=True,
            worker_hijack_root_logger=False,
            worker_redirect_stdouts=False,
        )

        @app.task(name="bench.noop")
        def noop_task() -> None:
            return noop()

        @app.task(name="bench.join")
        def join_task(results: list[Any]) -> int:
            return len(results)

        def chain_once(n: int, timeout: float) -> tuple[float, float, int | None]:
            canvas = chain(*[noop_task.si() for _ in range(n)])  # built outside the timed region
            c0, t0 = time.process_time(), time.perf_counter()
            canvas.apply_async().get(timeout=timeout, interval=0.001)
            return time.perf_counter() - t0, time.process_time() - c0, None

        def chord_once(n: int) -> tuple[float, float, int | None]:
            canvas = chord([noop_task.si() for _ in range(n)], join_task.s())
            c0, t0 = time.process_time(), time.perf_counter()
            got = canvas.apply_async().get(timeout=120, interval=0.001)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            if got != n:
                raise RuntimeError(f"chord callback got {got} results, expected {n}")
            return wall, cpu, None

        with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="ERROR", shutdown_timeout=30):
            out.available = True
            # One warm-up of each canvas kind; a 1,000-task warm-up chain would only add its O(N^2) cost.
            chain_once(10, 60)
            chord_once(10)
            for n in chain_sizes:
                out.figures[f"chain-{n}"] = best_of(n, reps, partial(chain_once, n, 300), warmup=False)
            if try_10k:
                out.figures["chain-10000"] = celery_10k(out.figures, partial(chain_once, 10_000, CELERY_BUDGET_S * 2))
            out.figures[f"chord-{chord_size}"] = best_of(chord_size + 1, reps, partial(chord_once, chord_size), warmup=False)
    except Exception as exc:  # noqa: BLE001 -- the Celery baseline must not stop the benchmark
        if not out.available:
            out.reason = f"the Celery worker did not start: {type(exc).__name__}: {exc}"
        else:
            out.reason = f"Celery failed midway: {type(exc).__name__}: {exc}"
    return out


def celery_10k(figures: dict[str, Figure], once: Callable[[], tuple[float, float, int | None]]) -> Figure:
    """Run Celery's 10,000-task chain only when the 100 and 1,000 figures predict it finishes
    within the budget. Celery embeds the rest of the chain in every task message, so the work
    per hop grows with N: per-step time is fitted as a + b*N."""
    fig = Figure(10_000)
    small, large = figures.get("chain-100"), figures.get("chain-1000")
    if not small or not large or small.per_step_us is None or large.per_step_us is None:
        fig.note = "skipped: the 100 and 1,000 chains did not both run, so its duration cannot be estimated"
        return fig
    b = max(0.0, (large.per_step_us - small.per_step_us) / 900)
    a = large.per_step_us - b * 1000
    estimate = 10_000 * (a + b * 10_000) / 1e6
    if estimate > CELERY_BUDGET_S:
        fig.note = (f"skipped: estimated {estimate:,.0f} s (> {CELERY_BUDGET_S:.0f} s budget). Celery's per-step time grows "
                    f"with chain length ({small.per_step_us:,.0f} us at 100, {large.per_step_us:,.0f} us at 1,000) because "
                    f"every task message carries the rest of the chain, so a chain costs O(N^2)")
        return fig
    measured = best_of(10_000, 1, once, warmup=False)
    measured.note = f"estimated {estimate:,.0f} s before running"
    return measured


# ---------------------------------------------------------------- printing


def us(v: float | None) -> str:
    return "-" if v is None else f"{v:,.1f} us"


def ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1e3:,.1f} ms"








def errors_of(figures: dict[str, Figure], labels: dict[str, str]) -> None:
    for key, fig in figures.items():
        if fig.error:
            print(f"  ! {labels.get(key, key)} failed: {fig.error}")


def faster(name: str, ours: float | None, theirs: float | None, what: str) -> str:
    if ours is None or theirs is None or ours <= 0:
        return f"{name}: no comparison (a figure is missing)"
    if ours <= theirs:
        return f"{name} is {theirs / ours:,.1f}x faster per step than {what}"
    return f"{name} is {ours / theirs:,.1f}x slower per step than {what}"


def scaling(figures: dict[str, Figure], big: int) -> float | None:
    small, large = figures.get("sequential-100"), figures.get(f"sequential-{big}")
    if not small or not large or not small.per_step_us or large.per_step_us is None:
        return None
    return large.per_step_us / small.per_step_us


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only 100 and 1,000 steps, one repetition")
    parser.add_argument("--json", action="store_true", help="also print one JSON document of all figures at the end")
    args = parser.parse_args(argv)

    began = time.perf_counter()
    sizes = [100, 1000] if args.quick else [100, 1000, 10_000]
    big = sizes[-1]

    def reps_for(n: int) -> int:
        if args.quick:
            return 1
        return 1 if n >= 10_000 else 3

    reps_text = "one warm-up run, then 1 timed run" if args.quick else \
        "one warm-up run, then best of 3 (best of 1 at 10,000 steps)"

    print("Legion step-transition benchmark (no-op steps)")
    print(f"  {DEFINITION}.")
    print("  Programs are built from the pydantic model (ChainProgram) outside the timed region.")
    print(f"  Machine: {os.cpu_count()} CPU cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}.")
    print(f"  Timing: time.perf_counter; {reps_text}.{' (--quick)' if args.quick else ''}")

    registry = Registry.discover()
    scenarios: list[Scenario] = []
    build_errors: list[str] = []
    makers: list[Callable[[], Scenario]] = [
        *(partial(sequential, n) for n in sizes),
        partial(for_each_join, 500, None), partial(for_each_join, 500, 50), partial(split_join, 100),
    ]
    for make in makers:
        try:
            scenarios.append(make())
        except Exception as exc:  # noqa: BLE001 -- reported; the other scenarios still run
            build_errors.append(f"{type(exc).__name__}: {exc}")
    for err in build_errors:
        print(f"  ! a program could not be built: {err}")
    labels = {s.key: s.label for s in scenarios}

    # -- rehearsal --------------------------------------------------------------------------
    heading("REHEARSAL mode: VirtualRun (virtual clock, in-process, no persistence)")
    rehearsal: dict[str, Figure] = {}
    for s in scenarios:
        rehearsal[s.key] = best_of(s.step_runs, reps_for(s.step_runs), partial(rehearsal_once, s, registry))
    table(["scenario", "step runs", "best time", "per step", "transitions/s"],
          [[labels[k], f"{f.steps:,}", ms(f.seconds), us(f.per_step_us), rate(f.tps)] for k, f in rehearsal.items()])
    errors_of(rehearsal, labels)
    r_scale = scaling(rehearsal, big)
    print(f"  per-step time at {big:,} vs 100 sequential steps: "
          + ("-" if r_scale is None else f"{r_scale:.2f}x (target <= {TARGET_SCALING}x)"))

    # -- embedded ---------------------------------------------------------------------------
    embedded: dict[int, dict[str, Figure]] = {}
    floor: dict[str, Figure] = {}
    tmp = tempfile.TemporaryDirectory(prefix="legion-bench-")
    try:
        for workers in WORKER_COUNTS:
            heading(f"EMBEDDED runtime + SQLite, workers={workers} (threads; timed from start_program until the run is durably ended)")
            figs: dict[str, Figure] = {}
            embedded[workers] = figs
            try:
                store = Store(f"sqlite:///{tmp.name}/bench-w{workers}.db")
            except Exception as exc:  # noqa: BLE001 -- reported; the next configuration still runs
                print(f"  ! the SQLite store could not be opened: {type(exc).__name__}: {exc}")
                continue
            try:
                for s in scenarios:
                    figs[s.key] = best_of(s.step_runs, reps_for(s.step_runs),
                                          partial(embedded_once, s, registry, store, workers))
            finally:
                store.close()
            table(["scenario", "step runs", "task rows", "best time", "per step", "transitions/s", "CPU cores used"],
                  [[labels[k], f"{f.steps:,}", "-" if f.rows is None else f"{f.rows:,}", ms(f.seconds), us(f.per_step_us),
                    rate(f.tps), "-" if f.cores is None else f"{f.cores:.2f}"] for k, f in figs.items()])
            errors_of(figs, labels)
            sc = scaling(figs, big)
            print(f"  per-step time at {big:,} vs 100 sequential steps: "
                  + ("-" if sc is None else f"{sc:.2f}x (target <= {TARGET_SCALING}x)"))
            print("  Every run was checked: status succeeded, and task rows in SQLite (store.count_tasks) == step runs.")

        # -- baseline: sqlite3 floor ------------------------------------------------------------
        heading(f"BASELINE: Python loop calling noop() + a task row INSERT and UPDATE per step, the run's state once per "
                f"commit (every {FLOOR_BATCH:,} steps, WAL)")
        try:
            baseline = SqliteFloor(os.path.join(tmp.name, "floor.db"))
            try:
                for n in sizes:
                    floor[f"sequential-{n}"] = best_of(n, reps_for(n), partial(baseline.once, n))
            finally:
                baseline.close()
        except sqlite3.Error as exc:
            print(f"  ! the sqlite3 floor could not run: {type(exc).__name__}: {exc}")
        rows = []
        for n in sizes:
            f = floor.get(f"sequential-{n}") or Figure(n, error="not run")
            cells = [f"{n:,} steps", us(f.per_step_us), rate(f.tps)]
            for w in WORKER_COUNTS:
                e = embedded.get(w, {}).get(f"sequential-{n}")
                ratio = None if e is None or e.per_step_us is None or not f.per_step_us else e.per_step_us / f.per_step_us
                cells.append("-" if ratio is None else f"{ratio:,.1f}x")
            rows.append(cells)
        table(["floor", "per step", "rows/s", *(f"embedded w={w} / floor" for w in WORKER_COUNTS)], rows)
        errors_of(floor, {})
        print("  The floor writes per step what the embedded runtime writes (a task row inserted running, then updated")
        print("  finished) and the run's state once per transaction, with no conductor, queue or threads; the ratio")
        print(f"  columns are Legion's per-step time divided by the floor's (target <= {TARGET_VS_FLOOR:g}x, the same run).")
        at_big = floor.get(f"sequential-{big}")
        for w in WORKER_COUNTS:
            e = embedded.get(w, {}).get(f"sequential-{big}")
            if at_big and e and at_big.per_step_us and e.per_step_us is not None:
                print(f"  - at {big:,} steps, embedded (workers={w}) costs {e.per_step_us / at_big.per_step_us:,.1f}x the floor "
                      f"per step ({e.per_step_us:,.1f} us vs {at_big.per_step_us:,.1f} us)")
    finally:
        tmp.cleanup()

    # -- baseline: Celery -------------------------------------------------------------------
    heading("BASELINE: Celery (memory:// broker, cache+memory:// result backend, solo worker in a thread)")
    cel = celery_baseline([n for n in sizes if n < 10_000], try_10k=not args.quick, chord_size=100,
                          reps=1 if args.quick else 3)
    if cel.version:
        print(f"  Celery {cel.version}; kombu polling_interval={CELERY_POLLING_INTERVAL}s (default 1 s); "
              "tasks are immutable signatures calling noop(); canvases built outside the timed region.")
    if not cel.available:
        print(f"  Celery could not run here: {cel.reason}. Continuing with the other baseline.")
    else:
        if cel.reason:
            print(f"  ! {cel.reason}")
        rows = []
        compare: list[str] = []
        for key, f in cel.figures.items():
            if key.startswith("chain-"):
                n = int(key.split("-")[1])
                label, legion_key, what = f"chain of {n:,}", f"sequential-{n}", "a Celery chain"
            else:
                n = int(key.split("-")[1])
                label, legion_key, what = f"chord {n} + callback", f"split_join-{n}", "a Celery chord"
            if f.seconds is None:
                cells = [label, f"{f.steps:,}", "skipped" if f.note else "failed", "-", "-"]
            else:
                cells = [label, f"{f.steps:,}", ms(f.seconds), us(f.per_step_us), rate(f.tps)]
            for w in WORKER_COUNTS:
                e = embedded.get(w, {}).get(legion_key)
                ratio = None if e is None or e.per_step_us is None or f.per_step_us is None else f.per_step_us / e.per_step_us
                cells.append("-" if ratio is None else f"{ratio:,.1f}x")
            rows.append(cells)
            if f.note and f.seconds is None:
                compare.append(f"{label}: {f.note}")
            elif f.error:
                compare.append(f"{label}: failed: {f.error}")
            else:
                for w in WORKER_COUNTS:
                    e = embedded.get(w, {}).get(legion_key)
                    compare.append(f"{label}: " + faster(f"embedded (workers={w})", e.per_step_us if e else None,
                                                         f.per_step_us, what))
                if f.note:
                    compare.append(f"{label}: {f.note}")
        table(["Celery", "tasks", "best time", "per task", "tasks/s", *(f"Celery / embedded w={w}" for w in WORKER_COUNTS)], rows)
        print("  Ratio columns: Celery's per-task time divided by Legion's embedded per-step time (above 1 = Legion is faster).")
        print("  Legion counterparts: chain of N <-> sequential N; chord 100 + callback (101 tasks) <-> split/join 100 (102 step runs).")
        print("  Celery keeps nothing durable here (in-memory broker and results); Legion's embedded figures include SQLite writes.")
        for line in compare:
            print(f"  - {line}")

    # -- targets ----------------------------------------------------------------------------
    heading("TARGETS")
    checks: list[dict[str, Any]] = []

    def check(name: str, value: float | None, ok: bool | None, shown: str) -> None:
        status = "NOT MEASURED" if value is None or ok is None else ("MET" if ok else "NOT MET")
        checks.append({"target": name, "value": value, "status": status})
        print(f"  {status:<12}  {name}: {shown}")

    def slowest(figs: dict[str, Figure]) -> tuple[float | None, str]:
        measured = [(f.tps, k) for k, f in figs.items() if f.tps is not None]
        if not measured or any(f.tps is None for f in figs.values()):
            return None, "some scenario has no figure"
        tps, key = min(measured)
        return tps, f"slowest scenario {labels[key]}: {tps:,.0f}/s"

    tps, shown = slowest(rehearsal)
    check(f"rehearsal >= {TARGET_REHEARSAL_TPS:,} transitions/s", tps, None if tps is None else tps >= TARGET_REHEARSAL_TPS, shown)
    for w in WORKER_COUNTS:
        tps, shown = slowest(embedded.get(w, {}))
        check(f"embedded + SQLite >= {TARGET_EMBEDDED_TPS:,} transitions/s, workers={w}", tps,
              None if tps is None else tps >= TARGET_EMBEDDED_TPS, shown)
    for w in WORKER_COUNTS:
        ratios = []
        for n in sizes:
            e, f = embedded.get(w, {}).get(f"sequential-{n}"), floor.get(f"sequential-{n}")
            if e and f and e.per_step_us is not None and f.per_step_us:
                ratios.append((e.per_step_us / f.per_step_us, n))
        worst = max(ratios) if len(ratios) == len(sizes) else None
        check(f"embedded + SQLite within {TARGET_VS_FLOOR:g}x of the sqlite3 floor per step, workers={w}",
              None if worst is None else worst[0], None if worst is None else worst[0] <= TARGET_VS_FLOOR,
              "some size has no figure" if worst is None else
              f"worst {worst[0]:.1f}x at {worst[1]:,} steps (" + ", ".join(f"{r:.1f}x at {n:,}" for r, n in ratios) + ")")
    scales = [("rehearsal", rehearsal)] + [(f"embedded workers={w}", embedded.get(w, {})) for w in WORKER_COUNTS]
    for name, figs in scales:
        if big < 10_000:
            check(f"{name}: per-step time at 10,000 <= {TARGET_SCALING}x that at 100", None, None, "10,000 not measured (--quick)")
            continue
        sc = scaling(figs, big)
        check(f"{name}: per-step time at 10,000 <= {TARGET_SCALING}x that at 100", sc,
              None if sc is None else sc <= TARGET_SCALING, "-" if sc is None else f"{sc:.2f}x")
    used = [f.cores for figs in embedded.values() for f in figs.values() if f.cores is not None]
    print(f"  The targets are stated for one core. This machine has {os.cpu_count()} cores; the embedded runtime's worker")
    print("  threads share one interpreter lock." + (f" Its runs used at most {max(used):.2f} cores (process CPU time, all" if used else ""))
    if used:
        print("  threads, divided by wall time).")
    elapsed = time.perf_counter() - began
    print(f"\nDone in {elapsed:,.1f} s.")

    if args.json:
        doc = {
            "definition": DEFINITION,
            "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                        "platform": platform.platform()},
            "quick": args.quick,
            "sizes": sizes,
            "rehearsal": {k: f.to_dict() for k, f in rehearsal.items()},
            "embedded_sqlite": {f"workers={w}": {k: f.to_dict() for k, f in figs.items()} for w, figs in embedded.items()},
            "scaling_per_step_ratio": {
                "compared": [100, big],
                "rehearsal": scaling(rehearsal, big),
                **{f"embedded_workers={w}": scaling(embedded.get(w, {}), big) for w in WORKER_COUNTS},
            },
            "baseline_sqlite_floor": {"batch_rows": FLOOR_BATCH, **{k: f.to_dict() for k, f in floor.items()}},
            "baseline_celery": {
                "available": cel.available, "version": cel.version, "reason": cel.reason,
                "polling_interval_s": CELERY_POLLING_INTERVAL,
                **{k: f.to_dict() for k, f in cel.figures.items()},
            },
            "targets": checks,
            "elapsed_s": elapsed,
        }
        print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    run_main(main)
