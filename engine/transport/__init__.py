"""Transports: how messages travel between the processes of a deployment.

A transport declares the topology the compiler emits (exchanges, queues, bindings), publishes
messages (now, or once a time has come), and hands the messages of the queues a worker
consumes to its threads, one `Delivery` at a time, to be acknowledged once their outcome is
committed. Two implement it: the memory transport (the embedded default, in this process) and
the AMQP transport (RabbitMQ, through pika; `legion.engine.transport.amqp`).

Every message is a `Message`: which run, which step run (or wait), and for a step message the
function, which routes it to its runner's queue. A run's context never travels: it is in the
database.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from legion.dsl.compile import Binding, Exchange, QueueDecl, Topology, routing_key
from legion.engine.errors import LegionError

log = logging.getLogger("legion.transport")

# Messages to the runs themselves, not to a runner: a wait that ended, a sub-chain that
# ended, a cancel. Every worker consumes this queue.
CONTROL_EXCHANGE = "legion.control"
CONTROL_QUEUE = "legion.control"
# Signals to every process at once (see legion.engine.signals): each process binds a queue of
# its own, exclusive, which goes with its connection.
SIGNALS_EXCHANGE = "legion.signals"
STEP = "step"  # start step run `number`
WAKE = "wake"  # wait `number` is over
START = "start"  # start the sub-chain run of step run `number`
CHILD = "child"  # the sub-chain run of step run `number` ended
CANCEL = "cancel"  # cancel the run
PAUSE = "pause"
RESUME = "resume"
RETRY = "retry"
KINDS = (STEP, WAKE, START, CHILD, CANCEL, PAUSE, RESUME, RETRY)


class TransportError(LegionError):
    """A message could not be published (not confirmed, or the broker cannot be reached)."""


@dataclass(frozen=True, slots=True)
class Message:
    """The envelope between processes: `kind` (see KINDS) says what to do with run `run_id`.
    A step message names the step run's `function`, which routes it to its runner's queue;
    every other kind, and a step that needs no worker of its own (a sub-chain, say: `control`),
    travels on the control queue."""

    run_id: str
    number: int = 0
    function: str = ""
    priority: int = 0
    kind: str = STEP
    control: bool = False

    @property
    def on_control(self) -> bool:
        return self.control or self.kind != STEP

    @property
    def exchange(self) -> str:
        return CONTROL_EXCHANGE if self.on_control else "lex." + self.function.split(".", 1)[0]

    @property
    def routing_key(self) -> str:
        return CONTROL_QUEUE if self.on_control else routing_key(self.function)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "run_id": self.run_id, "number": self.number, "function": self.function,
                "priority": self.priority, "control": self.control}

    @classmethod
    def from_dict(cls, d: Any) -> Message:
        """Raises ValueError for what is not a message."""
        try:
            message = cls(str(d["run_id"]), int(d.get("number", 0)), str(d.get("function", "")), int(d.get("priority", 0)),
                          str(d.get("kind", STEP)), bool(d.get("control", False)))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a Legion message: {exc!r}") from None
        if message.kind not in KINDS or (message.kind == STEP and not message.function):
            raise ValueError(f"not a Legion message: kind {message.kind!r}, function {message.function!r}")
        return message

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, body: bytes) -> Message:
        """Raises ValueError for a body that is not a message (a poison message)."""
        try:
            d: Any = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"not a Legion message: {exc}") from None
        return cls.from_dict(d)


def hand_out(subscribers: Sequence[Callable[[bytes], None]], body: bytes) -> None:
    """A broadcast to this process's subscribers; one failing does not keep it from the rest."""
    for on_body in list(subscribers):
        try:
            on_body(body)
        except Exception:
            log.exception("a signal's subscriber failed")


def control_topology() -> Topology:
    """The control exchange and queue every worker consumes (with its dead-letter queue)."""
    dlx = CONTROL_EXCHANGE + ".dlx"
    return Topology(
        exchanges=(Exchange(CONTROL_EXCHANGE, type="direct"), Exchange(dlx, type="direct"), Exchange(SIGNALS_EXCHANGE, type="fanout")),
        queues=(QueueDecl(CONTROL_QUEUE, arguments={"x-dead-letter-exchange": dlx}), QueueDecl(CONTROL_QUEUE + ".dlq")),
        bindings=(Binding(CONTROL_EXCHANGE, CONTROL_QUEUE, CONTROL_QUEUE), Binding(dlx, CONTROL_QUEUE + ".dlq", CONTROL_QUEUE)),
    )


class Delivery(Protocol):
    """One message handed to a worker thread. Exactly one of `ack`, `requeue` and
    `dead_letter` is called, once the message's outcome is committed."""

    message: Message
    queue: str
    redelivered: bool  # the broker delivered it before (to a worker that died, say)

    def ack(self) -> None: ...

    def requeue(self) -> None:
        """Give it back to the queue, for this or another worker."""

    def dead_letter(self, reason: str) -> None:
        """Move it to its queue's dead-letter queue, saying why."""


class Transport(Protocol):
    def declare(self, topology: Topology) -> None: ...

    def publish(self, messages: Sequence[Message], *, due: float | None = None,
                then: Callable[[str | None], None] | None = None) -> None:
        """Publish `messages` persistently, each to its exchange with its routing key, and
        return once the broker confirmed all of them (confirms pipelined). With `due` (epoch
        seconds), each is delivered once that time has come: never before, a little after.
        Raises TransportError when they could not all be confirmed.

        With `then`, return at once instead: `then(error or None)` is called once, when all
        are confirmed or one failed (on the transport's own thread: it must not block)."""

    def consume(self, queues: Sequence[str], prefetch: int) -> None:
        """Start taking messages from `queues` (and only those) for `get`."""

    def get(self, timeout: float, *, control: bool = False) -> Delivery | None:
        """The next delivery, or None after `timeout` seconds (or once closed): from the
        control queue with `control`, else from the runners' queues. (A process takes its
        control messages on a thread of their own, never behind its steps.)"""

    def broadcast(self, body: bytes) -> None:
        """Send `body` to every process subscribed now (not kept, not confirmed: a signal)."""

    def subscribe(self, on_body: Callable[[bytes], None]) -> None:
        """Call `on_body(body)` for every broadcast from now on (on the transport's thread)."""

    def close(self) -> None: ...
