"""Gemini's content generation: `generate` (POST /v1beta/models/{model}:generateContent) and
`stream_generate` (:streamGenerateContent?alt=sse, read to its end)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from legion.extensions.gemini import _http
from legion.extensions.gemini._http import ApiBase, ApiKey, Timeout
from legion.extensions.llm import rest
from legion.sdk import StepError

__all__ = ["generate", "stream_generate"]

Model = Annotated[str, Field(description="the model, e.g. gemini-2.0-flash (or models/gemini-2.0-flash)")]
Contents = Annotated[list[dict[str, Any]] | None, Field(description="the conversation: [{role: user|model, parts: [{text}, ...]}, "
                                                                    "...] (or give `prompt`)")]
Prompt = Annotated[str | None, Field(description="one user message (instead of `contents`)")]
GenerationConfig = Annotated[dict[str, Any] | None, Field(description="e.g. {temperature, maxOutputTokens, topP, topK, "
                                                                      "stopSequences, responseMimeType, responseSchema}")]
SafetySettings = Annotated[list[dict[str, Any]] | None, Field(description="[{category, threshold}, ...]")]
SystemInstruction = Annotated[str | dict[str, Any] | None, Field(description="the system instruction: text, or a Content {parts}")]
Tools = Annotated[list[dict[str, Any]] | None, Field(description="e.g. [{functionDeclarations: [{name, description, parameters}]}]")]
ToolConfig = Annotated[dict[str, Any] | None, Field(description="e.g. {functionCallingConfig: {mode: ANY}}")]
CachedContent = Annotated[str | None, Field(description="a cached content's name (cachedContents/...) to answer from")]


def contents_of(prompt: str | None, contents: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if (prompt is None) == (contents is None):
        raise StepError("give either `prompt` or `contents`", type="InvalidArguments")
    return [{"role": "user", "parts": [{"text": prompt}]}] if prompt is not None else list(contents or [])


def instruction(system_instruction: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if isinstance(system_instruction, str):
        return {"parts": [{"text": system_instruction}]}
    return system_instruction


def request_body(prompt: str | None, contents: list[dict[str, Any]] | None, generation_config: dict[str, Any] | None,
                 safety_settings: list[dict[str, Any]] | None, system_instruction: str | dict[str, Any] | None,
                 tools: list[dict[str, Any]] | None, tool_config: dict[str, Any] | None, cached_content: str | None) -> dict[str, Any]:
    fields = {"generationConfig": generation_config, "safetySettings": safety_settings,
              "systemInstruction": instruction(system_instruction), "tools": tools, "toolConfig": tool_config,
              "cachedContent": _http.name("cachedContents", cached_content) if cached_content else None}
    return {"contents": contents_of(prompt, contents), **{k: v for k, v in fields.items() if v is not None}}


def text_of(response: dict[str, Any]) -> str:
    candidates = response.get("candidates") or [{}]
    return "".join(p.get("text", "") for p in (candidates[0].get("content") or {}).get("parts") or []
                   if isinstance(p, dict) and not p.get("thought"))


def generate(model: Model = "gemini-2.0-flash", contents: Contents = None, prompt: Prompt = None,
             generation_config: GenerationConfig = None, safety_settings: SafetySettings = None,
             system_instruction: SystemInstruction = None, tools: Tools = None, tool_config: ToolConfig = None,
             cached_content: CachedContent = None, api_key: ApiKey = None, api_base: ApiBase = None,
             timeout: Timeout = 120.0) -> dict[str, Any]:
    """Generate an answer: {result: {candidates, usageMetadata, modelVersion}, text (the first
    candidate's text parts), status, usage}."""
    body = request_body(prompt, contents, generation_config, safety_settings, system_instruction, tools, tool_config, cached_content)
    reply = _http.send("gemini.content.generate", "POST", _http.path(_http.name("models", model) + ":generateContent"), api_key,
                       api_base, json=body, timeout=timeout)
    response = reply.body if isinstance(reply.body, dict) else {}
    return _http.answer(reply, text=text_of(response), usage=_http.usage(response.get("usageMetadata"), reply.latency_ms))


def stream_generate(model: Model = "gemini-2.0-flash", contents: Contents = None, prompt: Prompt = None,
                    generation_config: GenerationConfig = None, safety_settings: SafetySettings = None,
                    system_instruction: SystemInstruction = None, tools: Tools = None, tool_config: ToolConfig = None,
                    cached_content: CachedContent = None, api_key: ApiKey = None, api_base: ApiBase = None,
                    timeout: Timeout = 600.0) -> dict[str, Any]:
    """Generate an answer as a stream, read to its end: {result: the response the chunks build,
    text, events: [{event, data}, ...], status, usage}."""
    body = request_body(prompt, contents, generation_config, safety_settings, system_instruction, tools, tool_config, cached_content)
    reply = _http.send("gemini.content.stream_generate", "POST", _http.path(_http.name("models", model) + ":streamGenerateContent"),
                       api_key, api_base, json=body, params={"alt": "sse"}, timeout=timeout, stream=True)
    response = assemble(reply.events)
    reply.body = response
    return _http.answer(reply, text=text_of(response), events=reply.events,
                        usage=_http.usage(response.get("usageMetadata"), reply.latency_ms))


def assemble(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The response a stream of GenerateContentResponse chunks builds: per candidate, the parts
    in order (adjacent text joined), the last finish reason; the last usageMetadata."""
    response: dict[str, Any] = {"candidates": []}
    for chunk in rest.chunks(events, "gemini.content.stream_generate"):
        response.update({k: v for k, v in chunk.items() if k not in ("candidates",)})
        for piece in chunk.get("candidates") or []:
            index = piece.get("index", 0)
            while len(response["candidates"]) <= index:
                response["candidates"].append({"index": len(response["candidates"]), "content": {"role": "model", "parts": []}})
            candidate = response["candidates"][index]
            candidate.update({k: v for k, v in piece.items() if k not in ("content", "index")})
            parts = candidate["content"]["parts"]
            for part in (piece.get("content") or {}).get("parts") or []:
                joinable = set(part) == {"text"} and parts and set(parts[-1]) == {"text"}
                if joinable:
                    parts[-1] = {"text": parts[-1]["text"] + part["text"]}
                else:
                    parts.append(dict(part))
    return response
