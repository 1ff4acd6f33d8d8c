"""`legion node list`, `legion broker status` and `legion dlq ...`: the deployment at work."""

from __future__ import annotations

import argparse

from legion.dsl.errors import LegionError
from legion.engine.cli.main import Context
from legion.engine.cli.output import dumps, table
from legion.engine.errors import ConfigError


def node_list(args: argparse.Namespace, ctx: Context) -> int:
    nodes = ctx.list_nodes()
    rows = [dict(n, runners=len(n["runners"]), heartbeat=f"{n['heartbeat_age_s']:g}s ago") for n in nodes]
    ctx.out.data(nodes, lambda: table(rows, ["name", "state", "role", "in_flight", "runners", "heartbeat"],
                                      empty="no node has run here yet (`legion start` registers one)"))
    return 0


def _amqp(ctx: Context) -> str:
    if not ctx.settings.amqp_url:
        raise ConfigError("LEGION_AMQP_URL is not set: Legion runs embedded, with no broker (set it to a RabbitMQ URL, "
                          "e.g. amqp://guest:guest@127.0.0.1:5672/%2F)")
    return ctx.settings.amqp_url


def _queues(ctx: Context) -> list[str]:
    """Legion's queues: each runner's (of every extension any node registered, and this
    one's), with its dead-letter queue, and the control and wait queues. (The broker lists
    them itself only through its management API.)"""
    from legion.engine.transport.admin import fixed_queues

    runners = {f"lex.{ext['name']}.{r['name']}" for ext in ctx.store.list_extensions() for r in ext.get("runners", [])}
    runners |= {f"lex.{r.extension}.{r.name}" for r in ctx.registry.runners.values()}
    return sorted(runners | {q + ".dlq" for q in runners} | set(fixed_queues()))


def broker_status(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.transport.admin import broker_status as status

    report = status(_amqp(ctx), _queues(ctx))
    ctx.out.data(report, lambda: f"broker {report['url']} (figures from {report['source']})\n" + table(
        report["queues"], ["name", "ready", "unacked", "consumers", "publish_rate", "deliver_rate"]))
    return 0


def dlq_list(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.transport.admin import dlq_list as listing

    letters = listing(_amqp(ctx), args.limit, queues=_queues(ctx))
    ctx.out.data(letters, lambda: table(letters, ["id", "queue", "dead_at", "reason"], empty="no dead letters"))
    return 0


def dlq_show(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.transport.admin import dlq_show as show

    letter = show(_amqp(ctx), args.id, queues=_queues(ctx))
    ctx.out.data(letter, lambda: dumps(letter, indent=2))
    return 0


def dlq_replay(args: argparse.Namespace, ctx: Context) -> int:
    """A dead message of a run that has ended (failed because its step stopped its workers
    again and again, say) retries the run, from its failed step runs; any other is
    published again as it was. Either way it leaves the dead-letter queue."""
    from legion.engine.transport.admin import dlq_replay as replay
    from legion.engine.transport.admin import dlq_show as show

    url, queues = _amqp(ctx), _queues(ctx)
    message = show(url, args.id, queues=queues).get("message")
    run = None
    if isinstance(message, dict) and message.get("run_id"):
        try:
            run = ctx.store.get_run(str(message["run_id"]))
        except LegionError:
            run = None
    replayed = replay(url, args.id, queues=queues)  # a step run that has ended drops the copy when it is taken
    if run is not None and run["status"] in ("failed", "canceled"):
        ctx.request(run["id"], "retry")
        ctx.out.data(dict(replayed, retried=run["id"]), f"replayed {args.id}: run {run['id']} is retried")
        return 0
    ctx.out.data(replayed, f"replayed {args.id}")
    return 0


def dlq_purge(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.transport.admin import dlq_purge as purge

    count = purge(_amqp(ctx), args.queue, queues=_queues(ctx))
    ctx.out.data({"purged": count}, f"purged {count} dead letter(s)")
    return 0
