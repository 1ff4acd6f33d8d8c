"""Broker admin functions (depths, dead letters) against the real RabbitMQ, and the
management API's answers through a stand-in HTTP server."""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import urlsplit

import pika
import pytest
from services import unreachable
from waiting import wait_until

from legion.dsl.compile import runner_topology
from legion.engine.errors import BadInput, NotFound, ServiceUnavailable
from legion.engine.transport import Message
from legion.engine.transport.admin import broker_status, dlq_list, dlq_purge, dlq_replay, dlq_show
from legion.engine.transport.amqp import AmqpTransport, redact_url

AMQP = os.environ.get("LEGION_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")

pytestmark = pytest.mark.integration


@pytest.fixture
def ext() -> Iterator[str]:
    parts = urlsplit(AMQP)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), timeout=2).close()
    except OSError as exc:
        unreachable(f"RabbitMQ at {redact_url(AMQP)} is unreachable ({exc})")
    name = f"t{secrets.token_hex(5)}"
    yield name
    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    try:
        channel = connection.channel()
        for q in runner_topology(name, "r").queues:
            channel.queue_delete(q.name)
        for e in runner_topology(name, "r").exchanges:
            channel.exchange_delete(e.name)
    finally:
        connection.close()


@pytest.fixture
def transport(ext: str) -> Iterator[AmqpTransport]:
    t = AmqpTransport(AMQP, name=f"legion-test-{ext}")
    t.declare(runner_topology(ext, "r"))
    yield t
    t.close(grace=0)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dead_letters_listed_shown_replayed_purged(ext: str, transport: AmqpTransport) -> None:
    queue, dlq = f"lex.{ext}.r", f"lex.{ext}.r.dlq"
    transport.publish([Message("run-1", n, f"{ext}.r.work", priority=n) for n in (1, 2, 3)])
    transport.consume([queue], prefetch=10)
    for _ in range(3):
        d = wait_until(lambda: transport.get(0.5), what="a delivery")
        d.dead_letter(f"failed {d.message.number}")
    wait_until(lambda: transport.depth(dlq)[0] == 3, what="3 dead letters")

    entries = dlq_list(AMQP, queues=[dlq])
    assert [e["reason"] for e in entries] == ["failed 3", "failed 2", "failed 1"]  # in the order they died
    first = entries[0]
    assert first["queue"] == dlq and first["from_queue"] == queue and first["exchange"] == f"lex.{ext}"
    assert first["routing_key"] == f"lex.{ext}.r.work" and first["dead_at"].endswith("Z")
    assert first["message"] == {"kind": "step", "run_id": "run-1", "number": 3, "function": f"{ext}.r.work", "priority": 3, "control": False}
    assert dlq_list(AMQP, queues=[dlq]) == entries  # reading lost nothing, changed no order
    assert dlq_list(AMQP, limit=1, queues=[dlq]) == entries[:1]
    assert dlq_show(AMQP, entries[1]["id"], queues=[dlq]) == entries[1]

    replayed = dlq_replay(AMQP, first["id"], queues=[dlq])
    assert replayed["id"] == first["id"]
    again = wait_until(lambda: transport.get(0.5), what="the replayed message")
    assert again.message.number == 3 and again.queue == queue
    again.ack()
    assert [e["id"] for e in dlq_list(AMQP, queues=[dlq])] == [e["id"] for e in entries[1:]]

    with pytest.raises(NotFound, match="legion dlq list") as info:
        dlq_show(AMQP, first["id"], queues=[dlq])
    assert first["id"] in info.value.message
    with pytest.raises(NotFound):
        dlq_replay(AMQP, "no-such-id", queues=[dlq])
    with pytest.raises(BadInput):
        dlq_purge(AMQP, queue)
    assert dlq_purge(AMQP, dlq) == 2
    assert dlq_list(AMQP, queues=[dlq]) == []


def test_broker_status_depths_over_amqp(ext: str, transport: AmqpTransport) -> None:
    queue = f"lex.{ext}.r"
    transport.publish([Message("run-1", n, f"{ext}.r.work") for n in range(4)])
    status = broker_status(AMQP, [queue, f"{queue}.dlq", f"lex.{ext}.gone"], management_url=f"http://127.0.0.1:{closed_port()}")
    assert status["source"] == "amqp" and status["url"] == redact_url(AMQP)
    rows = {r["name"]: r for r in status["queues"]}
    assert rows[queue]["ready"] == 4 and rows[queue]["consumers"] == 0 and rows[queue]["publish_rate"] is None
    assert rows[f"{queue}.dlq"]["ready"] == 0 and rows[f"lex.{ext}.gone"]["missing"]


class _Management(BaseHTTPRequestHandler):
    answer: Any = []
    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.seen.append((self.path, self.headers.get("Authorization")))
        body = json.dumps(self.answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_broker_status_from_the_management_api() -> None:
    _Management.answer = [
        {"name": "lex.http.call", "messages_ready": 7, "messages_unacknowledged": 2, "consumers": 3,
         "message_stats": {"publish_details": {"rate": 12.5}, "deliver_get_details": {"rate": 11.0}}},
        {"name": "legion.control", "messages_ready": 0, "messages_unacknowledged": 0, "consumers": 3},
        {"name": "someone.else", "messages_ready": 99, "messages_unacknowledged": 0, "consumers": 0},
    ]
    _Management.seen = []
    server = HTTPServer(("127.0.0.1", 0), _Management)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        status = broker_status("amqp://guest:s3cret@127.0.0.1:1/prod", management_url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
    assert status["source"] == "management" and status["url"] == "amqp://guest:***@127.0.0.1:1/prod"
    assert status["queues"] == [
        {"name": "legion.control", "ready": 0, "unacked": 0, "consumers": 3, "publish_rate": None, "deliver_rate": None},
        {"name": "lex.http.call", "ready": 7, "unacked": 2, "consumers": 3, "publish_rate": 12.5, "deliver_rate": 11.0},
    ]
    assert _Management.seen[0][0] == "/api/queues/prod" and (_Management.seen[0][1] or "").startswith("Basic ")


def test_unreachable_broker_is_service_unavailable() -> None:
    port = closed_port()
    url = f"amqp://guest:s3cret@127.0.0.1:{port}/"
    for call in (lambda: dlq_list(url), lambda: broker_status(url, management_url=f"http://127.0.0.1:{port}")):
        with pytest.raises(ServiceUnavailable) as info:
            call()
        assert f"amqp://guest:***@127.0.0.1:{port}/" in info.value.message and "s3cret" not in info.value.message
