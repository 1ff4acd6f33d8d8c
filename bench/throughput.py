"""Message throughput on RabbitMQ: the ceiling raw pika reaches, what Celery 5 reaches on the
same broker, and what Legion reaches, measured in the same invocation.

    .venv/bin/python bench/throughput.py [--quick] [--json] [--amqp-url URL] [--redis-url URL]
        [--legion-db postgresql,sqlite] [--legion-profile]

Every message is persistent (delivery_mode=2) and goes to a durable classic queue made for this
invocation (`bench.<hex>...`) and deleted at the end; every consumer acknowledges each message
by hand after handling it. Default broker: amqp://guest:guest@127.0.0.1:5672/%2F.

(a) Raw pika, the ceiling. A ~100-byte JSON body shaped like Legion's step message. Two
    variants: publisher confirms on (pipelined: a SelectConnection keeps up to 1,000 messages
    awaiting their confirms, never one round trip per message) and off. Three figures each:
    publish N into the empty queue (timed until every confirm arrived, or, confirms off, until a
    synchronous queue.declare after the last publish returned); consume those N (prefetch 100,
    one basic.ack per message, SelectConnection; timed from the first delivery); end-to-end: a consumer and a publisher in two
    threads with two connections, timed from the first publish to the N-th ack. RabbitMQ confirms
    a persistent message once it is on disk or once a consumer has acknowledged it, whichever
    comes first, so with a consumer attached a confirm need not wait for an fsync. Both pika
    clients of the end-to-end run share this process's interpreter lock: it is the ceiling of
    one Python process, not of the broker.

(b), (c), (e) Legion on the RabbitMQ runtime (its AMQP transport always uses publisher
    confirms: a step's message is acked once its successors are confirmed). Measured in a vhost of this invocation's own
    (`rabbitmqctl add_vhost`, deleted at the end; the URL's vhost when that is refused), on a
    fresh PostgreSQL database (tests/services.py; LEGION_TEST_POSTGRES_URL; dropped at the end)
    and, for comparison, a fresh SQLite file (`--legion-db` picks them). The chains are YAML
    files written here and applied to the store (load_chains + apply_chains). Two ways to run:
    'workers', 2 `legion start --role worker --no-apply --workers 4` subprocesses
    (LEGION_AMQP_URL, LEGION_DATABASE_URL, LEGION_SECRET_TOKEN_KEY, LEGION_HOME) while this
    process only submits; 'in-process', one Engine with 4 worker threads that submits and
    consumes. Runs are polled in the database; a rate is timed from the first submit to the
    last run's ended_at.
    (b) N runs of a 1-step core.util.noop chain submitted one after another (runs/s, and the
        submit rate alone).
    (c) 5 concurrent 100-step sequential chains: steps/s, and p50/p99 step-to-step latency from
        the task rows (started_at of step k+1 minus finished_at of step k), pooled.
    (e) PostgreSQL, worker processes: per-step time of one 10,000-step chain vs one 100-step
        chain, and of one for_each over range(10,000) vs range(100). 1,000 is measured first;
        when a fit through 100 and 1,000 predicts more than 3 minutes at 10,000, 2,000 is
        measured instead (said in the output). --quick: 500 vs 100.
    `--legion-profile`: cProfile of the worker threads of an in-process engine on PostgreSQL
    running the (c) chains; top 15 functions by tottime and by cumulative time.

(d) Celery 5 on the same RabbitMQ (`pyamqp://`): `task_default_delivery_mode='persistent'`,
    `task_acks_late=True`, prefetch 100 (multiplier 100 / concurrency), no result backend
    (celery.chain needs none: the rest of the chain travels in each message and the worker
    publishes the next step itself), and publisher confirms ON
    (`broker_transport_options={'confirm_publish': True}`), the fair comparison with Legion's
    confirmed publishes. kombu's pyamqp transport waits for each confirm before returning from
    a publish: that is Celery's own behaviour, and it is what is measured.
    The worker is a subprocess of this script (`throughput.py --celery-worker`, i.e.
    `app.worker_main`): a separate interpreter as in a deployment, so the client sending tasks
    does not share the worker's interpreter lock, and a worker that hangs or dies is stopped or
    reported without taking this process with it (a worker thread inside this process would
    share its signal handlers and logging set-up). It runs the thread pool with 4 threads by
    default (`--celery-concurrency N`): every hop waits for its confirmed publish, and threads
    let the 5 chains overlap those waits, which made Celery's chains about 1.4x (celery.chain)
    and 1.6x (hop by hop) faster than the solo pool in a pair of full runs on a 2-core machine,
    with the same single-task rate. `--celery-pool solo` measures the solo pool. Without gossip,
    mingle, heartbeats, events and remote control, so only the task queue is used. Tasks keep
    their counts and timestamps in the worker's memory and report to Redis
    (redis://127.0.0.1:6379/0) only when a run or a chain is over, so no per-task round trip to
    Redis is measured. The clocks compared are time.time() of two processes on one machine.
    (d1) N no-op tasks: sent one by one with apply_async, timed from the first send until the
         worker executed the N-th (and the send rate alone). A reference row sends them again
         from a client with confirms off, to show what the confirms cost; it is not compared.
    (d2) 5 concurrent celery.chain of 100 no-op tasks: steps/s (500 steps from the first
         apply_async to the last step run) and p50/p99 step-to-step latency (the gap between
         two consecutive steps of one chain, pooled over the timed repetitions).
    (d3) The same with hop-by-hop tasks: each task publishes the next with apply_async itself,
         with no chain carried in the message (the fair baseline, as celery.chain carries the
         rest of the chain in every message).

(f) The database floor (bench/sqlfloor.py): the statements Legion issues per run and per step on
    PostgreSQL, by a bare psycopg loop with no engine and no broker, for (b) and (c). The targets
    against Celery are set beside it: a target above the floor cannot be met while each step
    keeps its records the way it does.

`--quick`: N=2,000 raw messages, 500 Celery tasks and 100 Legion runs, one timed repetition;
otherwise N=20,000, 5,000 and 500, best of 3 (after one warm-up of the Celery worker). `--json` also prints one JSON
document with every figure at the end. A scenario that fails is reported as failed and the
others still run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from report import heading, rate, run_main, table
from sqlfloor import floor_figures, print_floor

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PREFETCH = 100
CONFIRM_WINDOW = 1000  # raw pika: published messages awaiting their confirm at most
CHAINS = 5
CHAIN_STEPS = 100
TIMEOUT_S = 120.0  # any one scenario

TARGET_SINGLE_VS_CELERY = 1.5
TARGET_CHAIN_VS_CELERY = 3.0
TARGET_P50_VS_CELERY = 1.0  # Legion's p50 step-to-step <= Celery's
TARGET_VS_RAW = 0.40
TARGET_SCALING = 1.5  # (e) per-step time of a 10,000-step run <= 1.5x that of a 100-step one

BODY = json.dumps({"kind": "step", "run_id": str(uuid.uuid4()), "number": 1, "function": "core.util.noop",
                   "priority": 0}, separators=(",", ":")).encode()


def failed(exc: BaseException) -> str:
    text = str(exc).strip() or repr(exc)  # pika's exceptions often have an empty str()
    return f"{type(exc).__name__}: {text}"


def best(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return max(runs, key=lambda r: r.get(key) or 0.0)


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (1..99) of at least two values."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


# ================================================================ (a) raw pika


def _select(url: str, on_channel: Callable[[Any, Any, Callable[[str | None], None]], None], timeout: float) -> None:
    """Run one SelectConnection until `finish` is called (raise on the error given to it, on a
    broker-side close, or on the timeout)."""
    import pika

    outcome: dict[str, str | None] = {}

    def finish(error: str | None = None) -> None:
        if "error" in outcome:
            return
        outcome["error"] = error
        if conn.is_open:
            conn.close()
        elif not conn.is_closing:
            conn.ioloop.stop()

    def on_open(c: Any) -> None:
        c.channel(on_open_callback=lambda ch: (ch.add_on_close_callback(on_channel_closed), on_channel(c, ch, finish)))

    def on_channel_closed(_ch: Any, reason: Exception) -> None:
        if "error" not in outcome:
            outcome["error"] = f"channel closed by the broker: {failed(reason)}"
            if conn.is_open:
                conn.close()

    def on_open_error(_c: Any, exc: Exception) -> None:
        outcome.setdefault("error", f"cannot connect: {failed(exc)}")
        conn.ioloop.stop()

    def on_closed(_c: Any, reason: Exception) -> None:
        outcome.setdefault("error", f"connection closed: {failed(reason)}")
        conn.ioloop.stop()

    conn = pika.SelectConnection(pika.URLParameters(url), on_open_callback=on_open,
                                 on_open_error_callback=on_open_error, on_close_callback=on_closed)
    conn.ioloop.call_later(timeout, lambda: finish(f"timed out after {timeout:.0f} s"))
    conn.ioloop.start()
    if outcome.get("error"):
        raise RuntimeError(outcome["error"])


def publish(url: str, queue: str, n: int, confirm: bool, times: dict[str, float]) -> None:
    """Publish n persistent messages to `queue`. Sets times['start'] at the first publish and
    times['end'] when the last confirm arrived (confirms off: when a queue.declare sent after
    the last publish was answered, so the broker has taken every message)."""
    import pika

    props = pika.BasicProperties(delivery_mode=2, content_type="application/json")

    def on_channel(conn: Any, ch: Any, finish: Callable[[str | None], None]) -> None:
        published = 0
        pending: deque[int] = deque()  # delivery tags awaiting a confirm, in order
        acked_out_of_order: set[int] = set()

        def done(_frame: Any = None) -> None:
            times["end"] = time.perf_counter()
            finish(None)

        def pump() -> None:
            nonlocal published
            limit = n if not confirm else min(n, published + CONFIRM_WINDOW - len(pending))
            while published < limit:
                ch.basic_publish("", queue, BODY, props)
                published += 1
                if confirm:
                    pending.append(published)
            if not confirm and published == n:
                ch.queue_declare(queue, passive=True, callback=done)

        def on_confirm(frame: Any) -> None:
            method = frame.method
            if isinstance(method, pika.spec.Basic.Nack):
                finish(f"the broker nacked delivery tag {method.delivery_tag}")
                return
            tag = method.delivery_tag
            if method.multiple:
                while pending and pending[0] <= tag:
                    pending.popleft()
            else:
                acked_out_of_order.add(tag)
            while pending and pending[0] in acked_out_of_order:
                acked_out_of_order.discard(pending.popleft())
            if published == n and not pending:
                done()
            elif published < n:
                pump()

        def start(_frame: Any = None) -> None:
            times["start"] = time.perf_counter()
            pump()

        if confirm:
            ch.confirm_delivery(on_confirm, callback=start)
        else:
            start()

    _select(url, on_channel, TIMEOUT_S)


def consume(url: str, queue: str, n: int, times: dict[str, float], ready: threading.Event | None = None) -> None:
    """Consume n messages from `queue` with prefetch 100, one basic.ack each. Sets
    times['first'] at the first delivery and times['end'] after the n-th ack."""

    def on_channel(conn: Any, ch: Any, finish: Callable[[str | None], None]) -> None:
        count = 0

        def on_message(_ch: Any, method: Any, _props: Any, _body: bytes) -> None:
            nonlocal count
            if count == 0:
                times["first"] = time.perf_counter()
            ch.basic_ack(method.delivery_tag)
            count += 1
            if count == n:
                times["end"] = time.perf_counter()
                finish(None)

        def on_consume_ok(_frame: Any) -> None:
            if ready is not None:
                ready.set()

        def on_qos(_frame: Any) -> None:
            ch.basic_consume(queue, on_message, callback=on_consume_ok)

        ch.basic_qos(prefetch_count=PREFETCH, callback=on_qos)

    _select(url, on_channel, TIMEOUT_S)


def raw_variant(url: str, queue: str, n: int, confirm: bool) -> dict[str, Any]:
    """Publish, then consume, then both at once; the queue is empty between the phases."""
    pub: dict[str, float] = {}
    publish(url, queue, n, confirm, pub)
    con: dict[str, float] = {}
    consume(url, queue, n, con)
    figures: dict[str, Any] = {
        "publish_per_s": n / (pub["end"] - pub["start"]),
        # timed from the first delivery: the connection's set-up is not the broker's delivery rate
        "consume_per_s": n / (con["end"] - con["first"]),
    }
    ready = threading.Event()
    e2e_pub: dict[str, float] = {}
    e2e_con: dict[str, float] = {}
    errors: list[str] = []

    def guarded(fn: Callable[..., None], *args: Any, **kwargs: Any) -> Callable[[], None]:
        def run() -> None:
            try:
                fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 -- handed to the main thread
                errors.append(failed(exc))
                ready.set()
        return run

    consumer = threading.Thread(target=guarded(consume, url, queue, n, e2e_con, ready), daemon=True)
    consumer.start()
    if not ready.wait(30):
        raise RuntimeError("the end-to-end consumer did not start within 30 s")
    publisher = threading.Thread(target=guarded(publish, url, queue, n, confirm, e2e_pub), daemon=True)
    publisher.start()
    publisher.join(TIMEOUT_S)
    consumer.join(TIMEOUT_S)
    if errors:
        raise RuntimeError("; ".join(errors))
    if "end" not in e2e_con or "start" not in e2e_pub:
        raise RuntimeError("the end-to-end run did not finish")
    figures["end_to_end_per_s"] = n / (e2e_con["end"] - e2e_pub["start"])
    figures["end_to_end_publish_per_s"] = n / (e2e_pub["end"] - e2e_pub["start"])
    return figures


def raw_pika_figures(amqp_url: str, quick: bool, tag: str) -> dict[str, Any]:
    """(a): {'confirms_on': {...}, 'confirms_off': {...}}, each the best of the repetitions per
    figure, or {'error': ...}."""
    try:
        import pika
    except Exception as exc:  # noqa: BLE001
        return {"error": f"pika cannot be imported: {failed(exc)} (pip install -e '.[test]')"}
    n = 2000 if quick else 20_000
    reps = 1 if quick else 3
    out: dict[str, Any] = {"messages": n, "repetitions": reps, "pika": pika.__version__}
    for confirm in (True, False):
        key = "confirms_on" if confirm else "confirms_off"
        queue = f"bench.{tag}.raw-{'confirm' if confirm else 'noconfirm'}"
        runs: list[dict[str, Any]] = []
        try:
            admin = pika.BlockingConnection(pika.URLParameters(amqp_url))
            try:
                admin.channel().queue_declare(queue, durable=True, arguments={"x-queue-type": "classic"})
                for _ in range(reps):
                    runs.append(raw_variant(amqp_url, queue, n, confirm))
            finally:
                try:
                    admin.channel().queue_delete(queue)
                finally:
                    admin.close()
            out[key] = {f: best(runs, f)[f] for f in runs[0]}
        except Exception as exc:  # noqa: BLE001 -- reported; the other variant still runs
            out[key] = {"error": failed(exc)}
    return out


# ================================================================ (b), (c): Legion

LEGION_THREADS = 4  # worker threads per engine (`--workers 4`)
LEGION_PROCESSES = 2  # `legion start --role worker` subprocesses
SCALE_BUDGET_S = 180.0  # (e): a 10,000-step run that is predicted to take longer is measured at 2,000
ENDED = ("succeeded", "failed", "canceled")
POSTGRES_URL = os.environ.get("LEGION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class Vhost:
    """A RabbitMQ vhost of this invocation's own (`rabbitmqctl add_vhost`, permissions for the
    URL's user), deleted at the end; `url` is the broker URL pointing at it. When rabbitmqctl
    cannot make one, the URL's own vhost is used and `note` says so."""

    def __init__(self, amqp_url: str, tag: str) -> None:
        self.name: str | None = f"legion-bench-{tag}"
        self.url = amqp_url
        parts = urlsplit(amqp_url)
        user = parts.username or "guest"
        try:
            for args in (["add_vhost", self.name], ["set_permissions", "-p", self.name, user, ".*", ".*", ".*"]):
                subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            self.delete()
            self.name = None
            self.note = f"shared vhost of the URL (rabbitmqctl add_vhost failed: {failed(exc)})"
            return
        self.url = urlunsplit(parts._replace(path="/" + quote(self.name, safe="")))
        self.note = f"vhost {self.name} of its own (rabbitmqctl add_vhost), deleted at the end"

    def delete(self) -> None:
        if self.name:
            subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.name], capture_output=True, timeout=60, check=False)


def create_postgres() -> str:
    """A fresh PostgreSQL database (tests/services.py); its URL."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
    import services

    return services.create_database("postgresql", "legion_bench")


def drop_postgres(url: str) -> None:
    import services

    services.drop_database("postgresql", url)


def chain_files(folder: str, sequential: list[int], items: list[int]) -> None:
    """bench-single (one no-op step), bench-seq-N (N sequential no-op steps) and bench-each-N (a
    for_each over range(N)) as YAML chain files in `folder`."""
    def write(name: str, steps: list[str]) -> None:
        with open(os.path.join(folder, f"{name}.yaml"), "w", encoding="utf-8") as f:
            f.write(f"chain: {name}\nmax_steps: 1000000\nsteps:\n" + "".join(steps))

    write("bench-single", ["  only:\n    run: core.util.noop\n"])
    for n in sequential:
        write(f"bench-seq-{n}", [f"  s{i:05d}:\n    run: core.util.noop\n"
                                 + (f"    next:\n      - do: [s{i + 1:05d}]\n" if i + 1 < n else "") for i in range(n)])
    for n in items:
        write(f"bench-each-{n}", [f'  items:\n    run: core.util.noop\n    for_each: "{{{{ range({n}) | list }}}}"\n'])


class LegionWorkers:
    """`legion start --role worker --no-apply --workers 4` subprocesses on the given broker and
    database; ready once each said it started; stopped with SIGTERM (they drain), killed if not."""

    def __init__(self, count: int, amqp_url: str, database_url: str, home: str, profile_dir: str | None = None) -> None:
        legion = os.path.join(os.path.dirname(sys.executable), "legion")
        env = dict(os.environ, LEGION_AMQP_URL=amqp_url, LEGION_DATABASE_URL=database_url, LEGION_HOME=home,
                   LEGION_SECRET_TOKEN_KEY=uuid.uuid4().hex)
        self.procs: list[tuple[subprocess.Popen[bytes], Any]] = []
        for i in range(count):
            log = tempfile.NamedTemporaryFile(prefix=f"legion-bench-worker{i}-", suffix=".log", delete=False)
            cmd = [legion, "start", "--role", "worker", "--no-apply", "--workers", str(LEGION_THREADS)]
            self.procs.append((subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL), log))

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for proc, log in self.procs:
            while "legion started" not in self._text(log):
                if proc.poll() is not None:
                    raise RuntimeError(f"a Legion worker exited with {proc.returncode}: {self.tail(log)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"a Legion worker was not ready within {timeout:.0f} s: {self.tail(log)}")
                time.sleep(0.1)

    @staticmethod
    def _text(log: Any) -> str:
        try:
            with open(log.name, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def tail(self, log: Any) -> str:
        return " | ".join(self._text(log).strip().splitlines()[-8:]) or "(no output)"

    def stop(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc, log in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            log.close()
            os.unlink(log.name)


def wait_runs(store: Any, run_ids: list[str], timeout: float) -> list[dict[str, Any]]:
    """Poll the database until every run ended; their rows (id, status, created_at, ended_at)."""
    from sqlalchemy import select

    from legion.engine.data.models import runs

    deadline = time.monotonic() + timeout
    query = select(runs.c.id, runs.c.status, runs.c.created_at, runs.c.started_at, runs.c.ended_at).where(
        runs.c.id.in_(run_ids), runs.c.status.in_(ENDED))
    pause = 0.01
    while True:
        with store._read() as conn:
            got = [dict(r._mapping) for r in conn.execute(query)]
        if len(got) == len(run_ids):
            bad = [r for r in got if r["status"] != "succeeded"]
            if bad:
                raise RuntimeError(f"{len(bad)} of {len(run_ids)} runs did not succeed (e.g. {bad[0]['status']})")
            return got
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(got)} of {len(run_ids)} runs ended within {timeout:.0f} s")
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def step_gaps(store: Any, run_ids: list[str]) -> tuple[list[float], int]:
    """Step-to-step latency from the task rows: started_at of step k+1 minus finished_at of
    step k, per run; and the number of task rows."""
    from sqlalchemy import select

    from legion.engine.data.models import tasks

    query = select(tasks.c.run_id, tasks.c.number, tasks.c.started_at, tasks.c.finished_at).where(
        tasks.c.run_id.in_(run_ids)).order_by(tasks.c.run_id, tasks.c.number)
    with store._read() as conn:
        rows = [r._mapping for r in conn.execute(query)]
    gaps = [(b["started_at"] - a["finished_at"]).total_seconds() for a, b in zip(rows, rows[1:], strict=False)
            if a["run_id"] == b["run_id"]]
    return gaps, len(rows)


def legion_singles(engine: Any, store: Any, n: int) -> dict[str, Any]:
    """(b) n runs of bench-single submitted one after another; timed from the first submit to
    the last run's ended_at (kept by the worker that ended it)."""
    t0 = time.time()
    ids = [engine.submit("bench-single") for _ in range(n)]
    sent = time.time()
    rows = wait_runs(store, ids, TIMEOUT_S * 2)
    end = max(r["ended_at"].timestamp() for r in rows)
    return {"tasks_per_s": n / (end - t0), "submit_per_s": n / (sent - t0)}


def legion_chains(engine: Any, store: Any, chain: str, count: int, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """(c), (e): `count` runs of `chain` submitted at once; step runs per second from the first
    submit to the last ended_at, and (sequential chains) every step-to-step gap."""
    t0 = time.time()
    ids = [engine.submit(chain) for _ in range(count)]
    rows = wait_runs(store, ids, timeout)
    seconds = max(r["ended_at"].timestamp() for r in rows) - t0
    if chain.startswith("bench-seq-"):
        gaps, steps = step_gaps(store, ids)
    else:
        gaps, steps = [], sum(store.count_tasks(i) for i in ids)
    return {"steps_per_s": steps / seconds, "seconds": seconds, "steps": steps, "gaps": gaps}


def legion_repeat(reps: int, once: Callable[[], dict[str, Any]], key: str) -> dict[str, Any]:
    """The best of `reps` runs by `key`, with the step-to-step gaps of all of them pooled."""
    runs = [once() for _ in range(reps)]
    out = dict(best(runs, key))
    gaps = [g for r in runs for g in r.get("gaps", [])]
    out.pop("gaps", None)
    if len(gaps) >= 2:
        out.update(p50_ms=percentile(gaps, 50) * 1e3, p99_ms=percentile(gaps, 99) * 1e3, gap_count=len(gaps))
    return out


def legion_scale(engine: Any, store: Any, kind: str, quick: bool) -> dict[str, Any]:
    """(e): per-step time of one run at 100 and at 10,000 (`kind` seq: sequential steps; each:
    for_each items). 1,000 is measured first; when a fit a + b*N through 100 and 1,000 predicts
    more than SCALE_BUDGET_S at 10,000, 2,000 is measured instead (--quick stops at 500)."""
    def once(n: int) -> dict[str, Any]:
        r = legion_chains(engine, store, f"bench-{kind}-{n}", 1, timeout=max(TIMEOUT_S, 4 * SCALE_BUDGET_S))
        return {"n": n, "seconds": r["seconds"], "steps": r["steps"], "per_step_ms": r["seconds"] / r["steps"] * 1e3}

    small = min((once(100) for _ in range(1 if quick else 3)), key=lambda r: r["per_step_ms"])
    mid = once(500 if quick else 1000)
    out: dict[str, Any] = {"100": small, "mid": mid}
    if quick:
        out["big"] = mid
        return out
    b = max(0.0, (mid["per_step_ms"] - small["per_step_ms"]) / 900)
    a = mid["per_step_ms"] - b * 1000
    estimate = 10_000 * (a + b * 10_000) / 1e3
    big = 10_000 if estimate <= SCALE_BUDGET_S else 2000
    out["estimate_10000_s"] = estimate
    out["big"] = once(big)
    if big != 10_000:
        out["note"] = (f"10,000 predicted to take {estimate:,.0f} s (> {SCALE_BUDGET_S:.0f} s): measured at 2,000 instead")
    return out


def legion_backend(backend: str, amqp_url: str, quick: bool, scale: bool, profile: bool) -> dict[str, Any]:
    """Every Legion figure on one database: in-process engine, then worker subprocesses."""
    from legion.engine.chains import apply_items, load_chains
    from legion.engine.data.store import Store
    from legion.engine.registry import Registry
    from legion.engine.runtime import Engine
    from legion.engine.transport.amqp import AmqpTransport

    n = 100 if quick else 500
    reps = 1 if quick else 3
    out: dict[str, Any] = {"singles": n, "repetitions": reps}
    tmp = tempfile.TemporaryDirectory(prefix="legion-bench-")
    db_url = create_postgres() if backend == "postgresql" else f"sqlite:///{tmp.name}/legion.db"
    store = None
    workers: LegionWorkers | None = None
    try:
        store = Store(db_url)
        registry = Registry.discover()
        folder = os.path.join(tmp.name, "chains")
        os.mkdir(folder)
        sizes = [100, 1000, 2000, 10_000] if scale and not quick else [100, 500] if scale else [CHAIN_STEPS]
        chain_files(folder, sizes, sizes if scale else [])
        files, _ = load_chains([folder], registry)
        store.apply_chains(apply_items(files))

        def measure(engine: Any, where: str) -> None:
            legion_singles(engine, store, 20)  # warm-up: connections, programs, the workers' first deliveries
            legion_chains(engine, store, f"bench-seq-{CHAIN_STEPS}", 1)
            out[where] = {
                "single": legion_repeat(reps, lambda: legion_singles(engine, store, n), "tasks_per_s"),
                "chains": legion_repeat(reps, lambda: legion_chains(engine, store, f"bench-seq-{CHAIN_STEPS}", CHAINS),
                                        "steps_per_s"),
            }

        # in-process: the engine that submits also consumes, with LEGION_THREADS worker threads
        engine = Engine(registry, store, workers=LEGION_THREADS, transport=AmqpTransport(amqp_url, name="legion-bench-inproc"))
        engine.start()
        try:
            measure(engine, "in_process")
        except Exception as exc:  # noqa: BLE001 -- reported; the subprocess variant still runs
            out["in_process"] = {"error": failed(exc)}
        finally:
            engine.stop()
            engine.transport.close()
        if profile:
            out["profile"] = legion_profile(registry, store, amqp_url)

        # separate processes: `legion start --role worker`, this process only submits
        workers = LegionWorkers(LEGION_PROCESSES, amqp_url, db_url, os.path.join(tmp.name, "home"))
        workers.wait_ready()
        # Started, as `legion chain run` starts its engine: it deletes the outbox rows of the
        # messages it published once the broker confirmed them (left there, the workers'
        # sweeper would publish them again as left behind, duplicates that load the workers).
        client = Engine(registry, store, workers=1, transport=AmqpTransport(amqp_url, name="legion-bench-client"), consume=False).start()
        try:
            try:
                measure(client, "workers")
            except Exception as exc:  # noqa: BLE001
                out["workers"] = {"error": failed(exc)}
            if scale:
                for kind in ("seq", "each"):
                    try:
                        out[f"scale_{kind}"] = legion_scale(client, store, kind, quick)
                    except Exception as exc:  # noqa: BLE001
                        out[f"scale_{kind}"] = {"error": failed(exc)}
        finally:
            client.stop()
    finally:
        if workers is not None:
            workers.stop()
        if store is not None:
            store.close()
        if backend == "postgresql":
            drop_postgres(db_url)
        tmp.cleanup()
    return out


def legion_profile(registry: Any, store: Any, amqp_url: str) -> dict[str, Any]:
    """cProfile of the worker threads of an in-process shared engine while it runs 5 x 100-step
    chains (after a warm-up); the AMQP I/O thread is not profiled. Top 15 by tottime and by
    cumulative time, as text."""
    import cProfile
    import io
    import pstats

    from legion.engine.runtime import Engine

    profiles: list[cProfile.Profile] = []

    class ProfiledEngine(Engine):
        def _work(self, control: bool = False) -> None:
            prof = cProfile.Profile()
            profiles.append(prof)
            prof.enable()
            try:
                super()._work(control)
            finally:
                prof.disable()

    from legion.engine.transport.amqp import AmqpTransport

    engine = ProfiledEngine(registry, store, workers=LEGION_THREADS, transport=AmqpTransport(amqp_url, name="legion-bench-profile"))
    engine.start()
    try:
        legion_chains(engine, store, f"bench-seq-{CHAIN_STEPS}", 1)
        for p in profiles:
            p.disable()
        for p in profiles:
            p.clear()
        for p in profiles:
            p.enable()
        result = legion_chains(engine, store, f"bench-seq-{CHAIN_STEPS}", CHAINS)
    finally:
        engine.stop()
        engine.transport.close()
    text = io.StringIO()
    stats = pstats.Stats(*profiles, stream=text)
    stats.strip_dirs()
    for order in ("tottime", "cumulative"):
        text.write(f"--- top 15 by {order} ---\n")
        stats.sort_stats(order).print_stats(15)
    return {"steps": result["steps"], "seconds": result["seconds"], "total_tt": stats.total_tt, "text": text.getvalue()}


def legion_figures(amqp_url: str, quick: bool, tag: str = "", backends: tuple[str, ...] = ("postgresql", "sqlite"),
                   profile: bool = False) -> dict | None:
    """Legion on the RabbitMQ runtime, measured like (a) and (d): persistent messages, confirmed
    publishes (Legion's AMQP transport always waits for confirms), acks after the outcome is
    kept. Returns

        {"single_per_s": ..,        # (b) N single no-op step runs, first submit until the N-th ended
         "chain_steps_per_s": ..,   # (c) 5 concurrent 100-step sequential chains of core.util.noop
         "chain_p50_ms": .., "chain_p99_ms": ..,   # (c) step-to-step latency within one chain
         "postgresql": {..}, "sqlite": {..}}       # every figure per database (and "error" when one failed)

    The headline figures are PostgreSQL's with the workers in separate processes.
    """
    for name in ("pika", "legion"):
        logging.getLogger(name).setLevel(logging.WARNING)
    vhost = Vhost(amqp_url, tag or uuid.uuid4().hex[:12])
    out: dict[str, Any] = {"confirms": True, "broker": vhost.note, "threads": LEGION_THREADS, "processes": LEGION_PROCESSES}
    try:
        for backend in backends:
            try:
                out[backend] = legion_backend(backend, vhost.url, quick, scale=backend == "postgresql",
                                              profile=profile and backend == "postgresql")
            except Exception as exc:  # noqa: BLE001 -- reported; the other database still runs
                out[backend] = {"error": failed(exc)}
    finally:
        vhost.delete()
    head = out.get("postgresql") or {}
    out.update(single_per_s=get(head, "workers", "single", "tasks_per_s"),
               chain_steps_per_s=get(head, "workers", "chains", "steps_per_s"),
               chain_p50_ms=get(head, "workers", "chains", "p50_ms"), chain_p99_ms=get(head, "workers", "chains", "p99_ms"))
    if out["single_per_s"] is None and out["chain_steps_per_s"] is None:
        errors = [f"{k}: {v.get('error') or get_error(v)}" for k, v in out.items() if isinstance(v, dict)]
        out["error"] = "; ".join(errors) or "no figure"
    return out


def get_error(d: dict[str, Any]) -> str:
    return "; ".join(f"{k}: {v['error']}" for k, v in d.items() if isinstance(v, dict) and v.get("error")) or "no figure"


# ================================================================ (d) Celery


def celery_broker_url(amqp_url: str) -> str:
    parts = urlsplit(amqp_url)
    if parts.scheme not in ("amqp", "pyamqp"):
        raise ValueError(f"the Celery baseline speaks amqp:// only here, not {parts.scheme}://")
    return urlunsplit(("pyamqp", *parts[1:]))


def make_celery_app(amqp_url: str, queue: str, redis_url: str, concurrency: int, confirm: bool = True) -> Any:
    """The app both the client and the worker subprocess build: the same tasks, queue and
    settings. Task names are explicit so they do not depend on this module's name. `confirm`
    False only for the client of the (d1) reference row."""
    import redis
    from celery import Celery

    app = Celery("legion-bench-throughput", broker=celery_broker_url(amqp_url))
    app.conf.update(
        task_default_queue=queue,
        task_default_exchange=queue,
        task_default_routing_key=queue,
        task_default_delivery_mode="persistent",
        task_acks_late=True,
        worker_prefetch_multiplier=max(1, PREFETCH // concurrency),
        task_ignore_result=True,
        broker_transport_options={"confirm_publish": confirm},
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
    )
    store = redis.Redis.from_url(redis_url)
    lock = threading.Lock()
    counts: dict[str, int] = {}
    stamps: list[tuple[str, int, int, float]] = []

    @app.task(name="bench.single", shared=False)
    def single(run_id: str, total: int) -> None:
        with lock:
            counts[run_id] = counts.get(run_id, 0) + 1
            if counts[run_id] == total:
                store.rpush(f"{run_id}:done", time.time())

    def record(run_id: str, chain_no: int, i: int, n: int) -> None:
        now = time.time()
        with lock:
            stamps.append((run_id, chain_no, i, now))
            if i == n - 1:  # this chain is over: hand every stamp kept so far to Redis
                taken = stamps[:]
                stamps.clear()
                pipe = store.pipeline(transaction=False)
                for rid, c, k, t in taken:
                    pipe.rpush(f"{rid}:stamps", f"{c} {k} {t!r}")
                pipe.rpush(f"{run_id}:done", now)
                pipe.execute()

    @app.task(name="bench.step", shared=False)
    def step(run_id: str, chain_no: int, i: int, n: int) -> None:
        record(run_id, chain_no, i, n)

    @app.task(name="bench.hop", shared=False)
    def hop(run_id: str, chain_no: int, i: int, n: int) -> None:
        record(run_id, chain_no, i, n)
        if i + 1 < n:
            hop.apply_async((run_id, chain_no, i + 1, n))

    app.bench_store = store  # type: ignore[attr-defined]
    return app


def celery_worker_main() -> None:
    """`throughput.py --celery-worker`: the worker subprocess; its settings come from the
    environment the parent set."""
    from celery.signals import worker_ready

    env = os.environ
    pool, concurrency = env["BENCH_CELERY_POOL"], int(env["BENCH_CELERY_CONCURRENCY"])
    app = make_celery_app(env["BENCH_AMQP_URL"], env["BENCH_QUEUE"], env["BENCH_REDIS_URL"], concurrency)

    @worker_ready.connect
    def ready(**_: Any) -> None:
        app.bench_store.rpush(env["BENCH_READY_KEY"], os.getpid())

    app.worker_main(argv=["worker", f"--pool={pool}", f"--concurrency={concurrency}", "--loglevel=WARNING",
                          "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", env["BENCH_QUEUE"],
                          "-n", f"{env['BENCH_QUEUE']}@%h"])


class CeleryWorker:
    """The worker subprocess: started, waited for (it says it is ready through Redis), stopped
    with SIGTERM (a warm shutdown), killed if it does not stop."""

    def __init__(self, amqp_url: str, queue: str, redis_url: str, pool: str, concurrency: int, ready_key: str) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="legion-bench-celery-", suffix=".log", delete=False)
        env = dict(os.environ, BENCH_AMQP_URL=amqp_url, BENCH_QUEUE=queue, BENCH_REDIS_URL=redis_url,
                   BENCH_CELERY_POOL=pool, BENCH_CELERY_CONCURRENCY=str(concurrency), BENCH_READY_KEY=ready_key)
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--celery-worker"], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.ready_key = ready_key

    def wait_ready(self, store: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if store.blpop([self.ready_key], timeout=1):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Celery worker exited with {self.proc.returncode}: {self.tail()}")
        raise RuntimeError(f"the Celery worker was not ready within {timeout:.0f} s: {self.tail()}")

    def tail(self) -> str:
        try:
            with open(self.log.name, errors="replace") as f:
                return " | ".join(f.read().strip().splitlines()[-8:]) or "(no output)"
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        os.unlink(self.log.name)


def wait_done(store: Any, run_id: str, count: int, timeout: float) -> list[float]:
    """The worker's time.time() of each of `count` completions of `run_id`."""
    ends: list[float] = []
    deadline = time.monotonic() + timeout
    while len(ends) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"{len(ends)} of {count} completions within {timeout:.0f} s")
        got = store.blpop([f"{run_id}:done"], timeout=max(1, int(min(left, 5))))
        if got:
            ends.append(float(got[1]))
    return ends


def celery_singles(app: Any, n: int) -> dict[str, Any]:
    store, single = app.bench_store, app.tasks["bench.single"]
    run_id = f"legion-bench:{uuid.uuid4().hex}"
    t0 = time.time()
    for _ in range(n):
        single.apply_async((run_id, n))
    sent = time.time()
    (end,) = wait_done(store, run_id, 1, TIMEOUT_S)
    store.delete(f"{run_id}:done")
    return {"tasks_per_s": n / (end - t0), "send_per_s": n / (sent - t0)}


def celery_chains(app: Any, hop_by_hop: bool) -> dict[str, Any]:
    from celery import chain

    store = app.bench_store
    run_id = f"legion-bench:{uuid.uuid4().hex}"
    if hop_by_hop:
        hop = app.tasks["bench.hop"]
        starts = [lambda c=c: hop.apply_async((run_id, c, 0, CHAIN_STEPS)) for c in range(CHAINS)]
    else:
        step = app.tasks["bench.step"]
        canvases = [chain(*[step.si(run_id, c, i, CHAIN_STEPS) for i in range(CHAIN_STEPS)]) for c in range(CHAINS)]
        starts = [canvas.apply_async for canvas in canvases]
    t0 = time.time()
    for start in starts:
        start()
    ends = wait_done(store, run_id, CHAINS, TIMEOUT_S)
    raw = store.lrange(f"{run_id}:stamps", 0, -1)
    store.delete(f"{run_id}:done", f"{run_id}:stamps")
    per_chain: dict[int, dict[int, float]] = {}
    for item in raw:
        c, i, t = item.decode().split()
        per_chain.setdefault(int(c), {})[int(i)] = float(t)
    gaps: list[float] = []
    for c in range(CHAINS):
        got = per_chain.get(c, {})
        if len(got) != CHAIN_STEPS:
            raise RuntimeError(f"chain {c} recorded {len(got)} of {CHAIN_STEPS} steps")
        gaps += [got[i + 1] - got[i] for i in range(CHAIN_STEPS - 1)]
    return {"steps_per_s": CHAINS * CHAIN_STEPS / (max(ends) - t0), "gaps": gaps}


def celery_figures(amqp_url: str, redis_url: str, quick: bool, tag: str, pool: str, concurrency: int) -> dict[str, Any]:
    """(d): {'d1': .., 'd2': .., 'd3': ..} or {'error': ..} when the worker could not run."""
    out: dict[str, Any] = {}
    try:
        import celery
        import kombu
        import pika
        import redis
    except Exception as exc:  # noqa: BLE001
        return {"error": f"cannot import: {failed(exc)} (pip install -e '.[bench,test]')"}
    out.update(version=celery.__version__, kombu=kombu.__version__, pool=pool, concurrency=concurrency,
               confirm_publish=True, prefetch=max(1, PREFETCH // concurrency) * concurrency)
    for name in ("celery", "kombu", "amqp"):
        logging.getLogger(name).setLevel(logging.ERROR)
    n = 500 if quick else 5000
    reps = 1 if quick else 3
    out["tasks"] = n
    out["repetitions"] = reps
    queue = f"bench.{tag}.celery"
    ready_key = f"legion-bench:{tag}:ready"
    worker: CeleryWorker | None = None
    try:
        pika.BlockingConnection(pika.URLParameters(amqp_url)).close()  # fail now, not after the worker's retries
        store = redis.Redis.from_url(redis_url)
        store.ping()
        app = make_celery_app(amqp_url, queue, redis_url, concurrency)
        worker = CeleryWorker(amqp_url, queue, redis_url, pool, concurrency, ready_key)
        worker.wait_ready(store)
        # warm-up: connections, producer pools, the worker's first deliveries
        celery_singles(app, 50)
        celery_chains(app, hop_by_hop=False)
        unconfirmed = make_celery_app(amqp_url, queue, redis_url, concurrency, confirm=False)
        celery_singles(unconfirmed, 50)
        scenarios: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("d1", lambda: celery_singles(app, n)),
            ("d1_unconfirmed", lambda: celery_singles(unconfirmed, n)),
            ("d2", lambda: celery_chains(app, hop_by_hop=False)),
            ("d3", lambda: celery_chains(app, hop_by_hop=True)),
        ]
        for key, once in scenarios:
            try:
                runs = [once() for _ in range(reps)]
            except Exception as exc:  # noqa: BLE001 -- reported; the next scenario still runs
                out[key] = {"error": failed(exc)}
                if worker.proc.poll() is not None:
                    raise RuntimeError(f"the Celery worker exited with {worker.proc.returncode}: {worker.tail()}") from exc
                continue
            if key.startswith("d1"):
                out[key] = {f: best(runs, f)[f] for f in runs[0]}
            else:
                gaps = [g for r in runs for g in r["gaps"]]
                out[key] = {"steps_per_s": best(runs, "steps_per_s")["steps_per_s"],
                            "p50_ms": percentile(gaps, 50) * 1e3, "p99_ms": percentile(gaps, 99) * 1e3,
                            "gaps": len(gaps)}
    except Exception as exc:  # noqa: BLE001 -- the Celery baseline must not stop the benchmark
        out["error"] = failed(exc)
    finally:
        if worker is not None:
            worker.stop()
        if worker is not None:
            try:
                admin = pika.BlockingConnection(pika.URLParameters(amqp_url))
                try:
                    ch = admin.channel()
                    ch.queue_delete(queue)
                    ch.exchange_delete(queue)
                finally:
                    admin.close()
            except Exception as exc:  # noqa: BLE001
                out["cleanup_error"] = failed(exc)
        try:
            redis.Redis.from_url(redis_url).delete(ready_key)
        except Exception:  # noqa: BLE001,S110 -- Redis was unreachable: nothing was written
            pass
    return out


# ================================================================ printing




def msec(v: float | None) -> str:
    return "-" if v is None else f"{v:,.2f} ms"






def get(d: dict[str, Any] | None, *keys: str) -> float | None:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d if isinstance(d, int | float) else None


def get_dict(d: dict[str, Any] | None, *keys: str) -> dict[str, Any] | None:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d if isinstance(d, dict) else None


def print_legion(legion: dict[str, Any] | None) -> None:
    if legion is None:
        print("  not measured.")
        return
    if legion.get("broker"):
        print("  Legion's AMQP transport: publisher confirms ON (always), persistent messages; a step's message is acked")
        print(f"  once its outcome is committed and its successors confirmed. Broker: {legion['broker']}.")
        print(f"  'workers': {legion['processes']} `legion start --role worker --no-apply --workers {legion['threads']}` subprocesses;"
              " this process only submits")
        print(f"  (one after another). 'in-process': one Engine with {legion['threads']} worker threads that submits and consumes.")
        print("  Runs are polled in the database; rates are timed from the first submit to the last ended_at (the worker's")
        print("  clock); step-to-step = started_at(k+1) - finished_at(k) from the task rows, pooled over the timed runs.")
    if legion.get("error"):
        print(f"  ! Legion failed: {legion['error']}")
    rows = []
    notes = []
    for backend in ("postgresql", "sqlite"):
        b = legion.get(backend)
        if not isinstance(b, dict):
            continue
        if b.get("error"):
            notes.append(f"! {backend} failed: {b['error']}")
            continue
        for where, label in (("workers", f"{legion['processes']} worker processes"), ("in_process", "in-process")):
            f = b.get(where) or {}
            if f.get("error"):
                notes.append(f"! {backend}, {label} failed: {f['error']}")
            rows.append([f"{backend}, {label}", rate(get(f, "single", "tasks_per_s")), rate(get(f, "single", "submit_per_s")),
                         rate(get(f, "chains", "steps_per_s")), msec(get(f, "chains", "p50_ms")), msec(get(f, "chains", "p99_ms"))])
    if rows:
        first = next(v for v in legion.values() if isinstance(v, dict) and "singles" in v)
        print(f"  (b) {first['singles']:,} single runs of a 1-step core.util.noop chain; (c) {CHAINS} x {CHAIN_STEPS}-step chains at"
              f" once; best of {first['repetitions']}.")
        table(["database, workers", "(b) runs/s", "submits/s", "(c) steps/s", "p50 step-to-step", "p99 step-to-step"], rows)
    for kind, what in (("seq", "sequential chain"), ("each", "for_each")):
        scale = get_dict(legion, "postgresql", f"scale_{kind}")
        if scale is None:
            continue
        if scale.get("error"):
            notes.append(f"! (e) {what} failed: {scale['error']}")
            continue
        cells = [f"(e) {what}, RabbitMQ + PostgreSQL, worker processes"]
        for key in ("100", "mid", "big"):
            f = scale.get(key) or {}
            cells.append(f"{f.get('n', 0):,}: {msec(f.get('per_step_ms'))}")
        small, big = get(scale, "100", "per_step_ms"), get(scale, "big", "per_step_ms")
        cells.append("-" if not small or big is None else f"{big / small:.2f}x")
        rows_e = [cells]
        table(["scaling", "per step", "per step", "per step", "largest / 100"], rows_e)
        if scale.get("note"):
            notes.append(f"(e) {what}: {scale['note']}")
    for line in notes:
        print(f"  {line}")
    prof = get_dict(legion, "postgresql", "profile")
    if prof:
        print(f"  Profile (--legion-profile): worker threads of an in-process engine, {prof['steps']} steps in {prof['seconds']:.1f} s;"
              f" {prof['total_tt']:.1f} s of thread time ({prof['total_tt'] / prof['steps'] * 1e3:.1f} ms per step, 4 threads)")
        for line in prof["text"].splitlines():
            if line.strip():
                print("    " + line)


# ================================================================ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer messages and tasks, one repetition")
    parser.add_argument("--json", action="store_true", help="also print one JSON document of all figures at the end")
    parser.add_argument("--amqp-url", default=os.environ.get("LEGION_AMQP_URL") or DEFAULT_AMQP_URL,
                        help=f"the RabbitMQ to measure (default LEGION_AMQP_URL, else {DEFAULT_AMQP_URL.replace('%', '%%')})")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="where the Celery worker reports (default %(default)s)")
    parser.add_argument("--celery-pool", choices=("threads", "solo"), default="threads")
    parser.add_argument("--celery-concurrency", type=int, default=None, help="threads of the thread pool (default 4)")
    parser.add_argument("--celery-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--legion-db", default="postgresql,sqlite",
                        help="databases Legion is measured on, comma-separated: postgresql, sqlite (default %(default)s)")
    parser.add_argument("--legion-profile", action="store_true",
                        help="also cProfile the worker threads of an in-process engine running 5 x 100-step chains")
    args = parser.parse_args(argv)
    if args.celery_worker:
        celery_worker_main()
        return 0
    concurrency = 1 if args.celery_pool == "solo" else (args.celery_concurrency or 4)

    began = time.perf_counter()
    tag = uuid.uuid4().hex[:12]
    shown_url = urlunsplit(urlsplit(args.amqp_url)._replace(netloc=urlsplit(args.amqp_url).hostname or ""))
    print("RabbitMQ throughput: raw pika ceiling, Celery 5, Legion")
    print(f"  Broker {shown_url} (port {urlsplit(args.amqp_url).port or 5672}); queues bench.{tag}.*, deleted at the end.")
    print(f"  Persistent messages, durable classic queues, manual acks, prefetch {PREFETCH}. Machine: {os.cpu_count()} CPU cores,"
          f" {platform.system()} {platform.machine()}, Python {platform.python_version()}.{' (--quick)' if args.quick else ''}")

    # -- (a) ------------------------------------------------------------------------------
    raw = raw_pika_figures(args.amqp_url, args.quick, tag)
    heading("(a) raw pika: the ceiling (SelectConnection; confirms pipelined, up to "
            f"{CONFIRM_WINDOW:,} awaiting)")
    if "error" in raw:
        print(f"  ! raw pika could not run: {raw['error']}")
    else:
        print(f"  pika {raw['pika']}; N={raw['messages']:,} messages of {len(BODY)} bytes; "
              f"best of {raw['repetitions']} per figure.")
        rows = []
        for key, label in (("confirms_on", "confirms on"), ("confirms_off", "confirms off")):
            f = raw.get(key, {})
            if "error" in f:
                rows.append([label, "failed", "-", "-"])
            else:
                rows.append([label, rate(f["publish_per_s"]), rate(f["consume_per_s"]), rate(f["end_to_end_per_s"])])
        table(["variant", "publish msgs/s", "consume msgs/s", "end-to-end msgs/s"], rows)
        for key in ("confirms_on", "confirms_off"):
            if "error" in raw.get(key, {}):
                print(f"  ! {key.replace('_', ' ')} failed: {raw[key]['error']}")
        print("  End-to-end: publisher and consumer in two threads of this process, two connections; timed from")
        print("  the first publish to the N-th ack.")

    # -- (b), (c) ---------------------------------------------------------------------------
    heading("(b), (c), (e) Legion on the RabbitMQ runtime")
    backends = tuple(b for b in args.legion_db.split(",") if b)
    try:
        legion = legion_figures(args.amqp_url, args.quick, tag, backends, profile=args.legion_profile)
    except Exception as exc:  # noqa: BLE001 -- reported; the baselines still run
        legion = {"error": failed(exc)}
    print_legion(legion)

    # -- (d) ------------------------------------------------------------------------------
    cel = celery_figures(args.amqp_url, args.redis_url, args.quick, tag, args.celery_pool, concurrency)
    heading(f"(d) Celery on the same RabbitMQ ({args.celery_pool} pool, worker subprocess)")
    if cel.get("version"):
        print(f"  Celery {cel['version']}, kombu {cel['kombu']}; pool={cel['pool']} concurrency={cel['concurrency']}, "
              f"prefetch {cel['prefetch']}, acks_late, persistent, no result backend,")
        print("  publisher confirms ON (confirm_publish=True: kombu waits for each confirm before returning).")
    if cel.get("error"):
        print(f"  ! Celery could not run (fully): {cel['error']}")
    if "tasks" in cel:
        rows = []
        d1 = cel.get("d1", {})
        rows.append([f"(d1) {cel['tasks']:,} single no-op tasks", rate(get(d1, "tasks_per_s")), "-", "-",
                     f"sending alone {rate(get(d1, 'send_per_s'))}/s" if get(d1, "send_per_s") else ""])
        d1u = cel.get("d1_unconfirmed", {})
        rows.append(["(d1) the same, sender's confirms off", rate(get(d1u, "tasks_per_s")), "-", "-",
                     (f"sending alone {rate(get(d1u, 'send_per_s'))}/s; reference only" if get(d1u, "send_per_s")
                      else "reference only")])
        for key, label in (("d2", "celery.chain"), ("d3", "hop-by-hop apply_async")):
            f = cel.get(key, {})
            rows.append([f"({key}) {CHAINS} x {CHAIN_STEPS}-step {label}", rate(get(f, "steps_per_s")),
                         msec(get(f, "p50_ms")), msec(get(f, "p99_ms")), ""])
        table(["scenario", "tasks or steps/s", "p50 step-to-step", "p99 step-to-step", "note"], rows)
        for key in ("d1", "d1_unconfirmed", "d2", "d3"):
            if isinstance(cel.get(key), dict) and cel[key].get("error"):
                print(f"  ! ({key}) failed: {cel[key]['error']}")
        print(f"  Best of {cel['repetitions']} for rates; latencies pooled over the timed runs (the worker's time.time()).")
    if cel.get("cleanup_error"):
        print(f"  ! the Celery queue could not be deleted: {cel['cleanup_error']}")

    # -- (f) ------------------------------------------------------------------------------
    floor = floor_figures(args.quick)
    print_floor(floor)

    # -- ratios and targets -------------------------------------------------------------------
    heading("RATIOS AND TARGETS")
    raw_e2e = get(raw, "confirms_on", "end_to_end_per_s")
    checks: list[dict[str, Any]] = []

    def row(name: str, ours: float | None, theirs: float | None, target: float, higher_better: bool, shown: Callable[[float | None], str]) -> list[str]:
        ratio = None if ours is None or theirs is None or not theirs else ours / theirs
        if ratio is None:
            status = "NOT MEASURED"
        elif higher_better:
            status = "MET" if ratio >= target else "NOT MET"
        else:
            status = "MET" if ratio <= target else "NOT MET"
        want = f">= {target:g}x" if higher_better else f"<= {target:g}x"
        checks.append({"figure": name, "legion": ours, "baseline": theirs, "ratio": ratio, "target": want, "status": status})
        return [name, shown(ours), shown(theirs), "-" if ratio is None else f"{ratio:.2f}x", want, status]

    legion = legion if legion and not legion.get("error") else {}
    d2 = cel.get("d2") if isinstance(cel.get("d2"), dict) else {}
    d3 = cel.get("d3") if isinstance(cel.get("d3"), dict) else {}
    rows = [
        row("single tasks/s vs Celery (d1)", get(legion, "single_per_s"), get(cel, "d1", "tasks_per_s"),
            TARGET_SINGLE_VS_CELERY, True, rate),
        row("chain steps/s vs celery.chain (d2)", get(legion, "chain_steps_per_s"), get(d2, "steps_per_s"),
            TARGET_CHAIN_VS_CELERY, True, rate),
        row("chain steps/s vs hop-by-hop (d3)", get(legion, "chain_steps_per_s"), get(d3, "steps_per_s"),
            TARGET_CHAIN_VS_CELERY, True, rate),
        row("p50 step-to-step vs celery.chain (d2)", get(legion, "chain_p50_ms"), get(d2, "p50_ms"),
            TARGET_P50_VS_CELERY, False, msec),
        row("p50 step-to-step vs hop-by-hop (d3)", get(legion, "chain_p50_ms"), get(d3, "p50_ms"),
            TARGET_P50_VS_CELERY, False, msec),
        row("single tasks/s vs raw pika end-to-end, confirms on", get(legion, "single_per_s"), raw_e2e,
            TARGET_VS_RAW, True, rate),
    ]
    for kind, what in (("seq", "sequential chain"), ("each", "for_each")):
        scale = get_dict(legion, "postgresql", f"scale_{kind}")
        big_n = get(scale, "big", "n")
        rows.append(row(f"(e) per step, {what} of {big_n or 10_000:,.0f} vs 100", get(scale, "big", "per_step_ms"),
                        get(scale, "100", "per_step_ms"), TARGET_SCALING, False, msec))
    table(["figure", "Legion", "baseline", "Legion / baseline", "target", "status"], rows)
    print("  Celery's own ratio to the raw ceiling: "
          + ("-" if get(cel, "d1", "tasks_per_s") is None or not raw_e2e else
             f"(d1) {get(cel, 'd1', 'tasks_per_s') / raw_e2e:.0%} of raw pika end-to-end with confirms"))
    if "error" not in floor:
        print("  The throughput targets against the database floor (f): what a target asks, what the bare statements reach,")
        print("  and what Legion reaches of them.")
        frows = []
        for name, times, base, floor_key, ours in (
                ("single runs/s (1.5x d1)", TARGET_SINGLE_VS_CELERY, get(cel, "d1", "tasks_per_s"), "single_per_s", get(legion, "single_per_s")),
                ("chain steps/s (3x d2)", TARGET_CHAIN_VS_CELERY, get(d2, "steps_per_s"), "chain_steps_per_s", get(legion, "chain_steps_per_s")),
                ("chain steps/s (3x d3)", TARGET_CHAIN_VS_CELERY, get(d3, "steps_per_s"), "chain_steps_per_s", get(legion, "chain_steps_per_s"))):
            asked = None if base is None else times * base
            frows.append([name, rate(asked), rate(floor[floor_key]),
                          "-" if asked is None else ("above the floor" if asked > floor[floor_key] else "within the floor"),
                          rate(ours), "-" if ours is None else f"{ours / floor[floor_key]:.2f}x"])
        table(["target", "asks", "floor (f)", "the target is", "Legion", "Legion / floor"], frows)
    elapsed = time.perf_counter() - began
    print(f"\nDone in {elapsed:,.1f} s.")

    if args.json:
        doc = {
            "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "quick": args.quick,
            "raw_pika": raw,
            "legion": legion or None,
            "celery": cel,
            "floor": floor,
            "targets": checks,
            "elapsed_s": elapsed,
        }
        print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    run_main(main)
