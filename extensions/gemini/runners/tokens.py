"""Gemini's token counts: `count` (POST /v1beta/models/{model}:countTokens)."""

from __future__ import annotations

from typing import Any

from legion.extensions.gemini import _http
from legion.extensions.gemini._http import ApiBase, ApiKey, Timeout
from legion.extensions.gemini.runners.content import Contents, Model, Prompt, contents_of

__all__ = ["count"]


def count(contents: Contents = None, prompt: Prompt = None, model: Model = "gemini-2.0-flash", api_key: ApiKey = None,
          api_base: ApiBase = None, timeout: Timeout = 60.0) -> dict[str, Any]:
    """How many tokens the contents take: {result: {totalTokens, ...}, total_tokens, status}."""
    name = _http.name("models", model)
    reply = _http.send("gemini.tokens.count", "POST", _http.path(name + ":countTokens"), api_key, api_base,
                       json={"contents": contents_of(prompt, contents)}, timeout=timeout)
    return _http.answer(reply, total_tokens=reply.body.get("totalTokens") if isinstance(reply.body, dict) else None)
