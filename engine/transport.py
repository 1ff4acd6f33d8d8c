"""Transports: how step messages travel from whoever queues a step run to a worker.

The memory transport is the embedded default and a real one, not a test helper: exchanges,
queues and bindings are declared from the same Topology values the compiler emits for
RabbitMQ, routing follows AMQP topic rules, and each queue honours message priority.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from dataclasses import dataclass

from legion.dsl.compile import Topology, routing_key


@dataclass(frozen=True, slots=True)
class StepMessage:
    """The envelope between processes: which step run of which run to start.

    Routing metadata lives in the body, explicitly; the run's context stays with the run.
    """

    run_id: str
    number: int
    function: str
    priority: int = 0

    @property
    def routing_key(self) -> str:
        return routing_key(self.function)


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


class MemoryTransport:
    """In-process topic exchanges and priority queues shared by the worker threads."""

    def __init__(self) -> None:
        self._bindings: dict[str, list[tuple[str, str]]] = {}  # exchange -> [(pattern, queue)]
        self._queues: dict[str, list[tuple[int, int, StepMessage]]] = {}
        self._routes: dict[tuple[str, str], tuple[str, ...]] = {}  # cache: (exchange, key) -> queues
        self._order = itertools.count()
        self._ready = threading.Condition()
        self._closed = False
        self.dead: list[tuple[str, StepMessage]] = []  # unroutable messages, visible for inspection

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

    def publish(self, exchange: str, message: StepMessage) -> int:
        """Route a message to every bound queue; returns how many queues got it."""
        key = message.routing_key
        with self._ready:
            targets = self._routes.get((exchange, key))
            if targets is None:
                targets = tuple(q for pattern, q in self._bindings.get(exchange, ()) if topic_matches(pattern, key))
                self._routes[(exchange, key)] = targets
            if not targets:
                self.dead.append((exchange, message))
                return 0
            for q in targets:
                heapq.heappush(self._queues[q], (-message.priority, next(self._order), message))
            self._ready.notify(len(targets))
            return len(targets)

    def get(self, timeout: float = 0.5) -> StepMessage | None:
        """The next message from any queue: highest priority first, then oldest."""
        deadline = time.monotonic() + timeout
        with self._ready:
            while not self._closed:
                best: list[tuple[int, int, StepMessage]] | None = None
                for q in self._queues.values():
                    if q and (best is None or q[0] < best[0]):
                        best = q
                if best is not None:
                    return heapq.heappop(best)[2]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._ready.wait(remaining)
            return None

    def depth(self) -> dict[str, int]:
        with self._ready:
            return {name: len(q) for name, q in self._queues.items()}

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()
