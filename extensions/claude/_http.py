"""What every `claude` function shares: the key and base URL, the headers of Anthropic's API
(x-api-key, anthropic-version, anthropic-beta), the call through `rest` (retries, circuit
breaker, rate limit, typed errors), and the result's usage."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from legion.extensions.llm import rest

PROVIDER = "anthropic"  # the circuit breaker and rate limit it shares with llm.* anthropic/ models
KEY_VARIABLE = "ANTHROPIC_API_KEY"
BASE_VARIABLE = "LEGION_CLAUDE_API_BASE"
DEFAULT_BASE = "https://api.anthropic.com"
VERSION = "2023-06-01"

ApiKey = Annotated[str | None, Field(description="a secret() reference; default: ANTHROPIC_API_KEY")]
ApiBase = Annotated[str | None, Field(description="the API's URL (default: LEGION_CLAUDE_API_BASE, else https://api.anthropic.com)")]
Timeout = Annotated[float, Field(gt=0, description="seconds to wait for the answer")]
Betas = Annotated[list[str] | None, Field(description="anthropic-beta features to turn on, e.g. [\"context-1m-2025-08-07\"]")]
Limit = Annotated[int, Field(ge=1, le=1000, description="how many items per page")]
BeforeId = Annotated[str | None, Field(description="the page ending just before this id")]
AfterId = Annotated[str | None, Field(description="the page starting just after this id")]


def send(kind: str, method: str, path: str, api_key: str | None, api_base: str | None, *, json: Any = None,
         params: dict[str, Any] | None = None, betas: list[str] | None = None, accept: str | None = None,
         timeout: float = 120.0, stream: bool = False) -> rest.Reply:
    """`method` `path` (e.g. /v1/messages) on Anthropic's API, with the key and version headers."""
    headers = {"x-api-key": rest.key(api_key, KEY_VARIABLE, PROVIDER), "anthropic-version": VERSION}
    if betas:
        headers["anthropic-beta"] = ",".join(dict.fromkeys(betas))
    if accept:
        headers["accept"] = accept
    url = rest.base(api_base, BASE_VARIABLE, DEFAULT_BASE) + path
    return rest.send(PROVIDER, kind, method, url, headers=headers, params=params, json=json, timeout=timeout, stream=stream)


def answer(reply: rest.Reply, **more: Any) -> dict[str, Any]:
    """`{result, status, rate_limit?, ...more}`: rate_limit holds the anthropic-ratelimit-*
    headers, when the answer has them."""
    done: dict[str, Any] = {"result": reply.body, "status": reply.status, **more}
    limits = {k[len("anthropic-ratelimit-"):]: v for k, v in reply.headers.items() if k.lower().startswith("anthropic-ratelimit-")}
    if limits:
        done["rate_limit"] = limits
    return done


def usage(counted: dict[str, Any] | None, latency_ms: float) -> dict[str, Any]:
    """Anthropic's usage in the shape `legion run show` sums: the prompt counts the tokens read
    from and written to the prompt cache too."""
    counted = counted or {}
    prompt = sum(int(counted.get(k) or 0) for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
    completion = int(counted.get("output_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion, "cost": None,
            "latency_ms": round(latency_ms, 3)}
