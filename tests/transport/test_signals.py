"""Signals to every process (interrupts, presence) and the control messages' own taker: on
the memory transport, on RabbitMQ and on Redis (the real services; skipped locally when one
is down, failed when CI=true)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from services import redis_url
from test_amqp_transport import AMQP, require_broker
from waiting import wait_until

from legion.engine.signals import RedisSignals, TransportSignals, decode_interrupt, encode_interrupt
from legion.engine.transport import CONTROL_QUEUE, Message, control_topology
from legion.engine.transport.amqp import AmqpTransport
from legion.engine.transport.memory import MemoryTransport

# ------------------------------------------------------------------------- interrupts, encoded


def test_an_interrupt_travels_as_json_and_garbage_is_ignored() -> None:
    assert decode_interrupt(encode_interrupt("r-1", 7)) == ("r-1", 7)
    assert decode_interrupt(encode_interrupt("r-1", None)) == ("r-1", None)
    assert decode_interrupt(b"not json") is None
    assert decode_interrupt(b'{"number": 3}') is None


# ----------------------------------------------------------------- the memory transport


def test_memory_control_messages_are_taken_apart_from_steps() -> None:
    t = MemoryTransport()
    t.declare(control_topology())
    t.consume([CONTROL_QUEUE])
    t.publish([Message("r", 1, kind="wake")])
    assert t.get(0.05) is None  # a worker thread never takes it
    d = t.get(1.0, control=True)
    assert d is not None and d.message.kind == "wake"


def test_memory_due_control_message_wakes_the_control_taker_at_its_time() -> None:
    t = MemoryTransport()
    t.declare(control_topology())
    t.consume([CONTROL_QUEUE])
    t.publish([Message("r", 2, kind="wake")], due=time.time() + 0.2)
    started = time.monotonic()
    d = t.get(5.0, control=True)
    assert d is not None and d.message.number == 2
    assert 0.15 <= time.monotonic() - started < 4.0  # never early; not at the end of the wait either


def test_memory_signals_reach_the_subscribers_of_the_process() -> None:
    heard: list[tuple[str, int | None]] = []
    signals = TransportSignals(MemoryTransport())
    signals.listen(lambda run_id, number: heard.append((run_id, number)))
    signals.interrupt("r", 4)
    signals.interrupt("r", None)
    assert heard == [("r", 4), ("r", None)]


# ------------------------------------------------------------------------------ RabbitMQ


@pytest.fixture
def two() -> Iterator[tuple[AmqpTransport, AmqpTransport]]:
    require_broker()
    a = AmqpTransport(AMQP, name=f"legion-test-{uuid.uuid4().hex[:6]}")
    b = AmqpTransport(AMQP, name=f"legion-test-{uuid.uuid4().hex[:6]}")
    try:
        a.declare(control_topology())
        yield a, b
    finally:
        a.close(grace=0)
        b.close(grace=0)


def test_amqp_interrupt_from_one_process_reaches_every_listening_one(two: tuple[AmqpTransport, AmqpTransport]) -> None:
    a, b = two
    heard_a: list[tuple[str, int | None]] = []
    heard_b: list[tuple[str, int | None]] = []
    TransportSignals(a).listen(lambda r, n: heard_a.append((r, n)))
    TransportSignals(b).listen(lambda r, n: heard_b.append((r, n)))
    run_id = uuid.uuid4().hex
    # The subscriptions are made on the I/O threads: send until both hear (each send is one
    # signal; a late subscriber misses the earlier ones, as a signal is not kept).
    wait_until(lambda: (TransportSignals(a).interrupt(run_id, 3), heard_a and heard_b)[1], timeout=10,
               interval=0.2, what="the interrupt on both transports")
    assert {(run_id, 3)} == set(heard_a) == set(heard_b)


# --------------------------------------------------------------------------------- Redis


@pytest.fixture
def redis_signals() -> Iterator[RedisSignals]:
    signals = RedisSignals(redis_url())
    yield signals
    signals.close()


def test_redis_interrupts_reach_the_listener(redis_signals: RedisSignals) -> None:
    other = RedisSignals(redis_url())
    heard: list[tuple[str, int | None]] = []
    got = threading.Event()
    run_id = uuid.uuid4().hex

    def on(r: str, n: int | None) -> None:
        if r == run_id:
            heard.append((r, n))
            got.set()

    redis_signals.listen(on)
    try:
        wait_until(lambda: (other.interrupt(run_id, None), got.wait(0.2))[1], timeout=10, what="the interrupt on Redis")
    finally:
        other.close()
    assert set(heard) == {(run_id, None)}


def test_redis_presence_expires_and_is_withdrawn(redis_signals: RedisSignals) -> None:
    node = f"test-{uuid.uuid4().hex[:8]}:1"
    redis_signals.beat(node, {"role": "worker", "in_flight": 2}, ttl=0.5)
    assert redis_signals.alive()[node] == {"role": "worker", "in_flight": 2}
    wait_until(lambda: node not in redis_signals.alive(), timeout=10, what="the presence to expire")
    redis_signals.beat(node, {"role": "worker"}, ttl=30)
    assert node in redis_signals.alive()
    redis_signals.gone(node)
    assert node not in redis_signals.alive()
