"""What the fake model providers (fake_openai, fake_anthropic, fake_gemini) share: a
ThreadingHTTPServer on 127.0.0.1:0 that keeps every request and answers from, in order,

1. a script: a queue of `(status, body, headers, delay)` consumed one per request (`answer`);
2. a route table: a canned answer per (method, path pattern) (`route`), kept until replaced;
3. the provider's default answer (`reply`).

A body is sent as JSON (a dict or list), as is (str or bytes), or computed from the request (a
callable). A 200 answer to a request the provider would stream (`streams`) is turned into
Server-Sent Events by the provider's `events`. It is a context manager: `with FakeX() as fake:`.
"""

from __future__ import annotations

import fnmatch
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit


class Request(tuple):  # type: ignore[type-arg]
    """One request: unpacks as `(at, path, body, headers)` (path with its query string; body
    parsed JSON, a dict of form fields for multipart (files as {filename, content_type, data}),
    else the raw bytes; headers with lower-case names), with `method`, `route` (the path
    without the query, percent-decoded), `query` and `raw` besides."""

    method: str
    raw: bytes

    def __new__(cls, at: float, path: str, body: Any, headers: dict[str, str], method: str, raw: bytes) -> Request:
        self = super().__new__(cls, (at, path, body, headers))
        self.method, self.raw = method, raw
        return self

    at = property(lambda self: self[0])
    path = property(lambda self: self[1])
    body = property(lambda self: self[2])
    headers = property(lambda self: self[3])

    @property
    def route(self) -> str:
        return unquote(urlsplit(self.path).path)

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))


Answer = tuple[int, Any, dict[str, str], float]


def parse_body(raw: bytes, content_type: str) -> Any:
    if not raw:
        return {}
    if content_type.startswith("multipart/"):
        message = BytesParser(policy=HTTP).parsebytes(b"content-type: " + content_type.encode() + b"\r\n\r\n" + raw)
        fields: dict[str, Any] = {}
        for part in message.iter_parts():  # type: ignore[attr-defined]
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename()
            fields[str(name)] = ({"filename": filename, "content_type": part.get_content_type(), "data": data}
                                 if filename is not None else data.decode())
        return fields
    try:
        return json.loads(raw)
    except ValueError:
        return raw


class FakeServer:
    """Subclasses set `prefix` (the path `url` ends with) and may override `reply`,
    `streams` and `events`."""

    prefix = ""

    def __init__(self) -> None:
        self.script: deque[Answer] = deque()
        self.routes: dict[tuple[str, str], Answer] = {}
        self.requests: list[Request] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def handle_any(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0) or 0))
                request = Request(time.monotonic(), self.path, parse_body(raw, self.headers.get("content-type", "")),
                                  {k.lower(): v for k, v in self.headers.items()}, self.command, raw)
                fake.requests.append(request)
                status, answer, headers, delay = fake.pick(request)
                if delay:
                    time.sleep(delay)
                if callable(answer):
                    answer = answer(request)
                if answer is None:
                    usual, answer, *more = fake.reply(request)
                    status = usual if status == 200 else status
                    headers = {**(more[0] if more else {}), **headers}
                try:
                    if status == 200 and isinstance(answer, dict) and fake.streams(request):
                        self.stream(fake.events(request, answer), headers)
                    else:
                        self.send(status, answer, headers)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

            def send(self, status: int, answer: Any, headers: dict[str, str]) -> None:
                if isinstance(answer, bytes):
                    raw, kind = answer, "application/octet-stream"
                elif isinstance(answer, str):
                    raw, kind = answer.encode(), "application/json"
                else:
                    raw, kind = json.dumps(answer).encode(), "application/json"
                named = {k.lower() for k in headers}
                self.send_response(status)
                if "content-type" not in named:
                    self.send_header("content-type", kind)
                self.send_header("content-length", str(len(raw)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def stream(self, events: Iterator[str], headers: dict[str, str]) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("connection", "close")  # the end of the body is the end of the connection
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                for event in events:
                    self.wfile.write(event.encode())
                    self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.root = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = self.root + self.prefix
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- what a test scripts

    def answer(self, status: int = 200, body: Any = None, headers: dict[str, str] | None = None, *, delay: float = 0.0) -> None:
        """Script the next answer: its status, body (a dict or list as JSON, a str or bytes as
        is, a callable of the request, None for the default answer), headers, and `delay`
        seconds to wait before sending it."""
        self.script.append((status, body, headers or {}, delay))

    def route(self, method: str, path: str, body: Any = None, status: int = 200, headers: dict[str, str] | None = None, *,
              delay: float = 0.0) -> None:
        """Answer every `method` request whose path (without the query) matches `path` (an
        fnmatch pattern: `/v1/files/*`) with this, until replaced; the script comes first."""
        self.routes[(method.upper(), path)] = (status, body, headers or {}, delay)

    def pick(self, request: Request) -> Answer:
        if self.script:
            return self.script.popleft()
        for (method, pattern), answer in reversed(list(self.routes.items())):
            if method == request.method and fnmatch.fnmatchcase(request.route, pattern):
                return answer
        return (200, None, {}, 0.0)

    # -- what a provider defines

    def reply(self, request: Request) -> tuple[Any, ...]:
        """`(status, body)` or `(status, body, headers)`: the answer to a request nothing
        scripted or routed."""
        return 404, {"error": {"code": 404, "message": f"no route for {request.method} {request.route}", "type": "not_found_error"}}

    def streams(self, request: Request) -> bool:
        return False

    def events(self, request: Request, body: dict[str, Any]) -> Iterator[str]:
        yield f"data: {json.dumps(body)}\n\n"

    def by(self, method: str, route: str) -> list[Request]:
        """The requests made with `method` to `route` (an fnmatch pattern)."""
        return [r for r in self.requests if r.method == method.upper() and fnmatch.fnmatchcase(r.route, route)]

    def __enter__(self) -> Any:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def pieces(text: str, count: int = 3) -> list[str]:
    """`text` cut into (at most) `count` consecutive pieces, none empty."""
    if not text:
        return []
    size = max(1, -(-len(text) // count))
    return [text[i:i + size] for i in range(0, len(text), size)]


def sse(data: Any, event: str | None = None) -> str:
    return (f"event: {event}\n" if event else "") + f"data: {json.dumps(data)}\n\n"

