"""`legion node list`, `legion broker status` and `legion dlq ...`: the deployment at work."""

from __future__ import annotations

import argparse

from legion.engine.cli.main import Context
from legion.engine.cli.output import dumps, table


def node_list(args: argparse.Namespace, ctx: Context) -> int:
    nodes = ctx.list_nodes()
    rows = [dict(n, runners=len(n["runners"]), heartbeat=f"{n['heartbeat_age_s']:g}s ago") for n in nodes]
    ctx.out.data(nodes, lambda: table(rows, ["name", "state", "role", "in_flight", "runners", "heartbeat"],
                                      empty="no node has run here yet (`legion start` registers one)"))
    return 0


def broker_status(args: argparse.Namespace, ctx: Context) -> int:
    report = ctx.broker_status()
    ctx.out.data(report, lambda: f"broker {report['url']} (figures from {report['source']})\n" + table(
        report["queues"], ["name", "ready", "unacked", "consumers", "publish_rate", "deliver_rate"]))
    return 0


def dlq_list(args: argparse.Namespace, ctx: Context) -> int:
    letters = ctx.list_dead_letters(args.limit)
    ctx.out.data(letters, lambda: table(letters, ["id", "queue", "dead_at", "reason"], empty="no dead letters"))
    return 0


def dlq_show(args: argparse.Namespace, ctx: Context) -> int:
    letter = ctx.get_dead_letter(args.id)
    ctx.out.data(letter, lambda: dumps(letter, indent=2))
    return 0


def dlq_replay(args: argparse.Namespace, ctx: Context) -> int:
    replayed = ctx.replay_dead_letter(args.id)
    ctx.out.data(replayed, f"replayed {args.id}" + (f": run {replayed['retried']} is retried" if replayed.get("retried") else ""))
    return 0


def dlq_purge(args: argparse.Namespace, ctx: Context) -> int:
    data = ctx.purge_dead_letters(args.queue)
    ctx.out.data(data, f"purged {data['purged']} dead letter(s)")
    return 0
