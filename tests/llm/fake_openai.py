"""A small OpenAI-compatible HTTP server on 127.0.0.1, close enough for litellm's real HTTP
path: `POST /v1/chat/completions` and `POST /v1/embeddings`. Answers come from a script (a
queue of `(status, body or text, headers, delay)`, consumed one per request); with none left,
a chat answers "echo: <last user message>". Every request is kept, with when it came.

A chat request with `"stream": true` is answered as server-sent events: the (scripted or
default) chat.completion body is cut into `chat.completion.chunk`s (the role, the content in
several pieces, each tool call's id and name then its arguments in pieces, the finish reason,
and the usage when `stream_options.include_usage` asks for it), then `data: [DONE]`. An error
status is sent as plain JSON, streaming or not.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def chat_body(text: str, prompt_tokens: int = 7, completion_tokens: int = 3) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()), "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def tool_call_body(name: str, arguments_json_text: str, call_id: str = "call_1", prompt_tokens: int = 7,
                   completion_tokens: int = 3) -> dict[str, Any]:
    """A chat.completion whose answer is one call of the tool `name` with these arguments (JSON text)."""
    body = chat_body("", prompt_tokens, completion_tokens)
    body["choices"][0] = {"index": 0, "finish_reason": "tool_calls",
                          "message": {"role": "assistant", "content": None,
                                      "tool_calls": [{"id": call_id, "type": "function",
                                                      "function": {"name": name, "arguments": arguments_json_text}}]}}
    return body


def _pieces(text: str, count: int = 3) -> list[str]:
    """`text` cut into (at most) `count` consecutive pieces, none empty."""
    if not text:
        return []
    size = max(1, -(-len(text) // count))
    return [text[i:i + size] for i in range(0, len(text), size)]


def chunks(body: dict[str, Any], include_usage: bool = False) -> Iterator[dict[str, Any]]:
    """The `chat.completion.chunk`s that stream the chat.completion `body`."""
    head = {"id": body.get("id", "chatcmpl-1"), "object": "chat.completion.chunk", "created": body.get("created", int(time.time())),
            "model": body.get("model", "fake")}

    def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
        return {**head, "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}

    for choice in body.get("choices", []):
        index = choice.get("index", 0)
        message = choice.get("message", {})
        yield chunk({"role": message.get("role", "assistant"), "content": ""}, index=index)
        for piece in _pieces(message.get("content") or ""):
            yield chunk({"content": piece}, index=index)
        for i, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function", {})
            yield chunk({"tool_calls": [{"index": i, "id": call.get("id"), "type": call.get("type", "function"),
                                         "function": {"name": function.get("name"), "arguments": ""}}]}, index=index)
            for piece in _pieces(function.get("arguments") or ""):
                yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}, index=index)
        yield chunk({}, choice.get("finish_reason") or "stop", index=index)
    if include_usage and body.get("usage") is not None:
        yield {**head, "choices": [], "usage": body["usage"]}


class FakeOpenAI:
    def __init__(self) -> None:
        self.script: deque[tuple[int, Any, dict[str, str], float]] = deque()
        self.requests: list[tuple[float, str, dict[str, Any], dict[str, str]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                fake.requests.append((time.monotonic(), self.path, body, {k.lower(): v for k, v in self.headers.items()}))
                status, answer, headers, delay = fake.script.popleft() if fake.script else (200, None, {}, 0.0)
                if delay:
                    time.sleep(delay)
                if answer is None:
                    answer = fake.default(self.path, body)
                try:
                    if status == 200 and body.get("stream") and isinstance(answer, dict) and "choices" in answer:
                        self.stream(answer, bool((body.get("stream_options") or {}).get("include_usage")), headers)
                    else:
                        self.send(status, answer, headers)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test)

            def send(self, status: int, answer: Any, headers: dict[str, str]) -> None:
                raw = (json.dumps(answer) if not isinstance(answer, str) else answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def stream(self, answer: dict[str, Any], include_usage: bool, headers: dict[str, str]) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("connection", "close")  # the end of the body is the end of the connection
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                for item in chunks(answer, include_usage):
                    self.wfile.write(f"data: {json.dumps(item)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def default(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path.endswith("/embeddings"):
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            return {"object": "list", "model": "fake", "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
                    "data": [{"object": "embedding", "index": i, "embedding": [float(len(t)), 0.5, -1.0]} for i, t in enumerate(texts)]}
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        last = users[-1]["content"] if users else ""
        if isinstance(last, list):  # content parts
            last = " ".join(p.get("text", "") for p in last if isinstance(p, dict))
        return chat_body(f"echo: {last}")

    def answer(self, status: int = 200, body: Any = None, headers: dict[str, str] | None = None, *, delay: float = 0.0) -> None:
        """Script the next answer: its status, body (a dict as JSON, a str as is, None for the
        default answer), headers, and `delay` seconds to wait before sending it."""
        self.script.append((status, body, headers or {}, delay))

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
