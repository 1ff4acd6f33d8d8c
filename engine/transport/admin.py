"""Looking at and repairing the broker: queue depths, and the dead letters in the `*.dlq` queues.

Plain functions, each with a short-lived connection of its own (never the transport's).

Reading dead letters without losing them: the messages of each `.dlq` queue are taken with
`basic_get` (not acknowledged), up to what is asked, and then all given back with one
`basic_nack(multiple=True, requeue=True)`. RabbitMQ puts requeued messages back where they
were, so the order stays, and a reader that dies midway loses nothing either (its channel
closes and the broker requeues). Dead-letter queues have no consumers, so nothing else takes
them meanwhile.

Which queues exist is known from the management API (http://host:15672, the URL's
credentials) when it answers; without it, from the names the caller passes, and else only the
fixed ones (`legion.control`, `legion.ready`, the delay buckets and their dead-letter queues).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pika
import pika.exceptions

from legion.dsl.compile import Topology, delay_topology
from legion.engine.errors import BadInput, NotFound, ServiceUnavailable
from legion.engine.transport import Message, control_topology
from legion.engine.transport.amqp import H_DEAD_AT, H_EXCHANGE, H_QUEUE, H_REASON, H_ROUTING_KEY, redact_url

# Passive declarations of what may be missing close their channel with NOT_FOUND, which pika
# reports as a warning; here that is an answer, not a problem.
logging.getLogger("pika.channel").setLevel(logging.ERROR)

TIMEOUT_S = 5.0
MANAGEMENT_PORT = 15672


def fixed_queues() -> list[str]:
    return [q.name for q in delay_topology().queues + control_topology().queues]


def _legion(name: str) -> bool:
    return name.startswith(("lex.", "legion."))


@contextmanager
def _channel(url: str) -> Iterator[Any]:
    """A blocking channel on a connection of its own; ServiceUnavailable when the broker
    cannot be reached."""
    shown = redact_url(url)
    try:
        params = pika.URLParameters(url)
    except Exception as exc:
        raise ServiceUnavailable(f"{shown} is not a valid AMQP URL ({type(exc).__name__})") from None
    params.connection_attempts = 1
    params.socket_timeout = TIMEOUT_S
    params.blocked_connection_timeout = TIMEOUT_S
    params.client_properties = {"connection_name": "legion-admin"}
    try:
        connection = pika.BlockingConnection(params)
    except pika.exceptions.AMQPError as exc:
        raise ServiceUnavailable(f"cannot connect to RabbitMQ at {shown} ({type(exc).__name__})") from None
    except OSError as exc:
        raise ServiceUnavailable(f"cannot connect to RabbitMQ at {shown} ({exc})") from None
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            connection.close()


def _management(url: str, path: str, management_url: str | None = None) -> Any | None:
    """GET `path` of the management API (JSON), or None when it does not answer."""
    parts = urlsplit(url)
    base = management_url or f"http://{parts.hostname or '127.0.0.1'}:{MANAGEMENT_PORT}"
    user, password = unquote(parts.username or "guest"), unquote(parts.password or "guest")
    request = urllib.request.Request(base.rstrip("/") + path)
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.loads(response.read())
    except (OSError, ValueError):  # URLError and timeouts are OSErrors
        return None


def _vhost(url: str) -> str:
    path = urlsplit(url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def _rate(stats: dict[str, Any] | None, key: str) -> float | None:
    details = (stats or {}).get(key)
    return float(details["rate"]) if isinstance(details, dict) and "rate" in details else None


def broker_status(url: str, queues: list[str] | None = None, *, management_url: str | None = None) -> dict[str, Any]:
    """Ready and unacked messages, consumers and rates of each Legion queue (or of `queues`).

    `source` says where they came from: "management" (the HTTP API: every figure), or
    "amqp" (passive declarations: ready messages and consumers; unacked and rates null)."""
    listed = _management(url, "/api/queues/" + quote(_vhost(url), safe=""), management_url)
    if isinstance(listed, list):
        wanted = set(queues) if queues is not None else None
        rows = []
        for q in listed:
            name = str(q.get("name", ""))
            if not _legion(name) or (wanted is not None and name not in wanted):
                continue
            stats = q.get("message_stats")
            rows.append({"name": name, "ready": q.get("messages_ready"), "unacked": q.get("messages_unacknowledged"),
                         "consumers": q.get("consumers"), "publish_rate": _rate(stats, "publish_details"),
                         "deliver_rate": _rate(stats, "deliver_get_details")})
        return {"url": redact_url(url), "source": "management", "queues": sorted(rows, key=lambda r: r["name"])}
    names = sorted({n for n in (queues if queues is not None else fixed_queues()) if _legion(n)})
    rows = []
    with _channel(url) as channel:
        for name in names:
            try:
                ok = channel.queue_declare(name, passive=True).method
            except pika.exceptions.ChannelClosedByBroker:
                channel = channel.connection.channel()  # a missing queue closes the channel
                rows.append({"name": name, "ready": None, "unacked": None, "consumers": None, "publish_rate": None,
                             "deliver_rate": None, "missing": True})
                continue
            rows.append({"name": name, "ready": ok.message_count, "unacked": None, "consumers": ok.consumer_count,
                         "publish_rate": None, "deliver_rate": None})
    return {"url": redact_url(url), "source": "amqp", "queues": rows}


def _dlq_names(url: str, channel: Any, queues: list[str] | None, management_url: str | None) -> list[str]:
    if queues is not None:
        names = [q for q in queues if q.endswith(".dlq")]
    else:
        listed = _management(url, "/api/queues/" + quote(_vhost(url), safe=""), management_url)
        if isinstance(listed, list):
            names = [str(q["name"]) for q in listed if str(q.get("name", "")).endswith(".dlq") and _legion(str(q["name"]))]
        else:
            names = [q for q in fixed_queues() if q.endswith(".dlq")]
    present = []
    for name in sorted(set(names)):
        try:
            channel.queue_declare(name, passive=True)
            present.append(name)
        except pika.exceptions.ChannelClosedByBroker:
            channel = channel.connection.channel()
    return present


def _entry(queue: str, properties: Any, body: bytes) -> dict[str, Any]:
    headers = dict(properties.headers or {})
    deaths = headers.get("x-death") or []
    death = deaths[0] if deaths and isinstance(deaths[0], dict) else {}
    # A dead letter RabbitMQ made itself (rejected, expired) says what it can in x-death.
    exchange = headers.get(H_EXCHANGE, death.get("exchange"))
    keys = death.get("routing-keys") or []
    routing_key = headers.get(H_ROUTING_KEY, keys[0] if keys else None)
    dead_at = headers.get(H_DEAD_AT)
    if dead_at is None and isinstance(death.get("time"), datetime):
        dead_at = death["time"].replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
    try:
        message: dict[str, Any] | None = json.loads(Message.from_json(body).to_json())
        raw = None
    except ValueError:
        message, raw = None, body[:2000].decode("utf-8", "replace")
    message_id = properties.message_id or hashlib.sha256(queue.encode() + b"\0" + body).hexdigest()[:32]
    entry = {"id": _text(message_id), "queue": queue, "reason": _text(headers.get(H_REASON, death.get("reason"))),
             "dead_at": _text(dead_at), "message": message, "exchange": _text(exchange), "routing_key": _text(routing_key),
             "from_queue": _text(headers.get(H_QUEUE, death.get("queue")))}
    if raw is not None:
        entry["body"] = raw
    return entry


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _browse(url: str, visit: Callable[[Any, str, Any, Any, bytes], bool], queues: list[str] | None,
            management_url: str | None, limit: int | None = None) -> None:
    """Take the dead letters one by one (unacked) and give `visit(channel, queue, method,
    properties, body)` each; it returns False to stop. Whatever `visit` did not ack goes back,
    in order."""
    with _channel(url) as channel:
        names = _dlq_names(url, channel, queues, management_url)
        channel = channel.connection.channel()  # passive declarations may have closed the first one
        seen = 0
        try:
            for name in names:
                while limit is None or seen < limit:
                    method, properties, body = channel.basic_get(name, auto_ack=False)
                    if method is None:
                        break
                    seen += 1
                    if not visit(channel, name, method, properties, body):
                        return
        finally:
            if channel.is_open:
                channel.basic_nack(0, multiple=True, requeue=True)  # tag 0 with multiple: every unacked one


def dlq_list(url: str, limit: int = 100, *, queues: list[str] | None = None, management_url: str | None = None) -> list[dict[str, Any]]:
    """Up to `limit` dead letters, queue by queue, oldest first; none is removed."""
    entries: list[dict[str, Any]] = []

    def visit(channel: Any, queue: str, method: Any, properties: Any, body: bytes) -> bool:
        entries.append(_entry(queue, properties, body))
        return True

    _browse(url, visit, queues, management_url, limit)
    return entries


def _not_found(id: str) -> NotFound:
    return NotFound(f"No dead letter has id {id}: run `legion dlq list` to see the ids of those there are.")


def dlq_show(url: str, id: str, *, queues: list[str] | None = None, management_url: str | None = None) -> dict[str, Any]:
    """The dead letter with id `id`; NotFound when there is none."""
    found: list[dict[str, Any]] = []

    def visit(channel: Any, queue: str, method: Any, properties: Any, body: bytes) -> bool:
        entry = _entry(queue, properties, body)
        if entry["id"] == id:
            found.append(entry)
            return False
        return True

    _browse(url, visit, queues, management_url)
    if not found:
        raise _not_found(id)
    return found[0]


def dlq_replay(url: str, id: str, *, queues: list[str] | None = None, management_url: str | None = None) -> dict[str, Any]:
    """Publish dead letter `id` again to its original exchange and routing key (confirmed),
    then remove it from its dead-letter queue. Returns its entry."""
    found: list[dict[str, Any]] = []

    def visit(channel: Any, queue: str, method: Any, properties: Any, body: bytes) -> bool:
        entry = _entry(queue, properties, body)
        if entry["id"] != id:
            return True
        if entry["message"] is None:
            raise ValueError(f"dead letter {id} is not a Legion message ({entry['reason']}): purge it rather")
        if not entry["exchange"] or entry["routing_key"] is None:
            raise ValueError(f"dead letter {id} does not say where it was published")
        message = Message.from_json(body)
        publisher = channel.connection.channel()
        publisher.confirm_delivery()
        props = pika.BasicProperties(delivery_mode=2, priority=message.priority, message_id=properties.message_id or entry["id"],
                                     content_type="application/json")
        try:
            publisher.basic_publish(entry["exchange"], entry["routing_key"], message.to_json(), props, mandatory=True)
        except pika.exceptions.UnroutableError:
            raise ValueError(f"dead letter {id}: no queue is bound to {entry['exchange']} for {entry['routing_key']}") from None
        finally:
            if publisher.is_open:
                publisher.close()
        channel.basic_ack(method.delivery_tag)
        found.append(entry)
        return False

    try:
        _browse(url, visit, queues, management_url)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    if not found:
        raise _not_found(id)
    return found[0]


def dlq_purge(url: str, queue: str | None = None, *, queues: list[str] | None = None, management_url: str | None = None) -> int:
    """Remove the dead letters of `queue` (or of every dead-letter queue); how many."""
    with _channel(url) as channel:
        if queue is not None:
            if not queue.endswith(".dlq"):
                        raise BadInput(f"{queue} is not a dead-letter queue (their names end in .dlq)")
            names = _dlq_names(url, channel, [queue], management_url)
            if not names:
                raise NotFound(f"No dead-letter queue {queue}: run `legion dlq list` to see the dead letters there are.")
        else:
            names = _dlq_names(url, channel, queues, management_url)
        channel = channel.connection.channel()
        return sum(channel.queue_purge(name).method.message_count for name in names)


def broker_diff(url: str, topology: Topology, unused: Topology | None = None) -> dict[str, Any]:
    """What applying `topology` would do on the broker, found without changing anything:

    - `exchanges`, `queues`: what it would declare (missing now: passive declarations);
    - `change`: queues that exist with other arguments than Legion declares, each {queue,
      reason}: the declaration would be refused (delete the queue once it is drained, then
      apply again);
    - `remove`: queues of `unused` (the runners no chain needs once applied) that exist.
      Applying never deletes a queue, which may still hold messages: delete it yourself
      (`rabbitmqctl delete_queue NAME`) once it is empty."""
    diff: dict[str, Any] = {"exchanges": [], "queues": [], "change": [], "remove": []}
    with _channel(url) as channel:

        def check(method: str, *args: Any, **kwargs: Any) -> str | None:
            """None when the channel's `method` passed; the broker's reason when it closed the
            channel (a new one is opened)."""
            nonlocal channel
            try:
                getattr(channel, method)(*args, **kwargs)
                return None
            except pika.exceptions.ChannelClosedByBroker as exc:  # NOT_FOUND, PRECONDITION_FAILED
                channel = channel.connection.channel()
                return str(exc.reply_text)

        for e in topology.exchanges:
            if check("exchange_declare", e.name, passive=True):
                diff["exchanges"].append(e.name)
        for q in topology.queues:
            if check("queue_declare", q.name, passive=True):
                diff["queues"].append(q.name)
                continue
            # The same declaration as Legion's changes nothing; another is refused, saying why.
            reason = check("queue_declare", q.name, durable=q.durable, arguments=dict(q.arguments) or None)
            if reason:
                diff["change"].append({"queue": q.name, "reason": reason})
        needed = {q.name for q in topology.queues}
        for q in (unused.queues if unused is not None else ()):
            if q.name not in needed and not check("queue_declare", q.name, passive=True):
                diff["remove"].append(q.name)
    return diff
