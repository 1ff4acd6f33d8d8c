"""Anthropic's Models API: `list` (GET /v1/models), `retrieve` (GET /v1/models/{model_id})."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from pydantic import Field

from legion.extensions.claude import _http
from legion.extensions.claude._http import AfterId, ApiBase, ApiKey, BeforeId, Limit, Timeout

__all__ = ["list", "retrieve"]


def list(limit: Limit = 20, before_id: BeforeId = None, after_id: AfterId = None, api_key: ApiKey = None,
         api_base: ApiBase = None, timeout: Timeout = 60.0) -> dict[str, Any]:
    """The models, newest first: {result: {data: [{id, display_name, created_at, type}, ...],
    has_more, first_id, last_id}, status}."""
    reply = _http.send("claude.models.list", "GET", "/v1/models", api_key, api_base,
                       params={"limit": limit, "before_id": before_id, "after_id": after_id}, timeout=timeout)
    return _http.answer(reply)


def retrieve(model_id: Annotated[str, Field(description="a model's id or alias, e.g. claude-sonnet-4-5")], api_key: ApiKey = None,
             api_base: ApiBase = None, timeout: Timeout = 60.0) -> dict[str, Any]:
    """One model: {result: {id, display_name, created_at, type}, status}."""
    reply = _http.send("claude.models.retrieve", "GET", f"/v1/models/{quote(model_id, safe='')}", api_key, api_base,
                       timeout=timeout)
    return _http.answer(reply)
