"""Anthropic's Messages API: `create` (POST /v1/messages), `create_stream` (the same, read as
server-sent events to the end), `count_tokens` (POST /v1/messages/count_tokens)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field

from legion.extensions.claude import _http
from legion.extensions.claude._http import ApiBase, ApiKey, Betas, Timeout
from legion.sdk import StepError

__all__ = ["create", "create_stream", "count_tokens"]

INTERLEAVED_THINKING = "interleaved-thinking-2025-05-14"  # thinking between tool calls

Model = Annotated[str, Field(description="the model, e.g. claude-sonnet-4-5 or claude-3-5-haiku-latest")]
Messages = Annotated[list[dict[str, Any]] | None, Field(description="the conversation: [{role: user|assistant, content}, ...] "
                                                                    "(or give `prompt`)")]
Prompt = Annotated[str | None, Field(description="one user message (instead of `messages`)")]
MaxTokens = Annotated[int, Field(gt=0, description="the longest answer, in tokens")]
System = Annotated[str | list[dict[str, Any]] | None, Field(description="the system prompt: text, or a list of text blocks")]
CacheSystem = Annotated[bool, Field(description="keep the system prompt in Anthropic's prompt cache (cache_control: ephemeral)")]
Temperature = Annotated[float | None, Field(ge=0, le=1, description="sampling temperature")]
TopP = Annotated[float | None, Field(ge=0, le=1, description="nucleus sampling: the probability mass to sample from")]
TopK = Annotated[int | None, Field(gt=0, description="sample from the k likeliest tokens only")]
StopSequences = Annotated[list[str] | None, Field(description="texts that end the answer when written")]
Metadata = Annotated[dict[str, Any] | None, Field(description="request metadata, e.g. {user_id: ...}")]
Tools = Annotated[list[dict[str, Any]] | None, Field(description="tools the model may call: [{name, description, input_schema}, ...]")]
ToolChoice = Annotated[dict[str, Any] | str | None, Field(
    description="auto, any, none, a tool's name, or {type: auto|any|tool|none, name?, disable_parallel_tool_use?}")]
Thinking = Annotated[dict[str, Any] | int | None, Field(
    description="extended thinking: {type: enabled, budget_tokens: N}, or just the budget in tokens")]
Extra = Annotated[dict[str, Any] | None, Field(description="other request fields, sent as they are (e.g. service_tier, output_config)")]


def conversation(prompt: str | None, messages: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if (prompt is None) == (messages is None):
        raise StepError("give either `prompt` or `messages`", type="InvalidArguments")
    return [{"role": "user", "content": prompt}] if prompt is not None else list(messages or [])


def request_body(model: str, prompt: str | None, messages: list[dict[str, Any]] | None, *, system: Any = None,
                 cache_system: bool = False, tools: list[dict[str, Any]] | None = None, tool_choice: Any = None,
                 thinking: Any = None, **fields: Any) -> dict[str, Any]:
    """The Messages API's request body: absent values left out, shorthands expanded."""
    body: dict[str, Any] = {"model": model, "messages": conversation(prompt, messages)}
    if system is not None:
        if cache_system:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": system}] if isinstance(system, str) else [dict(b) for b in system]
            blocks[-1]["cache_control"] = {"type": "ephemeral"}
            system = blocks
        body["system"] = system
    if tools is not None:
        body["tools"] = tools
    if tool_choice is not None:
        body["tool_choice"] = tool_choice if isinstance(tool_choice, dict) else (
            {"type": tool_choice} if tool_choice in ("auto", "any", "none") else {"type": "tool", "name": tool_choice})
    if thinking is not None:
        body["thinking"] = {"type": "enabled", "budget_tokens": thinking} if isinstance(thinking, int) else thinking
    body.update({k: v for k, v in fields.items() if v is not None})
    return body


def betas_for(betas: list[str] | None, thinking: Any, tools: list[dict[str, Any]] | None) -> list[str]:
    return [*(betas or []), *([INTERLEAVED_THINKING] if thinking is not None and tools else [])]


def text_of(message: dict[str, Any]) -> str:
    return "".join(b.get("text", "") for b in message.get("content") or [] if isinstance(b, dict) and b.get("type") == "text")


def create(model: Model, messages: Messages = None, prompt: Prompt = None, max_tokens: MaxTokens = 1024, system: System = None,
           cache_system: CacheSystem = False, temperature: Temperature = None, top_p: TopP = None, top_k: TopK = None,
           stop_sequences: StopSequences = None, metadata: Metadata = None, tools: Tools = None, tool_choice: ToolChoice = None,
           thinking: Thinking = None, betas: Betas = None, extra: Extra = None, api_key: ApiKey = None, api_base: ApiBase = None,
           timeout: Timeout = 120.0) -> dict[str, Any]:
    """Create a message (POST /v1/messages): {result: the message, text: its text blocks
    joined, status, usage, rate_limit (the anthropic-ratelimit-* headers, when sent)}."""
    body = request_body(model, prompt, messages, system=system, cache_system=cache_system, tools=tools, tool_choice=tool_choice,
                        thinking=thinking, max_tokens=max_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                        stop_sequences=stop_sequences, metadata=metadata, **(extra or {}))
    reply = _http.send("claude.messages.create", "POST", "/v1/messages", api_key, api_base, json=body,
                       betas=betas_for(betas, thinking, tools), timeout=timeout)
    message = reply.body if isinstance(reply.body, dict) else {}
    return _http.answer(reply, text=text_of(message), usage=_http.usage(message.get("usage"), reply.latency_ms))


def create_stream(model: Model, messages: Messages = None, prompt: Prompt = None, max_tokens: MaxTokens = 1024,
                  system: System = None, cache_system: CacheSystem = False, temperature: Temperature = None, top_p: TopP = None,
                  top_k: TopK = None, stop_sequences: StopSequences = None, metadata: Metadata = None, tools: Tools = None,
                  tool_choice: ToolChoice = None, thinking: Thinking = None, betas: Betas = None, extra: Extra = None,
                  api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 600.0) -> dict[str, Any]:
    """Create a message as a stream (`stream: true`), read to its end: {result: the message
    the events build, text, events: [{event, data}, ...], status, usage}."""
    body = request_body(model, prompt, messages, system=system, cache_system=cache_system, tools=tools, tool_choice=tool_choice,
                        thinking=thinking, max_tokens=max_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                        stop_sequences=stop_sequences, metadata=metadata, **(extra or {}), stream=True)
    reply = _http.send("claude.messages.create_stream", "POST", "/v1/messages", api_key, api_base, json=body,
                       betas=betas_for(betas, thinking, tools), accept="text/event-stream", timeout=timeout, stream=True)
    message = assemble(reply.events)
    reply.body = message
    return _http.answer(reply, text=text_of(message), events=reply.events,
                        usage=_http.usage(message.get("usage"), reply.latency_ms))


def assemble(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The message a Messages API stream builds: message_start's message, each content block
    from its start and deltas (text, tool input JSON, thinking), message_delta's stop reason and usage."""
    message: dict[str, Any] = {"content": []}
    partial: dict[int, str] = {}
    for event in events:
        found = event.get("data")
        data: dict[str, Any] = found if isinstance(found, dict) else {}
        kind = data.get("type") or event.get("event")
        if kind == "message_start":
            message = {**data.get("message", {}), "content": []}
        elif kind == "content_block_start":
            blocks = message["content"]
            while len(blocks) <= data.get("index", 0):
                blocks.append({})
            blocks[data.get("index", 0)] = dict(data.get("content_block") or {})
        elif kind == "content_block_delta":
            index, delta = data.get("index", 0), data.get("delta") or {}
            block = message["content"][index] if index < len(message["content"]) else {}
            if delta.get("type") == "text_delta":
                block["text"] = block.get("text", "") + delta.get("text", "")
            elif delta.get("type") == "input_json_delta":
                partial[index] = partial.get(index, "") + delta.get("partial_json", "")
            elif delta.get("type") == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
            elif delta.get("type") == "signature_delta":
                block["signature"] = block.get("signature", "") + delta.get("signature", "")
        elif kind == "message_delta":
            message.update({k: v for k, v in (data.get("delta") or {}).items()})
            message["usage"] = {**(message.get("usage") or {}), **(data.get("usage") or {})}
        elif kind == "error":
            error = data.get("error") or {}
            raise StepError(f"claude.messages.create_stream: the stream failed: {error.get('type')}: {error.get('message')}",
                            type="LlmRateLimited" if error.get("type") == "rate_limit_error" else "LlmError")
    for index, text in partial.items():
        try:
            message["content"][index]["input"] = json.loads(text) if text else {}
        except ValueError:
            message["content"][index]["input"] = text
    return message


def count_tokens(model: Model, messages: Messages = None, prompt: Prompt = None, system: System = None, tools: Tools = None,
                 tool_choice: ToolChoice = None, thinking: Thinking = None, betas: Betas = None, api_key: ApiKey = None,
                 api_base: ApiBase = None, timeout: Timeout = 60.0) -> dict[str, Any]:
    """Count the tokens a message would take (POST /v1/messages/count_tokens): {result:
    {input_tokens}, input_tokens, status}."""
    body = request_body(model, prompt, messages, system=system, tools=tools, tool_choice=tool_choice, thinking=thinking)
    reply = _http.send("claude.messages.count_tokens", "POST", "/v1/messages/count_tokens", api_key, api_base, json=body,
                       betas=betas, timeout=timeout)
    counted = reply.body.get("input_tokens") if isinstance(reply.body, dict) else None
    return _http.answer(reply, input_tokens=counted)
