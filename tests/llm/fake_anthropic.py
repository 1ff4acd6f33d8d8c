"""A small Anthropic Messages API server on 127.0.0.1, close enough for litellm's real HTTP path
(`anthropic/<model>` with `api_base` = `.url`) and for the `claude` extension:
`POST /v1/messages` answers "echo: <last user message>" unless scripted (fake_server: a
script, then routes, then this), and with `"stream": true` as the Messages API's events
(message_start, content_block_start, ping, content_block_delta (text_delta or
input_json_delta), content_block_stop, message_delta, message_stop);
`POST /v1/messages/count_tokens` counts words. Errors are sent as Anthropic's
`{"type": "error", "error": {"type", "message"}}` by `error_body`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fake_server import FakeServer, Request, pieces, sse


def message_body(text: str, input_tokens: int = 7, output_tokens: int = 3, model: str = "claude-fake",
                 stop_reason: str = "end_turn") -> dict[str, Any]:
    return {"id": "msg_01", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": stop_reason, "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}}


def tool_use_body(name: str, arguments: dict[str, Any], call_id: str = "toolu_01", text: str | None = None,
                  input_tokens: int = 7, output_tokens: int = 3) -> dict[str, Any]:
    """A message whose answer calls the tool `name` with `arguments` (after `text`, when given)."""
    body = message_body(text or "", input_tokens, output_tokens, stop_reason="tool_use")
    body["content"] = ([{"type": "text", "text": text}] if text else []) + [
        {"type": "tool_use", "id": call_id, "name": name, "input": arguments}]
    return body


def error_body(kind: str, message: str) -> dict[str, Any]:
    """Anthropic's error shape: kind is e.g. authentication_error, not_found_error, rate_limit_error, overloaded_error."""
    return {"type": "error", "error": {"type": kind, "message": message}}


def message_events(body: dict[str, Any]) -> Iterator[str]:
    """The Messages API's stream of `body`."""
    usage = dict(body.get("usage") or {})
    start = {**body, "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {**usage, "output_tokens": 1}}
    yield sse({"type": "message_start", "message": start}, "message_start")
    for index, block in enumerate(body.get("content") or []):
        if block.get("type") == "tool_use":
            opened = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces(json.dumps(block.get("input") or {}))]
        elif block.get("type") == "thinking":
            opened = {"type": "thinking", "thinking": ""}
            deltas = [{"type": "thinking_delta", "thinking": p} for p in pieces(block.get("thinking", ""))]
        else:
            opened = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in pieces(block.get("text", ""))]
        yield sse({"type": "content_block_start", "index": index, "content_block": opened}, "content_block_start")
        if index == 0:
            yield sse({"type": "ping"}, "ping")
        for delta in deltas:
            yield sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")
        yield sse({"type": "content_block_stop", "index": index}, "content_block_stop")
    yield sse({"type": "message_delta", "delta": {"stop_reason": body.get("stop_reason"), "stop_sequence": body.get("stop_sequence")},
               "usage": {"output_tokens": usage.get("output_tokens", 0)}}, "message_delta")
    yield sse({"type": "message_stop"}, "message_stop")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "text")


class FakeAnthropic(FakeServer):
    def reply(self, request: Request) -> tuple[Any, ...]:
        body = request.body if isinstance(request.body, dict) else {}
        if request.method == "POST" and request.route == "/v1/messages":
            users = [m for m in body.get("messages", []) if m.get("role") == "user"]
            return 200, message_body(f"echo: {_text_of(users[-1]['content']) if users else ''}", model=body.get("model", "claude-fake"))
        if request.method == "POST" and request.route == "/v1/messages/count_tokens":
            words = sum(len(_text_of(m.get("content")).split()) for m in body.get("messages", []))
            return 200, {"input_tokens": words}
        return 404, error_body("not_found_error", f"no route for {request.method} {request.route}")

    def streams(self, request: Request) -> bool:
        return isinstance(request.body, dict) and bool(request.body.get("stream"))

    def events(self, request: Request, body: dict[str, Any]) -> Iterator[str]:
        if body.get("type") != "message":
            yield sse(body)
            return
        yield from message_events(body)

    def __enter__(self) -> FakeAnthropic:
        return super().__enter__()  # type: ignore[no-any-return]
