"""`legion chain ...` commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legion.dsl.errors import BadInput, Issue, LegionError, ValidationFailed
from legion.engine.cli.main import Context
from legion.engine.cli.output import dumps, table

if TYPE_CHECKING:
    from legion.engine.yamlfiles import YamlFiles


def _issue_lines(issues: list[Issue]) -> str:
    return "\n".join(str(i) for i in issues)


def chain_files(paths: list[str], loaded: YamlFiles | None = None) -> list[Path]:
    """The chain files the paths name or hold, each once (a file named and also found under a
    named folder is one file); BadInput when there is none, so that an empty folder is never
    taken for "no chains" (which `apply --prune` would act on). `loaded`: the command's files,
    which keep what this reads for what comes next."""
    from legion.engine.chains import chain_paths

    files: list[Path] = []
    seen: set[Path] = set()
    for path in chain_paths(paths, loaded):
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            files.append(path)
    if not files:
        raise BadInput(f"no chain files (YAML with top-level `chain` and `steps`) in {', '.join(paths)}")
    return files


def load(paths: list[str], ctx: Context, known_chains: list[str]) -> tuple[list[Any], list[Issue]]:
    from legion.engine.chains import load_chains
    from legion.engine.yamlfiles import YamlFiles

    loaded = YamlFiles()  # each file is read and parsed once for the whole command
    return load_chains(chain_files(paths, loaded), ctx.registry, known_chains, loaded)


def validate(args: argparse.Namespace, ctx: Context) -> int:
    # `run: chain:<name>` may name an applied chain: know those when there is a database to
    # ask, but do not create one just to validate files.
    store = ctx.existing_store()
    known = [c["name"] for c in store.list_chains()] if store is not None else []
    try:
        files, issues = load(args.paths, ctx, known)
    except ValidationFailed as exc:
        if ctx.out.json_mode:
            return ctx.out.error(exc)
        errors = [i for i in exc.issues if i.severity == "error"]
        import sys

        sys.stderr.write(_issue_lines(exc.issues) + f"\n{len(errors)} error(s)\n")
        return exc.exit_code
    data = {"valid": True, "chains": [{"chain": f.chain.chain, "file": str(f.path)} for f in files],
            "warnings": [i.to_dict() for i in issues]}
    ctx.out.data(data, lambda: "\n".join([_issue_lines(issues)] if issues else []) + ("\n" if issues else "")
                 + f"{len(files)} chain(s) valid" + (f", {len(issues)} warning(s)" if issues else ""))
    return 0


def plan(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.chains import apply_items

    files, issues = load(args.paths, ctx, _applied_names(ctx))
    diff = ctx.store.plan_diff(apply_items(files))
    plans = [dict(f.plan.to_dict(), file=str(f.path)) for f in files]
    data: dict[str, Any] = {"plans": plans, "diff": diff, "warnings": [i.to_dict() for i in issues]}
    if ctx.settings.amqp_url:  # what applying would do on the broker
        from legion.engine.transport.admin import broker_diff

        data["broker"] = broker_diff(ctx.settings.amqp_url, _topology(files), _unused_topology(ctx, files))

    def text() -> str:
        lines = []
        for p in plans:
            lines.append(f"chain {p['chain']} ({p['file']})")
            lines.append("  relationships:")
            for r in p["relationships"]:
                target = r["action_step"] or r["action"] or "(branch ends)"
                extra = "".join(f" {k}={r[k]}" for k in ("join", "delay", "priority") if r.get(k))
                trigger = r["trigger_step"] or f"on.events {r['trigger_function']}"
                lines.append(f"    {trigger} -> {target}  when {r['condition']}{extra}")
            topo = p["topology"]
            lines.append(f"  topology: {len(topo['exchanges'])} exchanges, {len(topo['queues'])} queues, {len(topo['bindings'])} bindings")
            for q in topo["queues"]:
                lines.append(f"    queue {q['name']} {dumps(q['arguments']) if q['arguments'] else ''}".rstrip())
        lines.append("diff:")
        lines += [f"  {d['action']:9} {d['name']}" + (f" (version {d['version']})" if d.get("version") else "") for d in diff]
        if "broker" in data:
            broker = data["broker"]
            lines += [f"  declare   {name} (broker)" for name in broker["exchanges"] + broker["queues"]]
            lines += [f"  change    {c['queue']} (broker): {c['reason']}; delete the queue once drained, then apply"
                      for c in broker["change"]]
            lines += [f"  remove    {name} (broker): no chain needs it; apply keeps it, delete it once drained"
                      for name in broker["remove"]]
            if not any(broker.values()):
                lines.append("  the broker has every exchange and queue, as declared")
        return "\n".join(lines)

    ctx.out.data(data, text)
    return 0


def _topology(files: list[Any]) -> Any:
    """The broker objects the chains' plans need, each once."""
    from legion.dsl.compile import Topology

    topology = Topology()
    for f in files:
        topology = topology.merge(f.plan.topology)
    return topology


def _unused_topology(ctx: Context, files: list[Any]) -> Any:
    """The queues the applied chains use that no chain needs once `files` are applied (their
    new versions replace the applied ones of the same names; the other chains stay)."""
    from legion.dsl.compile import Topology, compile_chain
    from legion.dsl.model import Chain

    replaced = {f.chain.chain for f in files}
    before, after = Topology(), _topology(files)
    for row in ctx.store.list_chains():
        try:
            topology = compile_chain(Chain.model_validate(ctx.store.get_chain(row["name"])["definition"])).topology
        except LegionError:  # deleted, or no longer compiles here: nothing it needs counts
            continue
        before = before.merge(topology)
        if row["name"] not in replaced:
            after = after.merge(topology)
    needed = {q.name for q in after.queues}
    return Topology(queues=tuple(q for q in before.queues if q.name not in needed))


def _applied_names(ctx: Context) -> list[str]:
    return [c["name"] for c in ctx.store.list_chains()]


def apply(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.chains import apply_items

    files, issues = load(args.paths, ctx, _applied_names(ctx))
    if ctx.settings.amqp_url:  # the broker first: a chain applied is one whose steps can be published
        from legion.engine.transport import control_topology
        from legion.engine.transport.amqp import AmqpTransport

        transport = AmqpTransport(ctx.settings.amqp_url, name="legion chain apply")
        try:
            transport.declare(_topology(files).merge(control_topology()))
        finally:
            transport.close()
    report = ctx.store.apply_chains(apply_items(files), prune=args.prune)
    ctx.out.data({"applied": report, "warnings": [i.to_dict() for i in issues]},
                 lambda: "\n".join(f"{r['action']:9} {r['name']}" + (f" (version {r['version']})" if r.get("version") else "") for r in report) or "nothing to apply")
    return 0


def run(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.cli.args import build_input, input_items
    from legion.engine.cli.commands import make_engine, print_run

    items = input_items(args.args, args.input, args.input_json, "input")  # malformed input: refused first
    engine = make_engine(ctx, consume=False)  # embedded, it runs here all the same
    program = engine.program(args.name)  # NotFound before anything starts; the one read of the chain
    payload = build_input(items, program.chain.input)
    check_input(program, payload)
    listener = _progress(ctx) if args.wait else None
    with engine:
        run_id = engine.start_program(program, payload, listener=listener)
        ctx.out.progress(f"run {run_id} started") if args.wait else None
        try:
            engine.wait(run_id, args.timeout)
        except TimeoutError:
            reason = f"the run did not end within --timeout {args.timeout:g}s"
            engine.cancel(run_id, reason)
            try:
                engine.wait(run_id, 5.0)  # the cancel is recorded before the engine stops
            except TimeoutError:
                pass
            raise LegionError(f"run {run_id} did not end within {args.timeout:g}s, so it was canceled "
                              f"(see `legion run show {run_id}`; give a longer --timeout to let it finish)",
                              details={"run_id": run_id, "timeout": args.timeout}) from None
    return print_run(ctx, run_id)


def check_input(program: Any, payload: dict[str, Any]) -> None:
    """BadInput, before any run exists, when `payload` does not fit the chain's `input`
    schema: the first problem in the message (its place in the input, and what is wrong),
    every problem in the details."""
    validator = program.input_validator
    if validator is None:
        return
    found = sorted(({"path": _where(e), "message": e.message} for e in validator.iter_errors(payload)),
                   key=lambda p: p["path"].split("/"))
    if not found:
        return
    first = found[0]
    raise BadInput(f"run input of chain {program.name!r} does not fit its input schema at {first['path']}: {first['message']} "
                   f"(`legion chain show {program.name}` shows the schema)",
                   details={"chain": program.name, "problems": found})


def _where(error: Any) -> str:
    """Where in the input a jsonschema error is, as `a/b/0`: for a missing required property,
    the property itself; `input` for the input as a whole."""
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        # One error per missing property, which only its message names.
        missing = next((k for k in error.validator_value if k not in error.instance and repr(k) in error.message), None)
        if missing is not None:
            path.append(str(missing))
    return "/".join(path) or "input"


def _progress(ctx: Context) -> Any:
    def listener(event: dict[str, Any]) -> None:
        if event["event"] == "step.started":
            extra = f" attempt {event['attempt']}" if event["attempt"] > 1 else ""
            extra += f" item {event['index']}" if event.get("index") is not None else ""
            ctx.out.progress(f"  ▶ {event['step']}{extra}")
        elif event["event"] == "step.finished":
            mark = "✓" if event["status"] == "succeeded" else "✗"
            detail = f" {event['error']['type']}: {event['error']['message']}" if event.get("error") else ""
            ctx.out.progress(f"  {mark} {event['step']} {event['status']}{detail}")

    return listener


def test(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.rehearsal import run_rehearsal
    from legion.engine.yamlfiles import YamlFiles, find_yaml

    paths = [Path(p) for p in args.paths]
    for p in paths:
        if not p.exists():
            raise BadInput(f"no such file or folder: {p}")
    loaded = YamlFiles()  # each file is read and parsed once, however many rehearsals use it
    rehearsals = [p for p in find_yaml(paths) if loaded.get(p).kind in ("rehearsal", "broken")]
    if not rehearsals:
        raise BadInput(f"no rehearsal files (YAML with a top-level `expect`) under {', '.join(args.paths)}")
    reports = [run_rehearsal(p, ctx.registry, loaded) for p in rehearsals]
    passed = sum(r.passed for r in reports)
    failed = len(reports) - passed

    def text() -> str:
        lines = []
        for r in reports:
            lines.append(f"{'PASS' if r.passed else 'FAIL'} {r.name} ({r.file})")
            lines += [f"    {f}" for f in r.failures]
            lines += [f"    {i}" for i in r.issues]
        lines.append(f"{passed} passed, {failed} failed")
        return "\n".join(lines)

    ctx.out.data({"passed": passed, "failed": failed, "rehearsals": [r.to_dict() for r in reports]}, text)
    return 0 if failed == 0 else 1


def list_(args: argparse.Namespace, ctx: Context) -> int:
    chains = ctx.store.list_chains()
    ctx.out.data(chains, lambda: table(chains, ["name", "current_version", "updated_at", "runs"], "no chains applied (legion chain apply chains/)"))
    return 0



def show(args: argparse.Namespace, ctx: Context) -> int:
    record = ctx.store.get_chain_version(args.name, args.version) if args.version else ctx.store.get_chain(args.name)
    ctx.out.data(record, lambda: f"# chain {record['name']} version {record['version']}\n{record['source']}")
    return 0


def history(args: argparse.Namespace, ctx: Context) -> int:
    versions = ctx.store.chain_history(args.name)
    ctx.out.data(versions, lambda: table(versions, ["version", "created_at", "content_hash", "path"]))
    return 0


def graph(args: argparse.Namespace, ctx: Context) -> int:
    from legion.dsl.model import Chain
    from legion.engine.chains import graph as draw

    if Path(args.name).exists():
        files, _ = load([args.name], ctx, _applied_names(ctx))
        chain = files[0].chain
    else:
        chain = Chain.model_validate(ctx.store.get_chain(args.name)["definition"])
    text = draw(chain, args.format)
    ctx.out.data({"chain": chain.chain, "format": args.format, "graph": text}, text)
    return 0


def delete(args: argparse.Namespace, ctx: Context) -> int:
    ctx.store.delete_chain(args.name)
    ctx.out.data({"deleted": args.name}, f"deleted {args.name}")
    return 0
