"""What every `gemini` function shares: the key (sent in the x-goog-api-key header, never in
the URL, which error messages may quote) and base URL, the v1beta paths, resource names, the
call through `rest` (retries, circuit breaker, rate limit, typed errors), and the usage."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from pydantic import Field

from legion.extensions.llm import rest
from legion.sdk import StepError

PROVIDER = "gemini"  # the circuit breaker and rate limit it shares with llm.* gemini/ models
KEY_VARIABLE = "GEMINI_API_KEY"
BASE_VARIABLE = "LEGION_GEMINI_API_BASE"
DEFAULT_BASE = "https://generativelanguage.googleapis.com"
VERSION = "v1beta"

ApiKey = Annotated[str | None, Field(description="a secret() reference; default: GEMINI_API_KEY")]
ApiBase = Annotated[str | None, Field(description="the API's host URL, without /v1beta (default: LEGION_GEMINI_API_BASE, "
                                                  "else https://generativelanguage.googleapis.com)")]
Timeout = Annotated[float, Field(gt=0, description="seconds to wait for the answer")]
PageSize = Annotated[int | None, Field(ge=1, le=1000, description="how many items per page")]
PageToken = Annotated[str | None, Field(description="the nextPageToken of the page before")]


def send(kind: str, method: str, path: str, api_key: str | None, api_base: str | None, *, json: Any = None,
         params: dict[str, Any] | None = None, headers: dict[str, str] | None = None, content: bytes | None = None,
         timeout: float = 120.0, stream: bool = False) -> rest.Reply:
    """`method` `path` (after the host: /v1beta/models/..., /upload/v1beta/files) with the key header."""
    sent = {"x-goog-api-key": rest.key(api_key, KEY_VARIABLE, PROVIDER), **(headers or {})}
    url = path if path.startswith(("http://", "https://")) else base(api_base) + path
    return rest.send(PROVIDER, kind, method, url, headers=sent, params=params, json=json, content=content, timeout=timeout,
                     stream=stream)


def base(api_base: str | None) -> str:
    return rest.base(api_base, BASE_VARIABLE, DEFAULT_BASE)


def name(collection: str, given: str) -> str:
    """A resource's full name (`models/gemini-2.0-flash`, `files/abc`) from it or its id alone."""
    given = given.strip().strip("/")
    if not given:
        raise StepError(f"an empty {collection} name", type="InvalidArguments")
    full = given if given.startswith(collection + "/") else f"{collection}/{given}"
    return quote(full, safe="/-_.~")


def path(resource: str) -> str:
    return f"/{VERSION}/{resource}"


def answer(reply: rest.Reply, **more: Any) -> dict[str, Any]:
    return {"result": reply.body, "status": reply.status, **more}


def usage(metadata: dict[str, Any] | None, latency_ms: float) -> dict[str, Any]:
    """Gemini's usageMetadata in the shape `legion run show` sums (thinking tokens are output)."""
    metadata = metadata or {}
    prompt = int(metadata.get("promptTokenCount") or 0)
    completion = int(metadata.get("candidatesTokenCount") or 0) + int(metadata.get("thoughtsTokenCount") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion, "cost": None,
            "latency_ms": round(latency_ms, 3)}
