"""A small Ollama server on 127.0.0.1, close enough for litellm's real HTTP path with `ollama/`
models (`POST /api/generate`) and `ollama_chat/` models (`POST /api/chat`): answers echo the
prompt, with Ollama's token counts. Streaming is newline-delimited JSON, as Ollama's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fake_server import FakeServer, Request


class FakeOllama(FakeServer):
    def reply(self, request: Request) -> tuple[Any, ...]:
        body = request.body if isinstance(request.body, dict) else {}
        model = body.get("model", "llama3")
        if request.method == "POST" and request.route == "/api/generate":
            return 200, {"model": model, "response": f"echo: {body.get('prompt', '')}", "done": True, "prompt_eval_count": 5,
                         "eval_count": 2}
        if request.method == "POST" and request.route == "/api/chat":
            users = [m for m in body.get("messages", []) if m.get("role") == "user"]
            return 200, {"model": model, "message": {"role": "assistant", "content": f"echo: {users[-1]['content'] if users else ''}"},
                         "done": True, "prompt_eval_count": 5, "eval_count": 2}
        return 404, {"error": f"no route for {request.method} {request.route}"}

    def streams(self, request: Request) -> bool:
        return isinstance(request.body, dict) and bool(request.body.get("stream"))

    def events(self, request: Request, body: dict[str, Any]) -> Iterator[str]:
        # Ollama streams JSON lines, each a piece, the last with done and the counts.
        if "message" in body:
            yield json.dumps(dict(body, done=False, message={"role": "assistant", "content": body["message"]["content"]})) + "\n"
        else:
            yield json.dumps(dict(body, done=False)) + "\n"
        yield json.dumps({"model": body.get("model"), "done": True, "prompt_eval_count": 5, "eval_count": 2,
                          **({"message": {"role": "assistant", "content": ""}} if "message" in body else {"response": ""})}) + "\n"

    def __enter__(self) -> FakeOllama:
        return super().__enter__()  # type: ignore[no-any-return]
