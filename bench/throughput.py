"""Message throughput on RabbitMQ: the ceiling raw pika reaches, what Celery 5 reaches on the
same broker, and (once the RabbitMQ runtime lands) what Legion reaches, measured in the same
invocation.

    .venv/bin/python bench/throughput.py [--quick] [--json] [--amqp-url URL] [--redis-url URL]

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

(b), (c) Legion: single steps and chains on the RabbitMQ runtime; filled in when it lands
    (until then the table says "not measured" and the targets are NOT MEASURED).

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

`--quick`: N=2,000 raw messages and 500 Celery tasks, one timed repetition; otherwise N=20,000
and 5,000, best of 3 (after one warm-up of the Celery worker). `--json` also prints one JSON
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
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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


def legion_figures(amqp_url: str, quick: bool) -> dict | None:
    """Legion on the RabbitMQ runtime, measured like (a) and (d): persistent messages, confirmed
    publishes, acks after the outcome is kept. To return, when measured:

        {"single_per_s": ..,        # (b) N single no-op step runs, first start until the N-th finished
         "chain_steps_per_s": ..,   # (c) 5 concurrent 100-step sequential chains of core.util.noop
         "chain_p50_ms": .., "chain_p99_ms": ..}   # (c) step-to-step latency within one chain

    (plus "error" when it failed). Returns None until then.
    """
    # Filled in when the RabbitMQ runtime lands (legion.engine.transport.amqp and the workers
    # consuming from it); until then Legion's columns say "not measured".
    return None


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


def rate(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def msec(v: float | None) -> str:
    return "-" if v is None else f"{v:,.2f} ms"


def table(headers: list[str], rows: list[list[str]], left: int = 1) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=False)))

    print("  " + line(headers))
    print("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        print("  " + line(r))


def heading(text: str) -> None:
    print()
    print(text)
    print("=" * len(text))


def get(d: dict[str, Any] | None, *keys: str) -> float | None:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d if isinstance(d, int | float) else None


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
    heading("(b), (c) Legion on the RabbitMQ runtime")
    try:
        legion = legion_figures(args.amqp_url, args.quick)
    except Exception as exc:  # noqa: BLE001 -- reported; the baselines still run
        legion = {"error": failed(exc)}
    if legion is None:
        print("  not measured yet: filled in when the RabbitMQ runtime lands.")
    elif legion.get("error"):
        print(f"  ! Legion failed: {legion['error']}")
    else:
        table(["figure", "value"], [["single steps/s", rate(get(legion, "single_per_s"))],
                                    ["chain steps/s", rate(get(legion, "chain_steps_per_s"))],
                                    ["p50 step-to-step", msec(get(legion, "chain_p50_ms"))],
                                    ["p99 step-to-step", msec(get(legion, "chain_p99_ms"))]])

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
    table(["figure", "Legion", "baseline", "Legion / baseline", "target", "status"], rows)
    print("  Celery's own ratio to the raw ceiling: "
          + ("-" if get(cel, "d1", "tasks_per_s") is None or not raw_e2e else
             f"(d1) {get(cel, 'd1', 'tasks_per_s') / raw_e2e:.0%} of raw pika end-to-end with confirms"))
    elapsed = time.perf_counter() - began
    print(f"\nDone in {elapsed:,.1f} s.")

    if args.json:
        doc = {
            "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "quick": args.quick,
            "raw_pika": raw,
            "legion": legion or None,
            "celery": cel,
            "targets": checks,
            "elapsed_s": elapsed,
        }
        print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:  # noqa: BLE001 -- the last resort: say what broke and exit non-zero
        traceback.print_exc()
        print("\nThe benchmark stopped on an unexpected error (above).", file=sys.stderr)
        sys.exit(1)
