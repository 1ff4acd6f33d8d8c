"""The AMQP transport against the real RabbitMQ: each test declares a runner topology of its
own (a random extension name) and deletes it afterwards."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pika
import pytest
from services import unreachable
from waiting import wait_until

from legion.dsl.compile import DELAY_BUCKETS_MS, runner_topology
from legion.engine.errors import ServiceUnavailable
from legion.engine.transport import Message, TransportError
from legion.engine.transport.admin import dlq_list
from legion.engine.transport.amqp import (
    AmqpDelivery,
    AmqpTransport,
    connection_parameters,
    dead_letter_exchange,
    delay_bucket,
    redact_url,
)

AMQP = os.environ.get("LEGION_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def require_broker() -> None:
    parts = urlsplit(AMQP)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), timeout=2).close()
    except OSError as exc:
        unreachable(f"RabbitMQ at {redact_url(AMQP)} is unreachable ({exc})")


def delete_topology(ext: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    try:
        channel = connection.channel()
        for q in runner_topology(ext, "r").queues:
            channel.queue_delete(q.name)
        for e in runner_topology(ext, "r").exchanges:
            channel.exchange_delete(e.name)
    finally:
        connection.close()


class Broker:
    """A runner topology of this test's own and the transports it opened."""

    def __init__(self) -> None:
        self.ext = f"t{secrets.token_hex(5)}"
        self.queue = f"lex.{self.ext}.r"
        self.dlq = self.queue + ".dlq"
        self.transports: list[AmqpTransport] = []

    def transport(self, **options: object) -> AmqpTransport:
        t = AmqpTransport(AMQP, name=f"legion-test-{secrets.token_hex(6)}", **options)  # type: ignore[arg-type]
        t.declare(runner_topology(self.ext, "r"))
        self.transports.append(t)
        return t

    def message(self, number: int, priority: int = 0) -> Message:
        return Message("run-1", number, f"{self.ext}.r.work", priority=priority)


@pytest.fixture
def broker() -> Iterator[Broker]:
    require_broker()
    b = Broker()
    try:
        yield b
    finally:
        for t in b.transports:
            t.close(grace=0)
        delete_topology(b.ext)


def take(t: AmqpTransport, count: int, timeout: float = 10.0) -> list[AmqpDelivery]:
    """`count` deliveries (acked), failing past `timeout`."""
    got: list[AmqpDelivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"only {len(got)} of {count} deliveries within {timeout}s"
        d = t.get(min(left, 1.0))
        if d is not None:
            d.ack()
            got.append(d)
    return got


pytestmark = pytest.mark.integration


# -- without a broker ---------------------------------------------------------------------------


def test_delay_buckets_never_overshoot() -> None:
    assert delay_bucket(0.2) == DELAY_BUCKETS_MS[0]  # less than the smallest: the smallest
    assert delay_bucket(1.2) == 1_000 and delay_bucket(5.0) == 5_000 and delay_bucket(29.9) == 5_000
    assert delay_bucket(10 * 3600) == DELAY_BUCKETS_MS[-1]


def test_dead_letter_exchanges() -> None:
    assert dead_letter_exchange("lex.http.call") == "lex.http.dlx"
    assert dead_letter_exchange("legion.control") == "legion.control.dlx"
    assert dead_letter_exchange("q", {"x-dead-letter-exchange": "elsewhere"}) == "elsewhere"
    with pytest.raises(TransportError):
        dead_letter_exchange("legion.ready")


def test_amqps_checks_the_certificate_and_host_name() -> None:
    params = connection_parameters("amqps://u:p@broker.example:5671/v", heartbeat=7)
    assert params.ssl_options is not None and params.ssl_options.server_hostname == "broker.example"
    assert params.ssl_options.context.verify_mode == ssl.CERT_REQUIRED and params.heartbeat == 7
    assert connection_parameters("amqp://u:p@h/v").ssl_options is None
    with pytest.raises(TransportError, match=r"redis://u:\*\*\*@h/") as info:
        connection_parameters("redis://u:s3cret@h/")
    assert "s3cret" not in str(info.value)


def test_unreachable_broker_names_the_redacted_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ServiceUnavailable) as info:
        AmqpTransport(f"amqp://guest:s3cret@127.0.0.1:{port}/")
    assert isinstance(info.value, TransportError)
    assert f"amqp://guest:***@127.0.0.1:{port}/" in info.value.message and "s3cret" not in info.value.message


# -- against RabbitMQ --------------------------------------------------------------------------


def test_round_trip_highest_priority_first(broker: Broker) -> None:
    t = broker.transport()
    t.publish([broker.message(1, 0), broker.message(2, 5), broker.message(3, 9), broker.message(4, 1), broker.message(5, 9)])
    wait_until(lambda: t.depth(broker.queue)[0] == 5, what="5 messages queued")
    t.consume([broker.queue], prefetch=10)
    got = take(t, 5)
    assert [d.message.number for d in got] == [3, 5, 2, 4, 1]
    assert got[0].message == broker.message(3, 9) and got[0].queue == broker.queue and not got[0].redelivered
    assert t.get(0.2) is None


def test_confirms_are_pipelined(broker: Broker) -> None:
    t = broker.transport()
    messages = [broker.message(i, i % 10) for i in range(2000)]
    start = time.monotonic()
    t.publish(messages)
    elapsed = time.monotonic() - start
    print(f"\npublished 2000 confirmed messages in {elapsed:.3f}s: {2000 / elapsed:,.0f} msg/s")
    t.consume([broker.queue], prefetch=200)
    assert sorted(d.message.number for d in take(t, 2000, timeout=20)) == list(range(2000))


def test_unroutable_is_an_error(broker: Broker) -> None:
    t = broker.transport()
    with pytest.raises(TransportError, match="unroutable"):
        t.publish([Message("run-1", 1, f"{broker.ext}.nosuchrunner.f")])
    t.publish([broker.message(1)])  # and the transport goes on
    wait_until(lambda: t.depth(broker.queue)[0] == 1, what="the message after the unroutable one")


def test_due_message_never_arrives_early(broker: Broker) -> None:
    t = broker.transport()
    t.consume([broker.queue], prefetch=10)
    due = time.time() + 1.2
    t.publish([broker.message(1)], due=due)
    t.publish([broker.message(2)], due=time.time() - 5)  # already due: now
    first = take(t, 1, timeout=1.0)[0]
    assert first.message.number == 2
    later = take(t, 1, timeout=10)[0]
    arrived = time.time()
    assert later.message.number == 1 and arrived >= due
    print(f"\ndue message arrived {arrived - due:.3f}s after its time")


def test_poison_body_ends_in_the_dead_letter_queue(broker: Broker) -> None:
    t = broker.transport()
    t.consume([broker.queue], prefetch=10)
    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    try:
        connection.channel().basic_publish(f"lex.{broker.ext}", f"{broker.queue}.work", b"\xffnot json",
                                           pika.BasicProperties(delivery_mode=2))
    finally:
        connection.close()
    assert t.get(0.5) is None  # never handed to a worker
    wait_until(lambda: t.depth(broker.dlq)[0] == 1, what="the poison message in the DLQ")
    [entry] = dlq_list(AMQP, queues=[broker.dlq])
    assert entry["reason"].startswith("not a Legion message") and entry["message"] is None
    assert entry["queue"] == broker.dlq and entry["from_queue"] == broker.queue and entry["body"].endswith("not json")


def test_long_step_keeps_the_connection(broker: Broker) -> None:
    t = broker.transport(heartbeat=2)
    t.publish([broker.message(1)])
    t.consume([broker.queue], prefetch=1)
    d = wait_until(lambda: t.get(0.5), what="the delivery")
    time.sleep(5)  # the step runs: longer than twice the heartbeat, the I/O thread answers meanwhile
    d.ack()
    assert t.reconnects == 0
    t.stop_consuming()
    wait_until(lambda: t.depth(broker.queue) == (0, 0), what="the message acked, no consumer left")


def test_unacked_delivery_comes_again(broker: Broker) -> None:
    first = broker.transport()
    first.publish([broker.message(1)])
    first.consume([broker.queue], prefetch=1)
    d = wait_until(lambda: first.get(0.5), what="the delivery")
    assert not d.redelivered
    first.close(grace=0)
    assert first.get(0.1) is None
    d.ack()  # its channel is gone: nothing happens
    second = broker.transport()
    second.consume([broker.queue], prefetch=1)
    again = take(second, 1)[0]
    assert again.message == broker.message(1) and again.redelivered


def drop_connection(t: AmqpTransport) -> None:
    """Have the broker close `t`'s connection (rabbitmqctl), else cut its socket."""
    if shutil.which("rabbitmqctl"):
        listed = subprocess.run(["rabbitmqctl", "-q", "list_connections", "name", "client_properties"],
                                capture_output=True, text=True, timeout=30)
        for line in listed.stdout.splitlines():
            if t.name in line:
                closed = subprocess.run(["rabbitmqctl", "-q", "close_connection", line.split("\t", 1)[0], "test: dropped"],
                                        capture_output=True, text=True, timeout=30)
                if closed.returncode == 0:
                    return
    sock = t._conn._transport._sock  # type: ignore[union-attr]
    sock.shutdown(socket.SHUT_RDWR)


def test_reconnects_and_loses_nothing(broker: Broker) -> None:
    t = broker.transport()
    t.consume([broker.queue], prefetch=20)
    t.publish([broker.message(i) for i in range(50)])
    before = t.get(5)
    assert before is not None  # taken, not acked, when the connection drops
    seen: set[int] = {before.message.number}
    errors: list[BaseException] = []

    def publisher() -> None:
        try:
            for start in range(100, 300, 10):
                t.publish([broker.message(i) for i in range(start, start + 10)])
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    thread = threading.Thread(target=publisher)
    thread.start()
    drop_connection(t)
    t.publish([broker.message(i) for i in range(50, 100)])  # blocks until confirmed on the new connection
    before.ack()  # the old channel is gone: a no-op, the broker gives it again
    thread.join(30)
    assert not errors and not thread.is_alive()
    assert t.reconnects >= 1
    deadline = time.monotonic() + 20
    while seen != set(range(50)) | set(range(50, 300)) and time.monotonic() < deadline:
        d = t.get(0.5)
        if d is not None:
            seen.add(d.message.number)
            d.ack()
    assert seen == set(range(300))


def test_stop_consuming_keeps_the_in_flight_and_gives_back_the_rest(broker: Broker) -> None:
    t = broker.transport()
    t.consume([broker.queue], prefetch=5)
    t.publish([broker.message(99)])
    wait_until(lambda: t.get(0.5), what="a delivery").requeue()  # given back: it comes again, marked so
    again = wait_until(lambda: t.get(0.5), what="the requeued delivery")
    assert again.message.number == 99 and again.redelivered
    again.ack()
    t.publish([broker.message(i) for i in range(5)])
    held = wait_until(lambda: t.get(0.5), what="a delivery")
    wait_until(lambda: t.depth(broker.queue)[0] == 0, what="the other 4 prefetched")
    t.stop_consuming()  # as on SIGTERM
    wait_until(lambda: t.depth(broker.queue) == (4, 0), what="the 4 not handed out back in the queue, no consumer")
    assert t.get(0.2) is None
    held.ack()  # the one in flight still settles
    t.close()
    assert t.get(0.1) is None
    check = broker.transport()
    assert check.depth(broker.queue) == (4, 0)
