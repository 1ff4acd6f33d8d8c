"""OpenAI's Models (/models): `list`, `retrieve`, `delete` (a fine-tuned model of yours)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from pydantic import Field

from legion.extensions.openai import _http
from legion.extensions.openai._http import ApiBase, ApiKey, Timeout

__all__ = ["list", "retrieve", "delete"]

ModelId = Annotated[str, Field(description="the model's id, e.g. gpt-4o-mini or ft:gpt-4o-mini:org::id")]


def list(api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 60.0) -> dict[str, Any]:
    """The models: {result: {data: [{id, created, owned_by}, ...]}, status}."""
    return _http.answer(_http.send("openai.models.list", "GET", "/models", api_key, api_base, timeout=timeout))


def retrieve(model: ModelId, api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 60.0) -> dict[str, Any]:
    """One model: {result: {id, created, owned_by}, status}."""
    return _http.answer(_http.send("openai.models.retrieve", "GET", f"/models/{quote(model, safe=':')}", api_key, api_base,
                                   timeout=timeout))


def delete(model: ModelId, api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 60.0) -> dict[str, Any]:
    """Delete a fine-tuned model: {result: {id, deleted}, status}."""
    return _http.answer(_http.send("openai.models.delete", "DELETE", f"/models/{quote(model, safe=':')}", api_key, api_base,
                                   timeout=timeout))
