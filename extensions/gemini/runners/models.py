"""Gemini's models: `list` (GET /v1beta/models) and `get` (GET /v1beta/models/{model})."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from legion.extensions.gemini import _http
from legion.extensions.gemini._http import ApiBase, ApiKey, PageSize, PageToken, Timeout

__all__ = ["list", "get"]


def list(page_size: PageSize = None, page_token: PageToken = None, api_key: ApiKey = None, api_base: ApiBase = None,
         timeout: Timeout = 60.0) -> dict[str, Any]:
    """The models: {result: {models: [{name, displayName, inputTokenLimit, supportedGenerationMethods, ...}],
    nextPageToken}, status}."""
    reply = _http.send("gemini.models.list", "GET", _http.path("models"), api_key, api_base,
                       params={"pageSize": page_size, "pageToken": page_token}, timeout=timeout)
    return _http.answer(reply)


def get(name: Annotated[str, Field(description="the model, e.g. gemini-2.0-flash or models/gemini-2.0-flash")],
        api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 60.0) -> dict[str, Any]:
    """One model: {result: {name, displayName, inputTokenLimit, outputTokenLimit, ...}, status}."""
    return _http.answer(_http.send("gemini.models.get", "GET", _http.path(_http.name("models", name)), api_key, api_base,
                                   timeout=timeout))
