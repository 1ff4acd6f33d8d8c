"""HTTP to a model provider's own API, for the provider extensions (`claude`, `openai`,
`gemini`): one shared connection pool, every call through `guard` (retries honouring
`retry-after`, the provider's circuit breaker and rate limit), and each failure as one step
error with a type a chain can test and the provider's words, never a key.

    reply = rest.send("anthropic", "claude.messages.create", "POST", f"{base}/v1/messages",
                      headers={"x-api-key": key}, json=body)
    reply.body        # the parsed JSON (bytes when the answer is not JSON)
"""

from __future__ import annotations

import json as jsonlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from legion.engine.secrets import MASKER
from legion.extensions.llm import guard
from legion.extensions.llm.client import env_key as client_env_key
from legion.sdk import StepError

_client: httpx.Client | None = None
_client_lock = threading.Lock()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any  # parsed JSON; bytes when the answer is not JSON; None for a stream
    latency_ms: float = 0.0
    events: list[dict[str, Any]] = field(default_factory=list)  # a stream's events: {event, data}
    raw: bytes = b""  # the answer's bytes as they came (a file's content, byte for byte)


class _Refused(Exception):
    """An answer with an error status, sorted by `_fault`."""

    def __init__(self, status: int, headers: httpx.Headers, said: str) -> None:
        super().__init__(said)
        self.status, self.headers, self.said = status, headers, said


def key(api_key: str | None, env_var: str, provider: str) -> str:
    """The key given (a secret() reference, already resolved), else the provider's usual
    environment variable, which may be a `vault://path#key` reference (masked from then on)."""
    found = api_key or client_env_key(env_var)
    if not found:
        raise StepError(f"no key for {provider}: give `api_key` (a secret() reference, e.g. secret('llm/{provider}#api_key')) "
                        f"or set {env_var}", type="LlmAuthenticationFailed")
    MASKER.remember(found)
    return found


def base(api_base: str | None, env_var: str, default: str) -> str:
    """The provider's base URL: the one given, else `env_var`, else the public one."""
    return (api_base or os.environ.get(env_var) or default).rstrip("/")


def client() -> httpx.Client:
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = httpx.Client(follow_redirects=True)
    return _client


def send(provider: str, kind: str, method: str, url: str, *, headers: dict[str, str] | None = None,
         params: dict[str, Any] | None = None, json: Any = None, data: Any = None, files: Any = None,
         content: bytes | None = None, timeout: float = 120.0, stream: bool = False,
         on_event: Callable[[dict[str, Any]], None] | None = None,
         tokens: Callable[[Reply], int] | None = None) -> Reply:
    """One request through the guard. A stream's Server-Sent Events are read to the end and
    kept in `events` ({event, data}, data parsed as JSON where it is), `on_event` called with
    each as it comes (a step's heartbeat: a cancel stops the stream there). `tokens(reply)`:
    what the answer spent, charged to the provider's tokens-per-minute limit."""
    request = client().build_request(method, url, headers=headers, params=_present(params), json=json, data=data,
                                     files=files, content=content, timeout=httpx.Timeout(timeout))

    def attempt() -> Reply:
        response = client().send(request, stream=stream)
        try:
            if response.status_code >= 400:
                response.read()
                raise _Refused(response.status_code, response.headers, _said(response))
            reply = Reply(response.status_code, dict(response.headers), None)
            if stream:
                reply.events = _events(response, on_event)
            else:
                reply.raw = response.read()
                reply.body = _body(response)
            return reply
        finally:
            response.close()

    def fault(exc: Exception, tries: int) -> guard.Fault:
        return _fault(exc, kind, provider, tries)

    reply, latency = guard.guarded(provider, kind, attempt, fault, tokens=tokens or spent)
    reply.latency_ms = round(latency, 3)
    return reply


def spent(reply: Reply) -> int:
    """The tokens an answer says it spent (OpenAI's, Anthropic's or Google's usage; in a
    stream, the most any event reports), for the tokens-per-minute limit."""
    found = 0
    for body in [reply.body] + [e["data"] for e in reply.events]:
        if not isinstance(body, dict):
            continue
        for usage in (body.get("usage"), (body.get("message") or {}).get("usage") if isinstance(body.get("message"), dict) else None,
                      body.get("usageMetadata")):
            if isinstance(usage, dict):
                total = usage.get("total_tokens") or usage.get("totalTokenCount") or (
                    int(usage.get("input_tokens") or 0) + int(usage.get("output_tokens") or 0))
                found = max(found, int(total or 0))
    return found


def _present(params: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if params is None else {k: v for k, v in params.items() if v is not None}


def _body(response: httpx.Response) -> Any:
    """The parsed JSON, else the bytes (JSON lines, audio, a file's content)."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.content


def _said(response: httpx.Response) -> str:
    """The provider's own error message (the shapes of OpenAI, Anthropic and Google)."""
    try:
        body = response.json()
    except ValueError:
        return MASKER.text(response.text.strip()[:500]) or response.reason_phrase
    error = body.get("error", body) if isinstance(body, dict) else body
    message = error.get("message") if isinstance(error, dict) else None
    return MASKER.text(str(message or error)[:500])


def _events(response: httpx.Response, on_event: Callable[[dict[str, Any]], None] | None) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    name, lines = None, []
    for line in [*response.iter_lines(), ""]:
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            lines.append(line[5:].strip())
        elif not line and lines:
            text = "\n".join(lines)
            if text != "[DONE]":
                try:
                    data: Any = jsonlib.loads(text)
                except ValueError:
                    data = text
                events.append({"event": name or (data.get("type") if isinstance(data, dict) else None), "data": data})
                if on_event is not None:
                    on_event(events[-1])
            name, lines = None, []
    return events


def chunks(events: list[dict[str, Any]], kind: str) -> Iterator[dict[str, Any]]:
    """A stream's JSON chunks, in order; an error sent inside the stream fails the step."""
    for event in events:
        chunk = event.get("data")
        if not isinstance(chunk, dict):
            continue
        if "error" in chunk:
            error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": chunk["error"]}
            raise StepError(f"{kind}: the stream failed: {error.get('message')}", type="LlmError")
        yield chunk


def _fault(exc: Exception, kind: str, provider: str, tries: int) -> guard.Fault:
    after = f" (after {tries} tries)" if tries > 1 else ""
    if isinstance(exc, httpx.TimeoutException):
        return guard.Fault(StepError(f"{kind}: {provider} did not answer in time{after}", type="Timeout"), again=True, outage=True)
    if isinstance(exc, httpx.TransportError):
        return guard.Fault(StepError(f"{kind}: {provider} cannot be reached{after}: {type(exc).__name__}: {MASKER.text(str(exc))}",
                                     type="LlmUnreachable"), again=True, outage=True)
    if not isinstance(exc, _Refused):
        raise exc
    status, said = exc.status, exc.said
    if status in (401, 403):
        return guard.Fault(StepError(f"{kind}: {provider} refused the credentials ({status}): {said}", type="LlmAuthenticationFailed"))
    if status == 404:
        return guard.Fault(StepError(f"{kind}: {provider} has no such thing (404): {said}", type="NotFound"))
    if status == 429:
        return guard.Fault(StepError(f"{kind}: {provider} rate limited{after}: {said}", type="LlmRateLimited"),
                           again=True, wait=_retry_after(exc.headers))
    if status >= 500:  # 529 is Anthropic's "overloaded"
        return guard.Fault(StepError(f"{kind}: {provider} failed ({status}){after}: {said}", type="LlmError"),
                           again=True, outage=True, wait=_retry_after(exc.headers))
    return guard.Fault(StepError(f"{kind}: {provider} refused the request ({status}): {said}", type="InvalidArguments"))


def _retry_after(headers: httpx.Headers) -> float | None:
    try:
        value = headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
