"""The AMQP transport: RabbitMQ through pika.

One I/O thread owns the pika `SelectConnection` (and every channel on it); other threads only
hand it callbacks through `add_callback_threadsafe` and wait for their outcome. So heartbeats
keep flowing while worker threads run long steps, and pika, which is not thread-safe, is only
ever touched from one thread.

- Publisher confirms are pipelined: a `publish` sends every message, then waits until the
  broker confirmed them all (or nacked one, or returned one as unroutable, or the time ran
  out).
- A message due later waits in a delay bucket queue (`legion.delay.<ms>`, a fixed TTL) that
  dead-letters to `legion.ready`; a consuming transport takes `legion.ready`, sends what is due
  to its real exchange and puts the rest into the next bucket. Never early, a little late.
- When the connection drops, it reconnects with backoff, declares again what was declared,
  consumes again and publishes again what the broker had not confirmed. Deliveries taken
  before the drop cannot be settled any more (their channel is gone): the broker gives them
  again, to this or another worker, and settling the old ones does nothing.
"""

from __future__ import annotations

import logging
import math
import queue as queue_mod
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pika
from pika.adapters.select_connection import IOLoop

from legion.dsl.compile import DELAY_BUCKETS_MS, Topology, delay_topology
from legion.engine.errors import ServiceUnavailable
from legion.engine.transport import CONTROL_QUEUE, SIGNALS_EXCHANGE, Message, TransportError, control_topology, hand_out

log = logging.getLogger("legion.transport.amqp")
# pika narrates every channel and socket at INFO; a worker's log (and its steps' logs) keeps its warnings only.
logging.getLogger("pika").setLevel(logging.WARNING)

T = TypeVar("T")

READY_QUEUE = "legion.ready"
DELAY_EXCHANGE = "legion.delay"
# Headers of a message on its way through the delay buckets: where it goes once due, and when.
H_EXCHANGE = "x-legion-exchange"
H_ROUTING_KEY = "x-legion-routing-key"
H_DUE = "x-legion-due"  # epoch milliseconds, rounded up (AMQP tables carry no floats)
# Headers of a dead letter this transport wrote.
H_REASON = "x-legion-reason"
H_QUEUE = "x-legion-queue"
H_DEAD_AT = "x-legion-dead-at"

BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0
CONNECT_TIMEOUT_S = 10.0


class BrokerUnreachable(TransportError, ServiceUnavailable):
    """RabbitMQ cannot be reached (or refused the login) when the transport starts."""


def redact_url(url: str) -> str:
    """The URL with its password as ***."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user, host = parts.netloc.rsplit("@", 1)
        return urlunsplit(parts._replace(netloc=f"{user.split(':', 1)[0]}:***@{host}"))
    except ValueError:
        return "<unparsable URL>"


def connection_parameters(url: str, *, name: str = "legion", heartbeat: int = 30) -> pika.URLParameters:
    """pika's parameters for `url`. amqps:// uses TLS with the system's CA certificates and
    checks the broker's host name (pika's own default context would not know the name)."""
    shown = redact_url(url)
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("amqp", "amqps"):
        raise TransportError(f"{shown} is not an AMQP URL: write it as amqp://user:password@host:5672/vhost")
    try:
        params = pika.URLParameters(url)
    except Exception as exc:  # pika raises ValueError and friends for bad query options
        raise TransportError(f"{shown} is not a valid AMQP URL ({type(exc).__name__})") from None
    if scheme == "amqps":
        params.ssl_options = pika.SSLOptions(ssl.create_default_context(), server_hostname=params.host)
    params.heartbeat = heartbeat
    params.connection_attempts = 1
    params.socket_timeout = CONNECT_TIMEOUT_S
    params.client_properties = {"connection_name": name, "product": "legion"}
    return params


def delay_bucket(remaining_s: float) -> int:
    """The largest bucket (ms) not longer than what is left; the smallest when less is left."""
    left_ms = remaining_s * 1000
    fitting = [ms for ms in DELAY_BUCKETS_MS if ms <= left_ms]
    return fitting[-1] if fitting else DELAY_BUCKETS_MS[0]


def dead_letter_exchange(queue: str, arguments: dict[str, Any] | None = None) -> str:
    """Where a message of `queue` goes when it is dead-lettered: the queue's declared
    `x-dead-letter-exchange`, else what Legion's topology would have declared."""
    if arguments and arguments.get("x-dead-letter-exchange"):
        return str(arguments["x-dead-letter-exchange"])
    if queue == CONTROL_QUEUE:
        return CONTROL_QUEUE + ".dlx"
    parts = queue.split(".")
    if len(parts) >= 3 and parts[0] == "lex":
        return f"lex.{parts[1]}.dlx"
    raise TransportError(f"queue {queue} has no dead-letter exchange")


class _Batch:
    """The messages of one `publish` call, waited for together."""

    def __init__(self, count: int, then: Callable[[str | None], None] | None = None) -> None:
        self.left = count
        self.error: str | None = None
        self.abandoned = False  # its caller stopped waiting: never publish it again
        self.event = threading.Event()
        self.then = then  # a caller that does not wait: called once, with the error or None
        if count == 0:
            self.event.set()

    def settle(self, error: str | None) -> None:
        """Called on the I/O thread, once per message."""
        self.left -= 1
        if error and self.error is None:
            self.error = error
        if (self.left <= 0 or self.error) and not self.event.is_set():
            self.event.set()
            if self.then is not None:
                try:
                    self.then(self.error)
                except Exception:
                    log.exception("after a publish was confirmed")


@dataclass(eq=False)
class _Pending:
    """One message sent (or to be sent) and not yet confirmed."""

    exchange: str
    routing_key: str
    body: bytes
    properties: pika.BasicProperties
    on_done: Callable[[str | None], None]  # called on the I/O thread with the error or None
    batch: _Batch | None = None  # a publish() caller's; None for the transport's own
    returned: str | None = None  # basic.return came: unroutable

    @property
    def resend(self) -> bool:
        """Publish it again after a reconnect? Only for a caller still waiting: the
        transport's own publications belong to deliveries the broker will give again."""
        return self.batch is not None and not self.batch.abandoned and self.batch.error is None


@dataclass(eq=False)
class AmqpDelivery:
    """One message handed to a worker thread; settling it hops to the I/O thread."""

    message: Message
    queue: str
    redelivered: bool
    _transport: AmqpTransport = field(repr=False)
    _tag: int = field(repr=False)
    _epoch: int = field(repr=False)
    _routing_key: str = field(repr=False, default="")
    _exchange: str = field(repr=False, default="")
    _properties: Any = field(repr=False, default=None)
    _body: bytes = field(repr=False, default=b"")
    _settled: bool = field(repr=False, default=False)

    def ack(self) -> None:
        self._transport._settle(self, "ack")

    def requeue(self) -> None:
        self._transport._settle(self, "requeue")

    def dead_letter(self, reason: str) -> None:
        self._transport._dead_letter(self, reason)


class AmqpTransport:
    """The `Transport` over RabbitMQ. Thread-safe: any thread may publish, get and settle."""

    def __init__(self, url: str, *, name: str = "legion", heartbeat: int = 30, confirm_timeout: float = 30.0) -> None:
        self.url = redact_url(url)
        self.name = name
        self.confirm_timeout = confirm_timeout
        self._params = connection_parameters(url, name=name, heartbeat=heartbeat)
        self._ioloop = IOLoop()
        # Everything below is owned by the I/O thread (read elsewhere only where said).
        self._conn: pika.SelectConnection | None = None
        self._channel: Any = None  # the main channel: confirms, publishing, consuming
        self._epoch = 0  # which main channel; deliveries of an older one cannot be settled (read by get())
        self._online = False
        self._closing = False
        self._next_tag = 0
        self._unconfirmed: dict[int, _Pending] = {}  # delivery tag -> pending, in tag order
        self._by_message_id: dict[str, _Pending] = {}  # for basic.return, which carries no tag
        self._outbox: list[_Pending] = []  # to send once (re)connected
        self._topology = delay_topology().merge(control_topology())
        self._arguments: dict[str, dict[str, Any]] = {q.name: dict(q.arguments) for q in self._topology.queues}
        self._queues: tuple[str, ...] = ()  # consumed, besides legion.ready
        self._prefetch = 0
        self._consuming = False
        self._consumer_tags: dict[str, str] = {}  # consumer tag -> queue
        self._subscribers: list[Callable[[bytes], None]] = []  # of broadcasts (signals)
        self._backoff = BACKOFF_FIRST_S
        self._first: Future[None] = Future()
        self._stopped = threading.Event()
        self.reconnects = 0  # connections made after the first (read by anyone)
        # Shared with the worker threads.
        self._deliveries: queue_mod.Queue[AmqpDelivery | None] = queue_mod.Queue()  # of the runners' queues
        self._controls: queue_mod.Queue[AmqpDelivery | None] = queue_mod.Queue()  # of the control queue
        self._lock = threading.Lock()
        self._in_flight = 0  # handed out by get() and not settled
        self._pending_batches = 0  # publishes whose caller did not wait, not yet confirmed
        self._settled_cv = threading.Condition(self._lock)
        self._closed = False

        self._thread = threading.Thread(target=self._run, name=f"{name}-amqp-io", daemon=True)
        self._thread.start()
        try:
            self._first.result(timeout=CONNECT_TIMEOUT_S * 2)
        except FutureTimeout:
            self._shutdown_loop()
            raise BrokerUnreachable(f"cannot connect to RabbitMQ at {self.url}: no answer") from None
        except Exception as exc:
            self._shutdown_loop()
            raise BrokerUnreachable(f"cannot connect to RabbitMQ at {self.url}: {_reason(exc)}") from None

    # -- the I/O thread ----------------------------------------------------------------------

    def _run(self) -> None:
        self._connect()
        try:
            while True:
                try:
                    self._ioloop.start()
                    return  # stopped on purpose
                except Exception:
                    # A bug in a callback must not leave the transport without its I/O thread.
                    log.exception("error on the I/O thread of the transport to %s; it goes on", self.url)
        finally:
            self._stopped.set()

    def _connect(self) -> None:
        self._conn = pika.SelectConnection(self._params, on_open_callback=self._on_open,
                                           on_open_error_callback=self._on_open_error,
                                           on_close_callback=self._on_closed, custom_ioloop=self._ioloop)

    def _on_open(self, conn: pika.SelectConnection) -> None:
        conn.channel(on_open_callback=self._on_channel_open)

    def _on_open_error(self, conn: pika.SelectConnection, exc: BaseException) -> None:
        if not self._first.done():
            self._first.set_exception(exc)
            return
        self._retry(exc)

    def _on_closed(self, conn: pika.SelectConnection, exc: BaseException) -> None:
        self._lost()
        if self._closing:
            self._ioloop.stop()
            return
        log.warning("connection to RabbitMQ at %s lost (%s); reconnecting", self.url, _reason(exc))
        self._retry(exc)

    def _retry(self, exc: BaseException) -> None:
        if self._closing:
            self._ioloop.stop()
            return
        delay, self._backoff = self._backoff, min(self._backoff * 2, BACKOFF_MAX_S)
        log.info("reconnecting to RabbitMQ at %s in %.1fs (%s)", self.url, delay, _reason(exc))
        self._ioloop.call_later(delay, self._connect)

    def _lost(self) -> None:
        """The main channel is gone: what it had not confirmed is sent again on the next one
        (the transport's own publications are dropped: their deliveries come again)."""
        self._online = False
        self._channel = None
        self._epoch += 1
        self._outbox = [p for p in (*self._unconfirmed.values(), *self._outbox) if p.resend]
        self._unconfirmed.clear()
        self._by_message_id.clear()

    def _on_channel_open(self, channel: Any) -> None:
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(self._on_confirm)
        self._next_tag = 0
        self._channel = channel
        self._epoch += 1
        # Declare on a channel of its own: a refused declaration closes only that one.
        self._declare_async(self._topology, lambda error: self._on_declared(channel, error))

    def _on_declared(self, channel: Any, error: str | None) -> None:
        if channel is not self._channel:
            return
        if error:
            log.error("declaring the topology again on %s failed: %s", self.url, error)
        if self._consuming:
            self._start_consuming()
        if self._subscribers:
            self._start_listening(channel)
        self._online = True
        self._backoff = BACKOFF_FIRST_S
        if self._first.done():
            self.reconnects += 1
            log.info("reconnected to RabbitMQ at %s", self.url)
        else:
            self._first.set_result(None)
        outbox, self._outbox = self._outbox, []
        for pending in outbox:
            if pending.batch is None or pending.resend:
                self._send(pending)

    def _on_channel_closed(self, channel: Any, exc: BaseException) -> None:
        if channel is not self._channel or not isinstance(exc, pika.exceptions.ChannelClosedByBroker):
            return  # closed with its connection: _on_closed publishes its unconfirmed again
        # The broker closed the channel (publishing to an exchange that does not exist, say):
        # what it had not confirmed may or may not have been routed, so it fails, and the
        # work continues on a new channel.
        error = f"the broker closed the channel: {_reason(exc)}"
        failed = list(self._unconfirmed.values())
        self._unconfirmed.clear()
        self._by_message_id.clear()
        self._channel = None
        self._online = False
        self._epoch += 1
        for pending in failed:
            pending.on_done(error)
        if self._conn is not None and self._conn.is_open and not self._closing:
            log.warning("%s on %s; opening another", error, self.url)
            self._conn.channel(on_open_callback=self._on_channel_open)

    def _send(self, pending: _Pending) -> None:
        if not self._online or self._channel is None:
            self._outbox.append(pending)
            return
        try:
            # Encode first: a bad header would otherwise fail after the tag was counted.
            pending.properties.encode()
        except Exception as exc:
            pending.on_done(f"cannot encode the message's properties ({_reason(exc)})")
            return
        self._next_tag += 1
        self._unconfirmed[self._next_tag] = pending
        self._by_message_id[pending.properties.message_id] = pending
        try:
            self._channel.basic_publish(pending.exchange, pending.routing_key, pending.body, pending.properties, mandatory=True)
        except Exception as exc:  # the connection is going: it stays unconfirmed, for the next one
            log.debug("publishing to %s failed (%s); it is sent again after the reconnect", pending.exchange, _reason(exc))

    def _on_return(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        # basic.return comes before the message's ack: remember it, fail it on the ack.
        pending = self._by_message_id.get(properties.message_id)
        if pending is not None:
            pending.returned = f"unroutable: no queue is bound to {method.exchange} for {method.routing_key} ({method.reply_text})"

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        nack = isinstance(method, pika.spec.Basic.Nack)
        tags = [t for t in self._unconfirmed if t <= method.delivery_tag] if method.multiple else [method.delivery_tag]
        for tag in tags:
            pending = self._unconfirmed.pop(tag, None)
            if pending is None:
                continue
            self._by_message_id.pop(pending.properties.message_id, None)
            error = "the broker refused it (nack)" if nack else pending.returned
            pending.on_done(error)

    def _declare_async(self, topology: Topology, done: Callable[[str | None], None]) -> None:
        """Declare `topology` on a channel of its own; `done(error or None)` once it is."""
        conn = self._conn
        if conn is None or not conn.is_open:
            done("not connected")
            return
        finished = False

        def finish(error: str | None) -> None:
            nonlocal finished
            if not finished:
                finished = True
                done(error)

        def on_close(channel: Any, exc: BaseException) -> None:
            finish(_reason(exc))

        def on_open(channel: Any) -> None:
            channel.add_on_close_callback(on_close)

            def last(_frame: Any) -> None:
                finish(None)
                channel.close()

            # pika sends a channel's RPCs one after the other, so the bindings follow the
            # exchanges and queues they name; only the last one needs to say it is done.
            calls: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []
            for e in topology.exchanges:
                calls.append((channel.exchange_declare, (e.name,), {"exchange_type": e.type, "durable": e.durable}))
            for q in topology.queues:
                calls.append((channel.queue_declare, (q.name,), {"durable": q.durable, "arguments": dict(q.arguments) or None}))
            for b in topology.bindings:
                calls.append((channel.queue_bind, (b.queue, b.exchange), {"routing_key": b.routing_key}))
            if not calls:
                finish(None)
                channel.close()
                return
            for i, (method, args, kwargs) in enumerate(calls):
                method(*args, callback=last if i == len(calls) - 1 else _ignore, **kwargs)

        conn.channel(on_open_callback=on_open)

    def _start_consuming(self) -> None:
        channel = self._channel
        channel.basic_qos(prefetch_count=self._prefetch)
        self._consumer_tags = {}
        for name in (*self._queues, READY_QUEUE):
            tag = channel.basic_consume(name, self._on_message if name != READY_QUEUE else self._on_ready,
                                        auto_ack=False, callback=lambda _frame: None)
            self._consumer_tags[tag] = name

    def _start_listening(self, channel: Any) -> None:
        """A queue of this connection's own (exclusive: it goes with it), bound to the
        signals exchange, consumed without acks."""

        def declared(frame: Any) -> None:
            queue = frame.method.queue
            channel.queue_bind(queue, SIGNALS_EXCHANGE, callback=lambda _f: channel.basic_consume(
                queue, self._on_signal, auto_ack=True, callback=_ignore))

        channel.queue_declare("", exclusive=True, auto_delete=True, callback=declared)

    def _on_signal(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        hand_out(self._subscribers, body)

    def subscribe(self, on_body: Callable[[bytes], None]) -> None:
        def run(future: Future[None]) -> None:
            first = not self._subscribers
            self._subscribers.append(on_body)
            if first and self._online and self._channel is not None:
                self._start_listening(self._channel)
            future.set_result(None)

        self._call(run)

    def broadcast(self, body: bytes) -> None:
        props = pika.BasicProperties(delivery_mode=1, message_id=uuid.uuid4().hex, content_type="application/json")

        def failed(error: str | None) -> None:
            if error and not error.startswith("unroutable"):  # unroutable: no process listens
                log.warning("a signal to every process was not sent: %s", error)

        if not self._stopped.is_set():
            self._ioloop.add_callback_threadsafe(lambda: self._send(_Pending(SIGNALS_EXCHANGE, "", body, props, failed)))

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        queue_name = self._consumer_tags.get(method.consumer_tag, method.routing_key)
        try:
            message = Message.from_json(body)
        except ValueError as exc:
            log.warning("dead-lettering a message of %s that is not a Legion message: %s", queue_name, exc)
            delivery = AmqpDelivery(Message("", 0, kind="wake"), queue_name, method.redelivered, self, method.delivery_tag,
                                    self._epoch, method.routing_key, method.exchange, properties, body)
            epoch, tag = self._epoch, method.delivery_tag

            def done(error: str | None) -> None:
                if error:  # no dead-letter queue to keep it in: the broker's own dead-lettering, or nothing
                    log.error("cannot dead-letter the message of %s that is not a Legion message: %s", queue_name, error)
                    self._nack(epoch, tag, requeue=False)

            self._publish_dead_letter(delivery, str(exc), done)
            return
        (self._controls if queue_name == CONTROL_QUEUE else self._deliveries).put(AmqpDelivery(
            message, queue_name, bool(method.redelivered), self, method.delivery_tag, self._epoch, method.routing_key,
            method.exchange, properties, body))

    def _on_ready(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        """A message back from a delay bucket: to its real exchange once due, else to the next bucket."""
        epoch, tag = self._epoch, method.delivery_tag
        headers = dict(properties.headers or {})
        try:
            exchange, key, due_ms = str(headers[H_EXCHANGE]), str(headers[H_ROUTING_KEY]), int(headers[H_DUE])
        except (KeyError, TypeError, ValueError):
            log.error("dropping a message on %s without its delay headers: %r", READY_QUEUE, body[:200])
            channel.basic_nack(tag, requeue=False)
            return
        left = due_ms / 1000 - time.time()
        if left <= 0:
            for h in (H_EXCHANGE, H_ROUTING_KEY, H_DUE):
                headers.pop(h, None)
            target = (exchange, key)
        else:
            bucket = f"{DELAY_EXCHANGE}.{delay_bucket(left)}"
            target = (DELAY_EXCHANGE, bucket)
        # x-death piles up with each trip through a bucket; it says nothing the headers do not.
        headers.pop("x-death", None)
        for h in ("x-first-death-exchange", "x-first-death-queue", "x-first-death-reason"):
            headers.pop(h, None)
        props = _copy_properties(properties, headers=headers or None)

        def done(error: str | None) -> None:
            if error and error.startswith("unroutable"):
                # Its queue is gone: it would be refused as well published now.
                log.error("dropping a due message for %s/%s: %s", target[0], target[1], error)
                self._ack(epoch, tag)
            elif error:
                # Give it back, a little later, so that a lasting failure does not spin.
                log.error("moving a due message to %s/%s failed: %s (it comes back from %s)", target[0], target[1], error, READY_QUEUE)
                self._ioloop.call_later(1.0, lambda: self._nack(epoch, tag, requeue=True))
            else:
                self._ack(epoch, tag)

        self._send(_Pending(target[0], target[1], body, props, done))

    def _ack(self, epoch: int, tag: int) -> bool:
        if epoch != self._epoch or self._channel is None or not self._channel.is_open:
            log.debug("not acking delivery %d: its channel is gone (the broker gives it again)", tag)
            return False
        self._channel.basic_ack(tag)
        return True

    def _nack(self, epoch: int, tag: int, *, requeue: bool) -> bool:
        if epoch != self._epoch or self._channel is None or not self._channel.is_open:
            log.debug("not requeueing delivery %d: its channel is gone (the broker gives it again)", tag)
            return False
        self._channel.basic_nack(tag, requeue=requeue)
        return True

    def _publish_dead_letter(self, d: AmqpDelivery, reason: str, done: Callable[[str | None], None]) -> None:
        """Copy `d` to its queue's dead-letter exchange with why, then ack the original."""
        try:
            dlx = dead_letter_exchange(d.queue, self._arguments.get(d.queue))
        except TransportError as exc:
            done(exc.message)
            return
        headers = dict((d._properties.headers if d._properties is not None else None) or {})
        headers.update({H_REASON: reason, H_QUEUE: d.queue, H_DEAD_AT: _now_iso(),
                        H_EXCHANGE: d._exchange, H_ROUTING_KEY: d._routing_key})
        message_id = (d._properties.message_id if d._properties is not None else None) or uuid.uuid4().hex
        props = _copy_properties(d._properties, headers=headers, message_id=message_id)
        epoch, tag = d._epoch, d._tag

        def confirmed(error: str | None) -> None:
            if not error:
                self._ack(epoch, tag)
            done(error)

        self._send(_Pending(dlx, d._routing_key, d._body, props, confirmed))

    # -- calls from other threads ------------------------------------------------------------

    def _call(self, fn: Callable[[Future[T]], None], timeout: float | None = None) -> T:
        """Run `fn(future)` on the I/O thread and wait for the future it settles."""
        if self._stopped.is_set():
            raise TransportError(f"the transport to {self.url} is closed")
        future: Future[T] = Future()

        def run() -> None:
            try:
                fn(future)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)

        self._ioloop.add_callback_threadsafe(run)
        try:
            return future.result(timeout=timeout if timeout is not None else self.confirm_timeout)
        except FutureTimeout:
            raise TransportError(f"RabbitMQ at {self.url} did not answer in time") from None

    def declare(self, topology: Topology) -> None:
        """Declare exchanges, queues and bindings (idempotent); they are declared again after
        a reconnect."""

        def run(future: Future[None]) -> None:
            def done(error: str | None) -> None:
                if error:
                    future.set_exception(TransportError(f"declaring on {self.url} failed: {error}"))
                    return
                self._topology = self._topology.merge(topology)
                for q in topology.queues:
                    self._arguments[q.name] = dict(q.arguments)
                future.set_result(None)

            self._declare_async(topology, done)

        self._call(run)

    def publish(self, messages: Sequence[Message], *, due: float | None = None,
                then: Callable[[str | None], None] | None = None) -> None:
        if not messages:
            if then is not None:
                then(None)
            return
        batch = _Batch(len(messages), self._unpending(then) if then is not None else None)
        delayed = due is not None and due > time.time()
        pendings: list[_Pending] = []
        for m in messages:
            headers: dict[str, Any] | None = None
            exchange, key = m.exchange, m.routing_key
            if delayed:
                assert due is not None
                headers = {H_EXCHANGE: exchange, H_ROUTING_KEY: key, H_DUE: math.ceil(due * 1000)}
                exchange, key = DELAY_EXCHANGE, f"{DELAY_EXCHANGE}.{delay_bucket(due - time.time())}"
            props = pika.BasicProperties(delivery_mode=2, priority=max(0, min(255, m.priority)), message_id=uuid.uuid4().hex,
                                         content_type="application/json", headers=headers)
            pendings.append(_Pending(exchange, key, m.to_json(), props, batch.settle, batch))

        def send_all() -> None:
            for p in pendings:
                self._send(p)

        if self._stopped.is_set():
            raise TransportError(f"the transport to {self.url} is closed")
        if then is not None:
            with self._lock:
                self._pending_batches += 1
        self._ioloop.add_callback_threadsafe(send_all)
        if then is not None:
            return
        if not batch.event.wait(self.confirm_timeout):
            batch.abandoned = True
            raise TransportError(f"RabbitMQ at {self.url} did not confirm {batch.left} of {len(messages)} messages "
                                 f"within {self.confirm_timeout:g}s")
        if batch.error:
            raise TransportError(f"publishing to {self.url} failed: {batch.error}")

    def _unpending(self, then: Callable[[str | None], None]) -> Callable[[str | None], None]:
        def done(error: str | None) -> None:
            try:
                then(error)
            finally:
                with self._lock:
                    self._pending_batches -= 1
                    self._settled_cv.notify_all()

        return done

    def consume(self, queues: Sequence[str], prefetch: int) -> None:
        """Consume `queues` (and `legion.ready`, for the delayed messages) with `prefetch`
        unacknowledged messages per consumer."""

        def run(future: Future[None]) -> None:
            if self._channel is not None and self._channel.is_open:
                for tag in self._consumer_tags:
                    self._channel.basic_cancel(tag)
            self._queues, self._prefetch, self._consuming = tuple(queues), prefetch, True
            if self._online:
                self._start_consuming()
            future.set_result(None)

        self._call(run)

    def get(self, timeout: float, *, control: bool = False) -> AmqpDelivery | None:
        deadline = time.monotonic() + timeout
        deliveries = self._controls if control else self._deliveries
        while not self._closed:
            try:
                d = deliveries.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue_mod.Empty:
                return None
            if d is None or self._closed:
                deliveries.put(None)  # and wake the next waiting thread too
                return None
            if d._epoch != self._epoch:
                continue  # taken before a reconnect: the broker gives it again
            with self._lock:
                self._in_flight += 1
            return d
        return None

    def _settle(self, d: AmqpDelivery, how: str) -> None:
        if d._settled:
            return

        def run() -> None:
            if how == "ack":
                self._ack(d._epoch, d._tag)
            else:
                self._nack(d._epoch, d._tag, requeue=True)

        # Not waited for (a lost ack is a redelivery, which the runtime drops as a duplicate),
        # so any thread may settle, the I/O thread among them (from a publish's `then`).
        try:
            if threading.current_thread() is self._thread:
                run()  # waking the loop through its pipe would cost more than the ack
            elif not self._stopped.is_set():
                self._ioloop.add_callback_threadsafe(run)
        finally:
            self._done_with(d)

    def _dead_letter(self, d: AmqpDelivery, reason: str) -> None:
        if d._settled:
            return

        def run(future: Future[None]) -> None:
            def done(error: str | None) -> None:
                if error:
                    future.set_exception(TransportError(f"dead-lettering a message of {d.queue} failed: {error}"))
                else:
                    future.set_result(None)

            if d._epoch != self._epoch:
                log.debug("not dead-lettering a message of %s: its channel is gone (the broker gives it again)", d.queue)
                future.set_result(None)
                return
            self._publish_dead_letter(d, reason, done)

        self._call(run)
        self._done_with(d)

    def _done_with(self, d: AmqpDelivery) -> None:
        with self._lock:
            if not d._settled:
                d._settled = True
                self._in_flight -= 1
                self._settled_cv.notify_all()

    def stop_consuming(self) -> None:
        """Take no new messages; the ones handed out can still be settled. Those received but
        not handed out go back to their queues."""
        if self._stopped.is_set():
            return

        def run(future: Future[None]) -> None:
            channel, tags = self._channel, list(self._consumer_tags)
            self._queues, self._consumer_tags, self._consuming = (), {}, False
            if channel is None or not channel.is_open or not tags:
                future.set_result(None)
                return
            left = len(tags)

            def cancelled(_frame: Any) -> None:
                nonlocal left
                left -= 1
                if left == 0:
                    self._give_back()
                    future.set_result(None)

            for tag in tags:
                channel.basic_cancel(tag, callback=cancelled)

        self._call(run)

    def _give_back(self) -> None:
        """On the I/O thread: requeue what was received and not handed out."""
        while True:
            try:
                d = self._deliveries.get_nowait()
            except queue_mod.Empty:
                return
            if d is not None:
                self._nack(d._epoch, d._tag, requeue=True)

    def depth(self, queue: str) -> tuple[int, int]:
        """(messages ready, consumers) of `queue`, by a passive declaration."""

        def run(future: Future[tuple[int, int]]) -> None:
            conn = self._conn
            if conn is None or not conn.is_open:
                future.set_exception(TransportError(f"not connected to {self.url}"))
                return

            def on_open(channel: Any) -> None:
                def on_close(_channel: Any, exc: BaseException) -> None:
                    if not future.done():
                        future.set_exception(TransportError(f"queue {queue} on {self.url}: {_reason(exc)}"))

                def declared(frame: Any) -> None:
                    future.set_result((frame.method.message_count, frame.method.consumer_count))
                    channel.close()

                channel.add_on_close_callback(on_close)
                channel.queue_declare(queue, passive=True, callback=declared)

            conn.channel(on_open_callback=on_open)

        return self._call(run)

    def close(self, grace: float = 5.0) -> None:
        """Stop consuming, wait up to `grace` seconds for the deliveries handed out to be
        settled, then close the connection. `get` returns None from then on."""
        if self._stopped.is_set():
            self._closed = True
            return
        try:
            self.stop_consuming()
        except TransportError as exc:
            log.debug("stopping consumption on close: %s", exc)
        deadline = time.monotonic() + grace
        with self._lock:
            while (self._in_flight > 0 or self._pending_batches > 0) and time.monotonic() < deadline:
                self._settled_cv.wait(max(0.0, deadline - time.monotonic()))
        self._closed = True
        self._deliveries.put(None)
        self._controls.put(None)
        self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        def run() -> None:
            self._closing = True
            conn = self._conn
            try:
                if conn is None or conn.is_closed or conn.is_closing:
                    raise RuntimeError("no connection to close")
                conn.close()  # _on_closed stops the loop
            except Exception:
                self._ioloop.stop()
            for pending in self._outbox + list(self._unconfirmed.values()):
                pending.on_done("the transport was closed")
            self._outbox.clear()

        if not self._stopped.is_set():
            self._ioloop.add_callback_threadsafe(run)
            self._stopped.wait(CONNECT_TIMEOUT_S)
        self._thread.join(timeout=CONNECT_TIMEOUT_S)
        if not self._thread.is_alive():
            self._ioloop.close()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ignore(_frame: Any) -> None:
    pass


def _copy_properties(p: Any, **changes: Any) -> pika.BasicProperties:
    fields = ("content_type", "content_encoding", "headers", "delivery_mode", "priority", "correlation_id", "reply_to",
              "expiration", "message_id", "timestamp", "type", "user_id", "app_id")
    values = {f: getattr(p, f, None) for f in fields} if p is not None else {}
    values["delivery_mode"] = 2
    values.update(changes)
    return pika.BasicProperties(**values)


def _reason(exc: BaseException) -> str:
    """pika's exceptions often print as nothing: their class and arguments instead."""
    nested = getattr(exc, "exceptions", None)  # a failed connection workflow: why its last attempt failed
    if isinstance(nested, list | tuple) and nested and isinstance(nested[-1], BaseException):
        return _reason(nested[-1])
    inner = getattr(exc, "exception", None) or (exc.args[0] if len(exc.args) == 1 else None)
    if isinstance(inner, BaseException):  # a wrapper: what it wraps
        return _reason(inner)
    text = str(exc).strip() or "; ".join(str(a) for a in exc.args).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
