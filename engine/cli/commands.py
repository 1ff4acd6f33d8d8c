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
from legion.dsl.errors import BadInput, LegionError
from legion.engine.cli.ids import resolve_run, resolve_task
from legion.engine.cli.main import Context
from legion.engine.cli.output import dumps, table
from legion.engine.errors import ConfigError

PRESENCE_TTL = 5.0  # Redis: a node that has not said it is alive for this long is not
DB_BEAT_EVERY = 10  # Redis: the database's heartbeat every this many seconds (every second without Redis)


def make_engine(ctx: Context, workers: int | None = None, *, consume: bool = True) -> Any:
    """The engine of this command. With LEGION_AMQP_URL it is shared: its runs are kept in
    the database and travel through RabbitMQ, so any worker anywhere carries them on, and
    `consume=False` makes a process that only starts runs (a `chain run`) and waits for them.
    Without it, this process runs its runs itself (embedded)."""
    from legion.engine.runtime import Engine

    transport = None
    if ctx.settings.amqp_url:
        if not os.environ.get("LEGION_SECRET_TOKEN_KEY"):
            raise ConfigError(
                "LEGION_AMQP_URL is set, so steps run in other processes, on other hosts, but LEGION_SECRET_TOKEN_KEY "
                "is not: every process of a deployment must sign `secret()` references with the same key. Set "
                "LEGION_SECRET_TOKEN_KEY (a value, env://NAME or vault://path#key) alike in every process.")
        from legion.engine.transport.amqp import AmqpTransport

        transport = AmqpTransport(ctx.settings.amqp_url, name=f"legion {ctx.settings.node}:{os.getpid()}")
    else:
        consume = True  # embedded: nobody else would run this process's runs
    signals = None
    if ctx.settings.redis_url and transport is not None:
        from legion.engine.signals import RedisSignals

        signals = RedisSignals(ctx.settings.redis_url)
    ctx.store.sync_registry(registry_rows(ctx.registry))
    engine = Engine(ctx.registry, ctx.store, workers=workers or ctx.settings.workers, node=ctx.settings.node,
                    transport=transport, consume=consume, lease=ctx.settings.step_lease, signals=signals)
    engine.refresh_events()
    return engine


def send_request(ctx: Context, run_id: str, kind: str) -> None:
    """Ask whichever process carries a run on to cancel, pause or resume it: on RabbitMQ, a
    control message (any worker takes it); embedded, a request the process holding the
    run reads within half a second."""
    from legion.engine.transport import Message

    message = Message(run_id, kind=kind)
    if ctx.settings.amqp_url:
        from legion.engine.transport.amqp import AmqpTransport

        transport = AmqpTransport(ctx.settings.amqp_url, name=f"legion {ctx.settings.node}:{os.getpid()}")
        try:
            transport.publish([message])
        finally:
            transport.close()
    else:
        ctx.store.request(message.to_dict())


def registry_rows(registry: Any) -> list[dict[str, Any]]:
    """The extensions that loaded, with their runners and functions (what `store.sync_registry`
    records and `legion lex list` shows)."""
    rows = []
    for ext in registry.extensions.values():
        runners = [r for r in registry.runners.values() if r.extension == ext.name]
        rows.append({
            "name": ext.name, "status": "ok", "description": ext.description, "version": ext.version,
            "runners": [{
                "name": r.name, "module": r.module, "queue": r.queue, "description": r.description,
                "functions": [function_row(f) for f in r.functions],
            } for r in runners],
        })
    return rows


def function_row(function: Any) -> dict[str, Any]:
    """A function with its parameters and declared options. One whose signature cannot be
    read keeps its row, with the `error` (calling it fails the same way)."""
    actor = function.actor
    row: dict[str, Any] = {"name": function.name, "ref": function.ref,
                           "actor": {"kind": actor.kind, "interval": actor.interval, "delay": actor.delay}}
    try:
        spec = function.spec
    except LegionError as exc:
        return row | {"args_schema": None, "description": None, "params": [], "returns": {}, "timeout": None,
                      "retry": None, "expose": True, "error": exc.message}
    params = [{"name": p.name, "type": _type(p.schema), "schema": p.schema, "required": p.required,
               "default": None if p.required else p.schema.get("default"), "description": p.description}
              for p in spec.params]
    return row | {"args_schema": spec.args_schema(), "description": spec.description, "params": params,
                  "returns": spec.returns, "timeout": spec.timeout, "retry": None if spec.retry is None else dict(spec.retry),
                  "expose": spec.expose, "error": None}


def broken_rows(registry: Any) -> list[dict[str, Any]]:
    """The installed extensions that failed to load: what went wrong and what to do."""
    return [{"name": b.name, "status": "broken", "description": None, "version": None, "entry_point": b.entry_point,
             "error": b.error, "hint": b.hint, "traceback": b.traceback, "runners": []}
            for b in registry.broken.values()]


def print_run(ctx: Context, run_id: str) -> int:
    run = ctx.store.get_run(run_id)
    tasks = ctx.store.run_tasks(run_id)
    data = dict(run, tasks=tasks, trace=[t["step"] for t in tasks if t.get("started_at")])

    def text() -> str:
        lines = [f"run {run['id']}  chain {run['chain_name']} v{run['chain_version']}  {run['status']}"]
        if run.get("error"):
            lines.append("error: " + run_error_line(run["error"], tasks))
        lines.append("output: " + dumps(run.get("output")))
        lines.append("trace:")
        for t in tasks:
            extra = f" attempt {t['attempt']}" if (t.get("attempt") or 1) > 1 else ""
            extra += f" item {t['item_index']}" if t.get("item_index") is not None else ""
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
    failed = [t for t in tasks if t["step"] == step and t["status"] in ("failed", "timed_out")]
    line += f" at step {step!r}"
    if failed:
        task_id = max(failed, key=lambda t: t["number"])["id"]
        line += f", task {task_id} — legion task show {task_id}"
    return line


# -- start -------------------------------------------------------------------------------


def start(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.actors import ActorHost
    from legion.engine.chains import apply_items, load_chains
    from legion.engine.scheduler import Scheduler

    role = getattr(args, "role", "all")
    engine = make_engine(ctx, args.workers, consume=role != "scheduler")
    applied: list[dict[str, Any]] = []
    if not args.no_apply:
        folders = args.chains or ([Path("chains")] if Path("chains").is_dir() else [Path(str(resources.files("legion.chains")))])
        files, _ = load_chains(folders, ctx.registry, [c["name"] for c in ctx.store.list_chains()])
        applied = ctx.store.apply_chains(apply_items(files))
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
        ctx.out.progress("Ctrl-C stops it")
        presence = getattr(engine.signals, "beat", None)  # Redis: alive every second there, in the database less often
        beats = 0
        while not stop.wait(1.0):
            if presence is not None:
                presence(node, dict(info(), host=os.uname().nodename, pid=os.getpid()), PRESENCE_TTL)
            if presence is None or beats % DB_BEAT_EVERY == 0:
                ctx.store.heartbeat(node, info=info())
            beats += 1
        if role != "worker":
            actors.stop()
            scheduler.stop()
        if presence is not None:
            engine.signals.gone(node)
    ctx.store.heartbeat(node, status="stopped", info=info())
    ctx.out.data({"stopped": node, "applied": applied}, "stopped")
    return 0


# -- lex ---------------------------------------------------------------------------------


def lex_list(args: argparse.Namespace, ctx: Context) -> int:
    ok, broken = registry_rows(ctx.registry), broken_rows(ctx.registry)

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


def _type(schema: dict[str, Any]) -> str:
    """A parameter's JSON Schema in a word or two: `string`, `integer|null`, `"a"|"b"`."""
    if "enum" in schema:
        return "|".join(dumps(v) for v in schema["enum"])
    if "const" in schema:
        return dumps(schema["const"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return "|".join(_type(s) for s in schema[key])
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    kind = schema.get("type")
    if isinstance(kind, list):
        return "|".join(map(str, kind))
    if kind == "array" and isinstance(schema.get("items"), dict) and schema["items"]:
        return f"array[{_type(schema['items'])}]"
    return str(kind) if kind else "any"


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
    payload = build_input(items, spec.args_schema())
    engine = make_engine(ctx, 1, consume=False)
    with engine:
        run_id = engine.run_task(args.function, payload)
        engine.wait(run_id)
    tasks = ctx.store.run_tasks(run_id)
    if not tasks:  # the run ended before its one task was recorded
        run = ctx.store.get_run(run_id)
        error = run.get("error") or {}
        detail = f": {error.get('type')}: {error.get('message')}" if error else ""
        raise LegionError(f"run {run_id} of {args.function} recorded no task; it ended {run['status']}{detail}",
                          details={"run_id": run_id, "status": run["status"], "error": run.get("error")})
    task = tasks[0]
    ctx.out.data(task, lambda: (dumps(task["result"], indent=2) if task["status"] == "succeeded"
                                else f"task {task['id']} {task['status']}: {error_line(task['error'] or {})} (legion task show {task['id']})"))
    return 0 if task["status"] == "succeeded" else 1


def task_list(args: argparse.Namespace, ctx: Context) -> int:
    run_id = resolve_run(ctx.store, args.run_id) if args.run_id is not None else None
    tasks = ctx.store.list_tasks(run_id=run_id, status=args.status, limit=args.limit)
    ctx.out.data(tasks, lambda: table(tasks, ["id", "run_id", "step", "function", "status", "attempt", "finished_at"]))
    return 0


def task_show(args: argparse.Namespace, ctx: Context) -> int:
    task = resolve_task(ctx.store, args.id)
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
    task = resolve_task(ctx.store, args.id)
    logs = ctx.store.task_logs(task["id"])
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
    runs = ctx.store.list_runs(chain=args.chain, status=args.status, limit=args.limit)
    ctx.out.data(runs, lambda: table(runs, ["id", "chain_name", "chain_version", "status", "trigger", "created_at", "ended_at"]))
    return 0


def run_show(args: argparse.Namespace, ctx: Context) -> int:
    print_run(ctx, resolve_run(ctx.store, args.id))
    return 0


def run_cancel(args: argparse.Namespace, ctx: Context) -> int:
    run_id = resolve_run(ctx.store, args.id)
    error = {"type": "Canceled", "message": "canceled by request", "step": None}
    # Conditional: only a run still pending or running is marked, so a run that ends at the
    # same moment keeps its real outcome. The process running it notices and stops it.
    if not ctx.store.cancel_run(run_id, error):  # NotFound for an unknown id
        raise BadInput(f"run {run_id} already ended ({ctx.store.get_run(run_id)['status']}); nothing to cancel")
    send_request(ctx, run_id, "cancel")
    ctx.out.data({"canceled": run_id}, f"canceled {run_id}")
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
    return _run_request(args, ctx, "pause", ("running",))


def run_resume(args: argparse.Namespace, ctx: Context) -> int:
    return _run_request(args, ctx, "resume", ("paused",))


def _run_request(args: argparse.Namespace, ctx: Context, kind: str, statuses: tuple[str, ...]) -> int:
    run_id = resolve_run(ctx.store, args.id)
    status = ctx.store.get_run(run_id)["status"]
    if status not in statuses:
        raise BadInput(f"run {run_id} is {status}; only a run that is {' or '.join(statuses)} can be {kind}d")
    send_request(ctx, run_id, kind)
    ctx.out.data({kind + "d": run_id}, f"asked run {run_id} to {kind}")
    return 0


def run_retry(args: argparse.Namespace, ctx: Context) -> int:
    """Embedded, the run goes on in this process (nobody else holds an ended run); on
    RabbitMQ, any worker carries it on."""
    run_id = resolve_run(ctx.store, args.id)
    run = ctx.store.get_run(run_id)
    if run["status"] not in ("failed", "canceled"):
        raise BadInput(f"run {run_id} is {run['status']}; only a failed or canceled run can be retried")
    engine = make_engine(ctx, consume=False)
    with engine:
        if not engine.retry(run_id):
            raise BadInput(f"run {run_id} has no step run to start again (it was written before runs kept their state, "
                           f"or it failed at a `fail` target or before any step began); run the chain again instead")
        ctx.out.progress(f"run {run_id} retried")
        if not args.wait and engine.shared:
            ctx.out.data({"retried": run_id}, f"retried {run_id}")
            return 0
        try:
            engine.wait(run_id, args.timeout)
        except TimeoutError:
            raise LegionError(f"run {run_id} did not end within {args.timeout:g}s (it goes on: `legion run show {run_id}`)",
                              details={"run_id": run_id, "timeout": args.timeout}) from None
    return print_run(ctx, run_id)
