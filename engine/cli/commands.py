"""`legion start`, `legion lex ...`, `legion task ...` and `legion run ...` commands."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from legion.dsl.durations import parse_duration
from legion.dsl.errors import BadInput
from legion.engine.cli.main import Context
from legion.engine.cli.output import dumps, table

PRESENCE_TTL = 5.0  # Redis: a node that has not said it is alive for this long is not
DB_BEAT_EVERY = 10  # Redis: the database's heartbeat every this many seconds (every second without Redis)


def print_run(ctx: Context, run: dict[str, Any]) -> int:
    """A run as `Service.get_run` gives it; exit 0 when it succeeded."""
    data, tasks = run, run["tasks"]

    def text() -> str:
        lines = [f"run {run['id']}  chain {run['chain_name']} v{run['chain_version']}  {run['status']}"]
        if run.get("error"):
            lines.append("error: " + run_error_line(run["error"], tasks))
        lines.append("output: " + dumps(run.get("output")))
        if run.get("usage"):
            u = run["usage"]
            cost = "unknown cost" if u["cost"] is None else f"${u['cost']:.6f}"
            lines.append(f"models: {u['calls']} call(s), {u['prompt_tokens']} tokens in, {u['completion_tokens']} out, {cost}, "
                         f"{u['latency_ms']:.0f} ms")
        lines.append("trace:")
        for t in tasks:
            extra = f" attempt {t['attempt']}" if (t.get("attempt") or 1) > 1 else ""
            extra += f" item {t['item_index']}" if t.get("item_index") is not None else ""
            if t.get("caller") is not None:  # a function the step called (a model's tool call)
                lines.append(f"  {t['number']:>4}   -> {t['function']:<17} {t['status']:<10} task {t['id']}, called by {t['caller']}")
                continue
            lines.append(f"  {t['number']:>4} {t['step']:<20} {t['status']:<10} task {t['id']}{extra}")
        return "\n".join(lines)

    ctx.out.data(data, text)
    return 0 if run["status"] == "succeeded" else 1


def run_error_line(error: dict[str, Any], tasks: list[dict[str, Any]]) -> str:
    """A run's error with its origin: the step, and the task that failed there (the last one
    of that step that failed), which `legion task show` opens."""
    line = error_line(error)
    step = error.get("step")
    if not step:
        return line
    failed = [t for t in tasks if t["step"] == step and t["status"] in ("failed", "timed_out") and t.get("caller") is None]
    line += f" at step {step!r}"
    if failed:
        task_id = max(failed, key=lambda t: t["number"])["id"]
        line += f", task {task_id} — legion task show {task_id}"
    return line


# -- start -------------------------------------------------------------------------------


def start(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.actors import ActorHost
    from legion.engine.scheduler import Scheduler

    role = getattr(args, "role", "all")
    server = None
    if args.port is not None:  # refused before anything starts when --no-auth is not on a loopback address
        from legion.engine.cli.api import api_server

        server = api_server(ctx, args.host, args.port, args.no_auth)
    engine = ctx.engine(args.workers, consume=role != "scheduler")
    ctx.use_engine(engine)
    engine.watchers.append(run_lines(ctx, args.verbose))
    applied: list[dict[str, Any]] = []
    if not args.no_apply:
        folders = args.chains or ([Path("chains")] if Path("chains").is_dir() else [Path(str(resources.files("legion.chains")))])
        applied = ctx.apply_chains(paths=[str(f) for f in folders])["applied"]
        engine.refresh_events()
    node = f"{ctx.settings.node}:{os.getpid()}"
    runners = sorted(q for q in engine.queues if q.startswith("lex."))

    def info() -> dict[str, Any]:
        return {"role": role, "runners": runners if engine.consume else [], "concurrency": engine.workers,
                "in_flight": len(engine._executing), "transport": "amqp" if engine.shared else "memory"}

    ctx.store.upsert_node(node, hostname=os.uname().nodename, pid=os.getpid(), status="running", info=info())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    scheduler = Scheduler(engine, ctx.store)
    from legion.engine.leases import leases_for

    actors = ActorHost(engine, leases_for(ctx.settings.redis_url, ctx.store))
    with engine:
        if role != "worker":
            scheduler.start()
            actors.start()
        from legion.engine.data.connect import redact

        where = f"RabbitMQ {redact(ctx.settings.amqp_url)}" if ctx.settings.amqp_url else "in this process"
        doing = {"all": f"{engine.workers} workers, schedules and actors", "worker": f"{engine.workers} workers",
                 "scheduler": "schedules and actors"}[role]
        ctx.out.progress(f"legion started on {node} ({role}): {doing}; steps run {where}; database {redact(ctx.settings.database_url)}")
        for r in applied:
            ctx.out.progress(f"  {r['action']:9} {r['name']}" + (f" v{r['version']}" if r.get("version") else ""))
        if server is not None:
            serving = threading.Thread(target=server.run, name="legion-api", daemon=True)
            serving.start()
            ctx.out.progress(f"  API on http://{args.host}:{args.port}/api ({'no auth' if args.no_auth else 'tokens'})")
        ctx.out.progress("Ctrl-C stops it")
        presence = getattr(engine.signals, "beat", None)  # Redis: alive every second there, in the database less often
        beats = 0
        while not stop.wait(1.0):
            if presence is not None:
                presence(node, dict(info(), host=os.uname().nodename, pid=os.getpid()), PRESENCE_TTL)
            if presence is None or beats % DB_BEAT_EVERY == 0:
                ctx.store.heartbeat(node, info=info())
            beats += 1
        if server is not None:
            server.should_exit = True
            serving.join(timeout=10)
        if role != "worker":
            actors.stop()
            scheduler.stop()
        if presence is not None:
            engine.signals.gone(node)
    ctx.store.heartbeat(node, status="stopped", info=info())
    ctx.out.data({"stopped": node, "applied": applied}, "stopped")
    return 0


def run_lines(ctx: Context, steps: bool) -> Any:
    """What `legion start` says of the runs it carries: a line when one starts (with what
    started it: manual, schedule, event, sub-chain) and when one ends (with its status and how
    long it took); with `steps`, a line per step run too."""
    def say(event: dict[str, Any]) -> None:
        kind, run = event["event"], event["run_id"]
        if kind == "run.started":
            ctx.out.progress(f"run {run} {event['chain']} started ({event['trigger']})")
        elif kind == "run.ended":
            took = ""
            if event.get("started_at"):
                seconds = (datetime.now(UTC) - datetime.fromisoformat(event["started_at"].replace("Z", "+00:00"))).total_seconds()
                took = f" in {seconds:.3f}s"
            ctx.out.progress(f"run {run} {event['chain']} {event['status']}{took}")
        elif steps and kind == "step.started":
            ctx.out.progress(f"  step {event['step']} of run {run} started (step run {event['number']}, attempt {event['attempt']})")
        elif steps and kind == "step.finished":
            ctx.out.progress(f"  step {event['step']} of run {run} {event['status']}")

    return say


# -- lex ---------------------------------------------------------------------------------


def lex_list(args: argparse.Namespace, ctx: Context) -> int:
    rows = ctx.list_extensions()
    ok, broken = [r for r in rows if r["status"] == "ok"], [r for r in rows if r["status"] == "broken"]

    def text() -> str:
        lines = []
        for ext in ok:
            version = f" {ext['version']}" if ext["version"] else ""
            lines.append(f"{ext['name']}{version}" + (f": {ext['description']}" if ext["description"] else ""))
            for r in ext["runners"]:
                lines.append(f"  {ext['name']}.{r['name']}  (queue {r['queue']})")
                for f in r["functions"]:
                    lines += _function_lines(f)
        if broken:
            lines.append("broken extensions (they failed to load; the others work):")
            for b in broken:
                lines.append(f"  {b['name']} ({b['entry_point']}): {b['error']}")
                lines.append(f"      hint: {b['hint']}")
        return "\n".join(lines) or "no extensions installed"

    ctx.out.data(sorted(ok + broken, key=lambda row: row["name"]), text)
    return 0


def _function_lines(f: dict[str, Any]) -> list[str]:
    """`ref(params)  [options]  - description`, then one line per parameter:
    `name: type = default — description` (`(required)` in place of a default)."""
    if f["error"]:
        return [f"    {f['ref']}  BROKEN: {f['error']}"]
    params = [f"{p['name']}{'' if p['required'] else '?'}: {p['type']}" for p in f["params"]]
    if f["args_schema"].get("additionalProperties"):
        params.append("**kwargs")
    options = []
    if f["actor"]["kind"] != "subscription":
        kind, interval, delay = f["actor"]["kind"], f["actor"]["interval"], f["actor"]["delay"]
        options.append(kind + (f" {interval:g}s" if interval else f" after {delay:g}s" if delay else ""))
    if f["timeout"] is not None:
        options.append(f"timeout {f['timeout']:g}s")
    if f["retry"]:
        options.append(f"retry {f['retry'].get('count', 0)}")
    if not f["expose"]:
        options.append("not exposed (API, MCP)")
    head = f"    {f['ref']}({', '.join(params)})" + (f"  [{', '.join(options)}]" if options else "")
    lines = [head + (f"  - {f['description']}" if f["description"] else "")]
    for p in f["params"]:
        default = " (required)" if p["required"] else f" = {dumps(p['default'])}"
        lines.append(f"        {p['name']}: {p['type']}{default}" + (f" — {p['description']}" if p["description"] else ""))
    return lines


def lex_create(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.scaffold import create_extension

    try:
        created = create_extension(args.name, Path(args.path))
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != args.path else ""
        raise BadInput(f"cannot create the extension in {args.path}{where}: {exc.strerror or exc} "
                       "(choose a folder you can write to with --path)") from None
    ctx.out.data({"created": str(created["root"]), "files": [str(f) for f in created["files"]]},
                 lambda: f"created {created['root']}\n" + "\n".join(f"  {f}" for f in created["files"])
                 + f"\nnext: pip install -e {created['root']} && legion lex list")
    return 0


# -- task --------------------------------------------------------------------------------


def task_run(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.cli.args import build_input, input_items

    items = input_items(args.args, (), args.input_json)
    spec = ctx.registry.function(args.function).spec  # NotFound (or a broken extension) before anything starts
    task = ctx.run_task(args.function, build_input(items, spec.args_schema()))
    ctx.out.data(task, lambda: (dumps(task["result"], indent=2) if task["status"] == "succeeded"
                                else f"task {task['id']} {task['status']}: {error_line(task['error'] or {})} (legion task show {task['id']})"))
    return 0 if task["status"] == "succeeded" else 1


def task_list(args: argparse.Namespace, ctx: Context) -> int:
    tasks = ctx.list_tasks(run_id=args.run_id, status=args.status, limit=args.limit)
    ctx.out.data(tasks, lambda: table(tasks, ["id", "run_id", "step", "function", "status", "attempt", "finished_at"]))
    return 0


def task_show(args: argparse.Namespace, ctx: Context) -> int:
    task = ctx.get_task(args.id)
    ctx.out.data(task, lambda: task_text(task))
    return 0


def task_text(task: dict[str, Any]) -> str:
    """A task for people: what ran, with what, and how it ended; a failure's traceback last."""
    lines = [f"task {task['id']}  {task['status']}"]

    def field(name: str, value: Any) -> None:
        text = value if isinstance(value, str) else dumps(value)
        if not isinstance(value, str) and len(text) > 100:
            text = dumps(value, indent=2)
        lines.append(f"  {name + ':':<10}" + text.replace("\n", "\n" + " " * 12))

    field("run", f"{task['run_id']}, step run {task['number']}")
    field("step", task["step"])
    field("function", task["function"])
    if task.get("caller") is not None:
        field("called by", f"step run {task['caller']} (as a tool)")
    field("attempt", str(task.get("attempt") or 1) + (f", item {task['item_index']}" if task.get("item_index") is not None else ""))
    started, finished = task.get("started_at"), task.get("finished_at")
    if isinstance(started, datetime):
        took = f" (took {(finished - started).total_seconds():.3f}s)" if isinstance(finished, datetime) else ""
        field("started", f"{started:%Y-%m-%d %H:%M:%S} UTC{took}")
    field("args", task.get("args"))
    if task.get("result") is not None or task["status"] == "succeeded":
        field("result", task.get("result"))
    error = task.get("error")
    if error:
        field("error", error_line(error))
        trace = error.get("traceback")
        if isinstance(trace, str) and trace.strip():
            lines.append("  traceback:")
            lines += ["      " + line for line in trace.rstrip("\n").splitlines()]
    return "\n".join(lines)


def error_line(error: dict[str, Any]) -> str:
    """`Type (ExceptionClass): message`; the exception class when the error carries one."""
    exception = f" ({error['exception']})" if error.get("exception") and error.get("exception") != error.get("type") else ""
    return f"{error.get('type')}{exception}: {error.get('message')}"


def task_logs(args: argparse.Namespace, ctx: Context) -> int:
    logs = ctx.task_logs(args.id)
    ctx.out.data(logs, lambda: table(logs, ["at", "level", "message"], "no log entries"))
    return 0


def task_purge(args: argparse.Namespace, ctx: Context) -> int:
    try:
        age = parse_duration(args.older_than)
    except ValueError as exc:
        raise BadInput(f"--older-than: {exc}") from None
    cutoff = datetime.now(UTC) - timedelta(seconds=age)
    result = ctx.store.purge_tasks(cutoff)
    ctx.out.data(result, lambda: f"purged {dumps(result)} (finished before {cutoff:%Y-%m-%d %H:%M:%S} UTC)")
    return 0


# -- run ---------------------------------------------------------------------------------


def run_list(args: argparse.Namespace, ctx: Context) -> int:
    runs = ctx.list_runs(chain=args.chain, status=args.status, limit=args.limit)
    ctx.out.data(runs, lambda: table(runs, ["id", "chain_name", "chain_version", "status", "trigger", "created_at", "ended_at"]))
    return 0


def run_show(args: argparse.Namespace, ctx: Context) -> int:
    print_run(ctx, ctx.get_run(args.id))
    return 0


def run_cancel(args: argparse.Namespace, ctx: Context) -> int:
    data = ctx.cancel_run(args.id)
    ctx.out.data(data, f"canceled {data['canceled']}")
    return 0


# -- db ----------------------------------------------------------------------------------


def db_upgrade(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.data.store import upgrade_database

    ctx.make_home()  # where the embedded SQLite file goes
    result = upgrade_database(ctx.settings.database_url)

    def text() -> str:
        if not result["migrated"]:
            return f"the schema of {result['database']} is current (revision {result['to']})"
        return f"migrated {result['database']} from revision {result['from'] or 'none'} to {result['to']}"

    ctx.out.data(result, text)
    return 0


def run_pause(args: argparse.Namespace, ctx: Context) -> int:
    data = ctx.pause_run(args.id)
    ctx.out.data(data, f"asked run {data['paused']} to pause")
    return 0


def run_resume(args: argparse.Namespace, ctx: Context) -> int:
    data = ctx.resume_run(args.id)
    ctx.out.data(data, f"asked run {data['resumed']} to resume")
    return 0


def run_retry(args: argparse.Namespace, ctx: Context) -> int:
    """Embedded, the run goes on in this process (nobody else holds an ended run); on
    RabbitMQ, any worker carries it on."""
    run = ctx.retry_run(args.id, wait=args.wait, timeout=args.timeout)
    ctx.out.progress(f"run {run['id']} retried")
    if run["status"] in ("pending", "running", "paused"):  # on RabbitMQ, without --wait
        ctx.out.data({"retried": run["id"]}, f"retried {run['id']}")
        return 0
    return print_run(ctx, run)
