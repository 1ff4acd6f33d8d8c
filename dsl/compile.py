"""Compilation of a validated chain to a Plan (spec section 6): relationship records and the
RabbitMQ topology, as plain values. The Plan is all that passes from the DSL to the engine.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from legion.dsl.model import Chain

# Wait buckets for retries and delays: one queue per bucket, because RabbitMQ expires
# per-message TTLs only at the head of a queue. A wait goes to the largest bucket not longer
# than what is left, and comes back until it is over: never early, at most one bucket late.
DELAY_BUCKETS_MS = (1_000, 5_000, 30_000, 300_000, 3_600_000)
MAX_PRIORITY = 9


@dataclass(frozen=True)
class Exchange:
    name: str
    type: str = "topic"
    durable: bool = True


@dataclass(frozen=True)
class QueueDecl:
    name: str
    durable: bool = True
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Binding:
    exchange: str
    queue: str
    routing_key: str


@dataclass(frozen=True)
class Topology:
    exchanges: tuple[Exchange, ...] = ()
    queues: tuple[QueueDecl, ...] = ()
    bindings: tuple[Binding, ...] = ()

    def merge(self, other: Topology) -> Topology:
        def uniq(items: tuple[Any, ...]) -> tuple[Any, ...]:
            seen: dict[str, Any] = {}
            for item in items:
                seen.setdefault(json.dumps(asdict(item), sort_keys=True), item)
            return tuple(seen.values())

        return Topology(uniq(self.exchanges + other.exchanges), uniq(self.queues + other.queues), uniq(self.bindings + other.bindings))

    def to_dict(self) -> dict[str, Any]:
        return {
            "exchanges": [asdict(e) for e in self.exchanges],
            "queues": [asdict(q) for q in self.queues],
            "bindings": [asdict(b) for b in self.bindings],
        }


def runner_topology(extension: str, runner: str) -> Topology:
    """The objects one runner needs. Queue arguments depend only on the queue, never on a
    chain, so applying one chain can never conflict with another's declarations."""
    exchange = f"lex.{extension}"
    queue = f"lex.{extension}.{runner}"
    dlx = f"{exchange}.dlx"
    return Topology(
        exchanges=(Exchange(exchange), Exchange(dlx)),
        queues=(
            QueueDecl(queue, arguments={"x-max-priority": MAX_PRIORITY, "x-dead-letter-exchange": dlx}),
            QueueDecl(f"{queue}.dlq"),
        ),
        bindings=(Binding(exchange, queue, f"{queue}.#"), Binding(dlx, f"{queue}.dlq", f"{queue}.#")),
    )


def delay_topology() -> Topology:
    """The wait buckets: each a queue with a fixed TTL that dead-letters back to `legion.ready`."""
    queues = tuple(
        QueueDecl(f"legion.delay.{ms}", arguments={"x-message-ttl": ms, "x-dead-letter-exchange": "legion.ready"})
        for ms in DELAY_BUCKETS_MS
    )
    return Topology(
        exchanges=(Exchange("legion.delay", type="direct"), Exchange("legion.ready", type="fanout")),
        queues=queues + (QueueDecl("legion.ready"),),
        bindings=tuple(Binding("legion.delay", q.name, q.name) for q in queues) + (Binding("legion.ready", "legion.ready", "#"),),
    )


def routing_key(function: str) -> str:
    """`ext.runner.function` is published to exchange `lex.ext` with key `lex.ext.runner.function`."""
    return f"lex.{function}"


def content_hash(chain: Chain | dict[str, Any]) -> str:
    """Hash of the chain's meaning (not its comments or formatting): applying the same chain
    twice changes nothing, reformatting it changes nothing either. A dict is the chain's
    definition (its JSON dump), when the caller has it already."""
    definition = chain if isinstance(chain, dict) else chain.model_dump(mode="json", by_alias=True)
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Plan:
    chain: str
    content_hash: str
    relationships: tuple[dict[str, Any], ...]
    topology: Topology
    definition: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "content_hash": self.content_hash,
            "relationships": list(self.relationships),
            "topology": self.topology.to_dict(),
        }


def compile_chain(chain: Chain, version: int | None = None) -> Plan:
    """Relationship records (one per edge target; an edge with no `do` gives one with action
    null, `fail` gives action `fail`; one entry record per `on.events` trigger) and topology."""
    records: list[dict[str, Any]] = []
    for name, step in chain.steps.items():
        for index, edge in enumerate(step.next):
            base = {
                "chain": chain.chain, "version": version, "kind": "edge", "edge_index": index,
                "trigger_step": name, "trigger_function": step.run,
                "condition": edge.when if isinstance(edge.when, str) else ("true" if edge.when else "false"),
                "publish": dict(edge.publish), "allow_new_chains": False,
            }
            targets = edge.do or [None]
            for target in targets:
                action = None if target is None else "fail" if target == "fail" else "step"
                tstep = chain.steps.get(target) if action == "step" else None
                records.append(dict(
                    base,
                    action=action,
                    action_step=target if action == "step" else None,
                    action_function=tstep.run if tstep else None,
                    join=None if tstep is None or tstep.join is None else str(tstep.join),
                    delay=tstep.delay if tstep else 0.0,
                    priority=tstep.priority if tstep else 0,
                ))
    if chain.on is not None:
        starts = chain.start_steps()
        for ref in chain.on.events:
            records.append({
                "chain": chain.chain, "version": version, "kind": "entry", "edge_index": None,
                "trigger_step": None, "trigger_function": ref, "condition": "succeeded", "publish": {},
                "allow_new_chains": True, "action": "chain", "action_step": starts[0] if starts else None,
                "action_function": None, "join": None, "delay": 0.0, "priority": 0,
            })
    topology = delay_topology()
    runners = {tuple(step.run.split(".")[:2]): None for step in chain.steps.values() if not step.run.startswith("chain:")}
    for ext, runner in runners:  # each runner once: a merge costs the size of the topology
        topology = topology.merge(runner_topology(ext, runner))
    definition = chain.model_dump(mode="json", by_alias=True)  # once: a large chain's dump is not free
    return Plan(chain.chain, content_hash(definition), tuple(records), topology, definition)
