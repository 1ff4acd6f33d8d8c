"""OpenAI's Chat Completions (POST /chat/completions): `create`, answered whole or streamed."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from legion.extensions.llm import rest
from legion.extensions.openai import _http
from legion.extensions.openai._http import ApiBase, ApiKey, Timeout
from legion.sdk import StepError

__all__ = ["create"]

Model = Annotated[str, Field(description="the model, e.g. gpt-4o-mini")]
Messages = Annotated[list[dict[str, Any]] | None, Field(description="the conversation: [{role: system|user|assistant|tool, "
                                                                    "content}, ...] (or give `prompt`)")]


def create(model: Model = "gpt-4o", messages: Messages = None,
           prompt: Annotated[str | None, Field(description="one user message (instead of `messages`)")] = None,
           system: Annotated[str | None, Field(description="a system message, put first")] = None,
           temperature: Annotated[float | None, Field(ge=0, le=2, description="sampling temperature")] = None,
           max_tokens: Annotated[int | None, Field(gt=0, description="the longest answer, in tokens (sent as max_completion_tokens)")] = None,
           top_p: Annotated[float | None, Field(ge=0, le=1, description="nucleus sampling")] = None,
           frequency_penalty: Annotated[float | None, Field(ge=-2, le=2, description="penalty on tokens by how often they came")] = None,
           presence_penalty: Annotated[float | None, Field(ge=-2, le=2, description="penalty on tokens that came at all")] = None,
           stop: Annotated[str | list[str] | None, Field(description="texts that end the answer")] = None,
           tools: Annotated[list[dict[str, Any]] | None, Field(description="tools: [{type: function, function: {name, "
                                                                            "description, parameters}}, ...]")] = None,
           tool_choice: Annotated[str | dict[str, Any] | None, Field(description="auto, none, required, or {type: function, "
                                                                                 "function: {name}}")] = None,
           response_format: Annotated[dict[str, Any] | None, Field(description="e.g. {type: json_object} or {type: json_schema, "
                                                                               "json_schema: {...}}")] = None,
           seed: Annotated[int | None, Field(description="for repeatable sampling")] = None,
           stream: Annotated[bool, Field(description="stream the answer (read to its end; the events are returned too)")] = False,
           extra: Annotated[dict[str, Any] | None, Field(description="other request fields, sent as they are")] = None,
           api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 120.0) -> dict[str, Any]:
    """Create a chat completion: {result: the chat.completion (built from the chunks when
    streamed), text, status, usage, events (when streamed)}."""
    if (prompt is None) == (messages is None):
        raise StepError("give either `prompt` or `messages`", type="InvalidArguments")
    conversation = ([{"role": "system", "content": system}] if system else []) + (
        [{"role": "user", "content": prompt}] if prompt is not None else list(messages or []))
    fields = {"temperature": temperature, "max_completion_tokens": max_tokens, "top_p": top_p, "frequency_penalty": frequency_penalty,
              "presence_penalty": presence_penalty, "stop": stop, "tools": tools, "tool_choice": tool_choice,
              "response_format": response_format, "seed": seed}
    body = {"model": model, "messages": conversation, **{k: v for k, v in fields.items() if v is not None}, **(extra or {})}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    reply = _http.send("openai.chat.create", "POST", "/chat/completions", api_key, api_base, json=body, timeout=timeout,
                       stream=stream)
    more: dict[str, Any] = {}
    if stream:
        reply.body, more["events"] = assemble(reply.events), reply.events
    completion = reply.body if isinstance(reply.body, dict) else {}
    choices = completion.get("choices") or [{}]
    text = (choices[0].get("message") or {}).get("content") or ""
    return _http.answer(reply, text=text, usage=_http.usage(completion.get("usage"), reply.latency_ms), **more)


def assemble(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The chat.completion that `chat.completion.chunk` events build: each choice's content and
    tool calls (their arguments joined), its finish reason, and the usage of the last chunk."""
    completion: dict[str, Any] = {"object": "chat.completion", "choices": []}
    for chunk in rest.chunks(events, "openai.chat.create"):
        completion.update({k: chunk[k] for k in ("id", "created", "model", "system_fingerprint") if k in chunk})
        if chunk.get("usage"):
            completion["usage"] = chunk["usage"]
        for part in chunk.get("choices") or []:
            index = part.get("index", 0)
            while len(completion["choices"]) <= index:
                completion["choices"].append({"index": len(completion["choices"]), "message": {"role": "assistant", "content": None},
                                              "finish_reason": None})
            choice = completion["choices"][index]
            _merge(choice["message"], part.get("delta") or {})
            if part.get("finish_reason"):
                choice["finish_reason"] = part["finish_reason"]
    return completion


def _merge(message: dict[str, Any], delta: dict[str, Any]) -> None:
    if delta.get("role"):
        message["role"] = delta["role"]
    if delta.get("content"):
        message["content"] = (message.get("content") or "") + delta["content"]
    for piece in delta.get("tool_calls") or []:
        calls = message.setdefault("tool_calls", [])
        index = piece.get("index", len(calls))
        while len(calls) <= index:
            calls.append({"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
        call = calls[index]
        if piece.get("id"):
            call["id"] = piece["id"]
        function = piece.get("function") or {}
        call["function"]["name"] += function.get("name") or ""
        call["function"]["arguments"] += function.get("arguments") or ""
    if delta.get("refusal"):
        message["refusal"] = (message.get("refusal") or "") + delta["refusal"]

