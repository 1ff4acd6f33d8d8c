"""A small OpenAI-compatible HTTP server on 127.0.0.1, close enough for litellm's real HTTP
path: `POST /v1/chat/completions` and `POST /v1/embeddings`. Answers come from a script (a
queue of `(status, body or text, headers, delay)`, consumed one per request), then a route
table of canned answers per (method, path) for the rest of the REST API (files, images,
audio...: see fake_server); with neither, a chat answers "echo: <last user message>" and an
embedding request a vector per text. Every request is kept, with when it came.

A chat request with `"stream": true` is answered as server-sent events: the (scripted or
default) chat.completion body is cut into `chat.completion.chunk`s (the role, the content in
several pieces, each tool call's id and name then its arguments in pieces, the finish reason,
and the usage when `stream_options.include_usage` asks for it), then `data: [DONE]`. An error
status is sent as plain JSON, streaming or not.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from fake_server import FakeServer, Request, pieces, sse


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
        for piece in pieces(message.get("content") or ""):
            yield chunk({"content": piece}, index=index)
        for i, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function", {})
            yield chunk({"tool_calls": [{"index": i, "id": call.get("id"), "type": call.get("type", "function"),
                                         "function": {"name": function.get("name"), "arguments": ""}}]}, index=index)
            for piece in pieces(function.get("arguments") or ""):
                yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}, index=index)
        yield chunk({}, choice.get("finish_reason") or "stop", index=index)
    if include_usage and body.get("usage") is not None:
        yield {**head, "choices": [], "usage": body["usage"]}


class FakeOpenAI(FakeServer):
    prefix = "/v1"

    def reply(self, request: Request) -> tuple[Any, ...]:
        if request.method == "POST" and request.route.endswith(("/chat/completions", "/embeddings")):
            return 200, self.default(request.path, request.body)
        return super().reply(request)

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

    def streams(self, request: Request) -> bool:
        return isinstance(request.body, dict) and bool(request.body.get("stream"))

    def events(self, request: Request, body: dict[str, Any]) -> Iterator[str]:
        if "choices" not in body:
            yield sse(body)
            return
        for item in chunks(body, bool((request.body.get("stream_options") or {}).get("include_usage"))):
            yield sse(item)
        yield "data: [DONE]\n\n"

    def __enter__(self) -> FakeOpenAI:
        return super().__enter__()  # type: ignore[no-any-return]
