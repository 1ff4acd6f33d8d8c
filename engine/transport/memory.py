"""The memory transport: the embedded default, and a real transport, not a test helper.

Exchanges, queues and bindings are declared from the same Topology values the compiler emits
for RabbitMQ, routing follows AMQP topic (and direct) rules, each queue honours message
priority, and messages due later wait in a heap until their time. It lives and dies with its
process: what makes an embedded run survive a restart is the run's state in the database,
from which its queued step runs and waits are published again.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from legion.dsl.compile import Topology
from legion.engine.transport import CONTROL_QUEUE, Message, hand_out


def topic_matches(pattern: str, key: str) -> bool:
    return _match(pattern.split("."), key.split("."))


def _match(pattern: list[str], key: list[str]) -> bool:
    if not pattern:
        return not key
    head = pattern[0]
    if head == "#":
        return any(_match(pattern[1:], key[i:]) for i in range(len(key) + 1))
    if not key:
        return False
    if head == "*" or head == key[0]:
        return _match(pattern[1:], key[1:])
    return False


@dataclass(slots=True)
class MemoryDelivery:
    message: Message
    queue: str
    transport: MemoryTransport = field(repr=False)
    redelivered: bool = False

    def ack(self) -> None:
        pass

    def requeue(self) -> None:
        self.transport._put(self.queue, self.message, redelivered=True)

    def dead_letter(self, reason: str) -> None:
        with self.transport._ready:
            self.transport.dead.append((self.queue, self.message, reason))


class MemoryTransport:
    """In-process topic exchanges and priority queues shared by the worker threads."""

    def __init__(self) -> None:
        self._bindings: dict[str, list[tuple[str, str]]] = {}  # exchange -> [(pattern, queue)]
        self._queues: dict[str, list[tuple[int, int, Message, bool]]] = {}
        self._routes: dict[tuple[str, str], tuple[str, ...]] = {}  # cache: (exchange, key) -> queues
        self._consumed: tuple[str, ...] | None = None  # None: every queue
        self._later: list[tuple[float, int, Message]] = []
        self._order = itertools.count()
        lock = threading.RLock()  # of everything here
        self._ready = threading.Condition(lock)  # a step message came
        self._control_ready = threading.Condition(lock)  # a control message came, or a message is due
        self._closed = False
        self.dead: list[tuple[str, Message, str]] = []  # (queue or exchange, message, why): the dead letters
        self._subscribers: list[Callable[[bytes], None]] = []

    def declare(self, topology: Topology) -> None:
        with self._ready:
            for exchange in topology.exchanges:
                self._bindings.setdefault(exchange.name, [])
            for queue in topology.queues:
                self._queues.setdefault(queue.name, [])
            for b in topology.bindings:
                if (b.routing_key, b.queue) not in self._bindings.setdefault(b.exchange, []):
                    self._bindings[b.exchange].append((b.routing_key, b.queue))
            self._routes.clear()

    def publish(self, messages: Sequence[Message], *, due: float | None = None,
                then: Callable[[str | None], None] | None = None) -> None:
        with self._ready:
            if due is not None and due > time.time():
                for message in messages:
                    heapq.heappush(self._later, (due, next(self._order), message))
                self._control_ready.notify_all()  # the control taker waits for the first due one
            else:
                for message in messages:
                    self._route(message)
        if then is not None:
            then(None)

    def broadcast(self, body: bytes) -> None:
        hand_out(self._subscribers, body)

    def subscribe(self, on_body: Callable[[bytes], None]) -> None:
        self._subscribers.append(on_body)

    def _route(self, message: Message) -> None:
        """Called with the lock held."""
        exchange, key = message.exchange, message.routing_key
        targets = self._routes.get((exchange, key))
        if targets is None:
            targets = tuple(q for pattern, q in self._bindings.get(exchange, ()) if topic_matches(pattern, key))
            self._routes[(exchange, key)] = targets
        if not targets:
            self.dead.append((exchange, message, f"no queue is bound to {exchange} for {key}"))
            return
        for q in targets:
            heapq.heappush(self._queues[q], (-message.priority, next(self._order), message, False))
            self._notify(q)

    def _notify(self, queue: str) -> None:
        (self._control_ready if queue == CONTROL_QUEUE else self._ready).notify()

    def _put(self, queue: str, message: Message, *, redelivered: bool) -> None:
        with self._ready:
            heapq.heappush(self._queues.setdefault(queue, []), (-message.priority, next(self._order), message, redelivered))
            self._notify(queue)

    def consume(self, queues: Sequence[str], prefetch: int = 0) -> None:
        with self._ready:
            for q in queues:
                self._queues.setdefault(q, [])
            self._consumed = tuple(queues)

    def get(self, timeout: float = 0.5, *, control: bool = False) -> MemoryDelivery | None:
        """The next message from a consumed queue: highest priority first, then oldest. From
        the control queue only with `control`, else from the others."""
        deadline = time.monotonic() + timeout
        ready = self._control_ready if control else self._ready
        with self._ready:
            while not self._closed:
                now = time.time()
                while self._later and self._later[0][0] <= now:
                    self._route(heapq.heappop(self._later)[2])
                best: tuple[str, list[tuple[int, int, Message, bool]]] | None = None
                names = self._consumed if self._consumed is not None else tuple(self._queues)
                for name in names:
                    if (name == CONTROL_QUEUE) != control:
                        continue
                    q = self._queues[name]
                    if q and (best is None or q[0] < best[1][0]):
                        best = (name, q)
                if best is not None:
                    _, _, message, redelivered = heapq.heappop(best[1])
                    return MemoryDelivery(message, best[0], self, redelivered)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                if self._later and control:
                    remaining = min(remaining, max(0.0, self._later[0][0] - now))
                ready.wait(remaining)
            return None

    def depth(self) -> dict[str, int]:
        with self._ready:
            return {name: len(q) for name, q in self._queues.items()}

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()
            self._control_ready.notify_all()
