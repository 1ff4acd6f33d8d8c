"""The built-in http extension against a real local HTTP server."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from legion.engine.errors import StepError
from legion.engine.invoke import call
from legion.engine.registry import Registry
from legion.extensions.http.runners import request

REGISTRY = Registry.discover()


class Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        if self.path.startswith("/missing"):
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"nope")
            return
        payload = json.dumps({"method": self.command, "path": self.path, "body": body,
                              "auth": self.headers.get("Authorization")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_get_with_params_and_headers(base: str) -> None:
    r = request.get(f"{base}/x", params={"q": "1"}, headers={"Authorization": "Bearer t"})
    assert r["status"] == 200 and r["json"] == {"method": "GET", "path": "/x?q=1", "body": "", "auth": "Bearer t"}
    assert r["headers"]["content-type"] == "application/json"


@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_bodies(base: str, method: str) -> None:
    r = getattr(request, method)(f"{base}/items", json={"a": 1})
    assert r["json"]["method"] == method.upper() and json.loads(r["json"]["body"]) == {"a": 1}
    raw = getattr(request, method)(f"{base}/raw", data="plain text")
    assert raw["json"]["body"] == "plain text"


def test_delete_and_head(base: str) -> None:
    assert request.delete(f"{base}/items/1")["json"]["method"] == "DELETE"
    head = request.head(f"{base}/items/1")
    assert head["status"] == 200 and head["text"] == ""


def test_a_404_is_a_result_not_a_failure(base: str) -> None:
    r = request.get(f"{base}/missing")
    assert r["status"] == 404 and r["text"] == "nope" and r["json"] is None


def test_connection_errors_fail_the_step_with_a_type() -> None:
    with pytest.raises(StepError) as info:
        request.get("http://127.0.0.1:9/", timeout=2)
    assert info.value.type == "HttpError"
    outcome = call(REGISTRY.function("http.request.get"), {"url": "http://127.0.0.1:9/", "timeout": 2})
    assert outcome.status == "failed" and outcome.error["type"] == "HttpError"


def test_signatures_are_the_argument_schemas() -> None:
    spec = REGISTRY.function("http.request.post").spec
    schema = spec.args_schema()
    assert schema["required"] == ["url"] and schema["additionalProperties"] is False
    assert schema["properties"]["timeout"] == {"type": "number", "exclusiveMinimum": 0, "default": 30.0,
                                               "description": "seconds to wait for the server before failing with Timeout"}
    assert spec.check_args({"url": "http://x", "timeout": "soon"})[0][1].startswith("argument 'timeout' of http.request.post")
