"""Gemini's context caching (/v1beta/cachedContents): a long prompt kept on Gemini's side and
referred to by name (`gemini.content.generate` with `cached_content`). `create`, `list`, `get`,
`update` (its expiry: PATCH with an updateMask), `delete`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from legion.extensions.gemini import _http
from legion.extensions.gemini._http import ApiBase, ApiKey, PageSize, PageToken, Timeout
from legion.extensions.gemini.runners.content import Contents, SystemInstruction, Tools, instruction
from legion.sdk import StepError

__all__ = ["create", "list", "get", "update", "delete"]

Name = Annotated[str, Field(description="the cache's name, e.g. cachedContents/abc123 (or abc123)")]
Ttl = Annotated[str | None, Field(description="how long to keep it, e.g. 300s or 3600s (or give expire_time)")]
ExpireTime = Annotated[str | None, Field(description="when it expires, RFC 3339 (e.g. 2030-01-01T00:00:00Z)")]


def create(model: Annotated[str, Field(description="the model the cache is for, e.g. gemini-2.0-flash-001")],
           contents: Contents = None, system_instruction: SystemInstruction = None, tools: Tools = None, ttl: Ttl = None,
           expire_time: ExpireTime = None,
           display_name: Annotated[str | None, Field(description="a name to show for it")] = None,
           api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 300.0) -> dict[str, Any]:
    """Cache contents: {result: {name, model, expireTime, usageMetadata: {totalTokenCount}, ...}, status}."""
    if ttl is not None and expire_time is not None:
        raise StepError("give `ttl` or `expire_time`, not both", type="InvalidArguments")
    fields = {"contents": contents, "systemInstruction": instruction(system_instruction), "tools": tools, "ttl": ttl,
              "expireTime": expire_time, "displayName": display_name}
    body = {"model": _http.name("models", model), **{k: v for k, v in fields.items() if v is not None}}
    return _http.answer(_http.send("gemini.cached_contents.create", "POST", _http.path("cachedContents"), api_key, api_base,
                                   json=body, timeout=timeout))


def list(page_size: PageSize = None, page_token: PageToken = None, api_key: ApiKey = None, api_base: ApiBase = None,
         timeout: Timeout = 60.0) -> dict[str, Any]:
    """The caches: {result: {cachedContents: [{name, model, expireTime, ...}], nextPageToken}, status}."""
    return _http.answer(_http.send("gemini.cached_contents.list", "GET", _http.path("cachedContents"), api_key, api_base,
                                   params={"pageSize": page_size, "pageToken": page_token}, timeout=timeout))


def get(name: Name, api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 60.0) -> dict[str, Any]:
    """One cache (its contents are not sent back): {result: {name, model, expireTime, ...}, status}."""
    return _http.answer(_http.send("gemini.cached_contents.get", "GET", _http.path(_http.name("cachedContents", name)), api_key,
                                   api_base, timeout=timeout))


def update(name: Name, ttl: Ttl = None, expire_time: ExpireTime = None, api_key: ApiKey = None, api_base: ApiBase = None,
           timeout: Timeout = 60.0) -> dict[str, Any]:
    """Change when a cache expires (the only thing that can change): {result: the cache, status}."""
    if (ttl is None) == (expire_time is None):
        raise StepError("give either `ttl` or `expire_time`", type="InvalidArguments")
    body, mask = ({"ttl": ttl}, "ttl") if ttl is not None else ({"expireTime": expire_time}, "expireTime")
    return _http.answer(_http.send("gemini.cached_contents.update", "PATCH", _http.path(_http.name("cachedContents", name)),
                                   api_key, api_base, json=body, params={"updateMask": mask}, timeout=timeout))


def delete(name: Name, api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 60.0) -> dict[str, Any]:
    """Delete a cache: {result: {}, status}."""
    return _http.answer(_http.send("gemini.cached_contents.delete", "DELETE", _http.path(_http.name("cachedContents", name)),
                                   api_key, api_base, timeout=timeout))
