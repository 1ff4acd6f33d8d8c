"""`legion agent`: make agents, see how they are, talk to them, tick them, erase them."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from legion.dsl.errors import BadInput
from legion.engine.cli.output import table

if TYPE_CHECKING:
    from legion.engine.cli.main import Context


def create(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.cli.args import build_input, input_items

    settings = build_input(input_items(args.settings, [], None, "setting"), None) if args.settings else {}
    agent = ctx.create_agent(args.name, args.partner, settings)
    ctx.out.data(agent, f"agent {agent['name']} made" + (f", partner {agent['partner']}" if agent.get("partner") else "")
                 + "; its heartbeat ticks it every minute while `legion start` runs")
    return 0


def list_(args: argparse.Namespace, ctx: Context) -> int:
    agents = ctx.list_agents()
    ctx.out.data(agents, lambda: table(agents, ["name", "partner", "created_at", "erased_at"], "no agents (legion agent create NAME)"))
    return 0


def status(args: argparse.Namespace, ctx: Context) -> int:
    found = ctx.agent_status(args.name)

    def text() -> str:
        mode, trust, consent = found["mode"], found["trust"], found["consent"]
        lines = [f"agent {args.name}" + (f" (partner {found['agent']['partner']})" if found["agent"].get("partner") else ""),
                 f"  mode: {mode['mode']}, {mode['tick_count']} tick(s)"
                 + (f", last signal {mode['seconds_since_signal']:.0f}s ago" if mode.get("seconds_since_signal") is not None else "")]
        lines.append("  memories:" + ("" if found["memories"] else " none"))
        for m in found["memories"]:
            lines.append(f"    {m.get('strength', 0):.2f}  {str(m.get('content_payload'))[:70]}")
        partner = trust.get("partner") or {}
        lines.append("  trust in partner: " + (f"{partner['trust']['composite']:.2f} after {partner['trust']['interaction_count']} "
                                               "interaction(s)" if partner.get("found") else "none yet"))
        lines.append(f"  consent: {_short(consent)}")
        replies = found["conversation"]["replies"]
        lines.append(f"  last reply: {replies[-1]['text'] if replies else '(none yet)'}")
        return "\n".join(lines)

    ctx.out.data(found, text)
    return 0


def send(args: argparse.Namespace, ctx: Context) -> int:
    sent = ctx.send_to_agent(args.name, args.text, model=args.model, api_base=args.api_base, timeout=args.timeout)

    def text() -> str:
        lines = [f"tick {i + 1}: mode {t['mode']} ({t['status']})" for i, t in enumerate(sent["ticks"])]
        reply = sent["reply"]
        lines.append(f"{args.name}: {reply['text']}" if reply else f"{args.name} has not answered yet "
                     f"(declined: {sent['ticks'][-1].get('declined')})" if sent["ticks"] and sent["ticks"][-1].get("declined")
                     else f"{args.name} has not answered yet; its next ticks will (legion agent tick {args.name})")
        return "\n".join(lines)

    ctx.out.data(sent, text)
    return 0 if all(t["status"] == "succeeded" for t in sent["ticks"]) else 1


def tick(args: argparse.Namespace, ctx: Context) -> int:
    from legion.engine.cli.commands import print_run

    return print_run(ctx, ctx.tick_agent(args.name, model=args.model, api_base=args.api_base, timeout=args.timeout))


def erase(args: argparse.Namespace, ctx: Context) -> int:
    if not args.yes:
        raise BadInput(f"erasing agent {args.name!r} cannot be undone (its key is deleted, so nothing of it can be read again): "
                       "add --yes to erase it")
    erased = ctx.erase_agent(args.name)
    ctx.out.data(erased, f"erased agent {args.name}: its key and {erased['erased']} document(s) of its state")
    return 0


def _short(value: Any) -> str:
    text = ", ".join(f"{k}={v}" for k, v in value.items() if not isinstance(v, (dict, list))) if isinstance(value, dict) else str(value)
    return text[:160] or "-"
