"""A small OpenAI-compatible HTTP server on 127.0.0.1, close enough for litellm's real HTTP
path: `POST /v1/chat/completions` and `POST /v1/embeddings`. Answers come from a script (a
queue of `(status, body or text, headers)`, consumed one per request); with none left, a chat
answers "echo: <last user message>". Every request is kept, with when it came."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def chat_body(text: str, prompt_tokens: int = 7, completion_tokens: int = 3) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()), "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


class FakeOpenAI:
    def __init__(self) -> None:
        self.script: deque[tuple[int, Any, dict[str, str]]] = deque()
        self.requests: list[tuple[float, str, dict[str, Any], dict[str, str]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                fake.requests.append((time.monotonic(), self.path, body, {k.lower(): v for k, v in self.headers.items()}))
                status, answer, headers = fake.script.popleft() if fake.script else (200, None, {})
                if answer is None:
                    answer = fake.default(self.path, body)
                raw = (json.dumps(answer) if not isinstance(answer, str) else answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def default(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path.endswith("/embeddings"):
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            return {"object": "list", "model": "fake", "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
                    "data": [{"object": "embedding", "index": i, "embedding": [float(len(t)), 0.5, -1.0]} for i, t in enumerate(texts)]}
        last = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
        return chat_body(f"echo: {last}")

    def answer(self, status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> None:
        self.script.append((status, body, headers or {}))

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
