"""`legion chain ...` commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from legion.dsl.errors import BadInput, Issue, ValidationFailed
from legion.engine.cli.main import Context
from legion.engine.cli.output import dumps, table


def _issue_lines(issues: list[Issue]) -> str:
    return "\n".join(str(i) for i in issues)


def validate(args: argparse.Namespace, ctx: Context) -> int:
    try:
        data = ctx.validate_chains(paths=args.paths)
    except ValidationFailed as exc:
        if ctx.out.json_mode:
            return ctx.out.error(exc)
        errors = [i for i in exc.issues if i.severity == "error"]
        import sys

        sys.stderr.write(_issue_lines(exc.issues) + f"\n{len(errors)} error(s)\n")
        return exc.exit_code
    issues = data["warnings"]
    lines = [_issue_lines([Issue(**dict(i, path=tuple(i["path"]))) for i in issues])] if issues else []
    ctx.out.data(data, lambda: "\n".join(lines) + ("\n" if issues else "")
                 + f"{len(data['chains'])} chain(s) valid" + (f", {len(issues)} warning(s)" if issues else ""))
    return 0


def plan(args: argparse.Namespace, ctx: Context) -> int:
    data = ctx.plan_chains(paths=args.paths)
    plans, diff = data["plans"], data["diff"]

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


def apply(args: argparse.Namespace, ctx: Context) -> int:
    data = ctx.apply_chains(paths=args.paths, prune=args.prune)
    report = data["applied"]
    ctx.out.data(data, lambda: "\n".join(f"{r['action']:9} {r['name']}" + (f" (version {r['version']})" if r.get("version") else "")
                                         for r in report) or "nothing to apply")
    return 0


def run(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.cli.args import build_input, input_items
    from legion.engine.cli.commands import print_run

    items = input_items(args.args, args.input, args.input_json, "input")  # malformed input: refused first
    schema = ctx.get_chain(args.name).get("definition", {}).get("input")  # NotFound before anything starts
    payload = build_input(items, schema)
    started = (lambda run_id: ctx.out.progress(f"run {run_id} started")) if args.wait else None
    run = ctx.start_run(args.name, payload, wait=True, timeout=args.timeout, listener=_progress(ctx) if args.wait else None,
                        started=started, agent=args.agent)
    return print_run(ctx, run)


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
    chains = ctx.list_chains()
    ctx.out.data(chains, lambda: table(chains, ["name", "current_version", "updated_at", "runs"], "no chains applied (legion chain apply chains/)"))
    return 0


def show(args: argparse.Namespace, ctx: Context) -> int:
    record = ctx.get_chain(args.name, args.version)
    ctx.out.data(record, lambda: f"# chain {record['name']} version {record['version']}\n{record['source']}")
    return 0


def history(args: argparse.Namespace, ctx: Context) -> int:
    versions = ctx.chain_versions(args.name)
    ctx.out.data(versions, lambda: table(versions, ["version", "created_at", "content_hash", "path"]))
    return 0


def graph(args: argparse.Namespace, ctx: Context) -> int:
    data = ctx.chain_graph(args.name, args.format, path=args.name if Path(args.name).exists() else None)
    ctx.out.data(data, data["graph"])
    return 0


def delete(args: argparse.Namespace, ctx: Context) -> int:
    data = ctx.delete_chain(args.name)
    ctx.out.data(data, f"deleted {args.name}")
    return 0


def schema_export(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.editor import export_schemas

    out = Path(args.out)
    try:
        written = export_schemas(out, ctx.list_functions() if args.with_extensions else None)
    except OSError as exc:
        raise BadInput(f"cannot write the schemas into {out}: {exc.strerror or exc} (give a folder you can write to with --out)") from None
    ctx.out.data({"written": [str(p) for p in written]}, "\n".join(str(p) for p in written))
    return 0
