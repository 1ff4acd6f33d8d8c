"""What every `openai` function shares: the key and base URL (Bearer auth), the call through
`rest` (retries, circuit breaker, rate limit, typed errors), files given as a path or base64,
and the result's usage."""

from __future__ import annotations

import base64
import binascii
import mimetypes
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from legion.extensions.llm import rest
from legion.sdk import StepError

PROVIDER = "openai"  # the circuit breaker and rate limit it shares with llm.* openai/ models
KEY_VARIABLE = "OPENAI_API_KEY"
BASE_VARIABLE = "LEGION_OPENAI_API_BASE"
DEFAULT_BASE = "https://api.openai.com/v1"

ApiKey = Annotated[str | None, Field(description="a secret() reference; default: OPENAI_API_KEY")]
ApiBase = Annotated[str | None, Field(description="the API's URL, /v1 included (default: LEGION_OPENAI_API_BASE, "
                                                  "else https://api.openai.com/v1)")]
Timeout = Annotated[float, Field(gt=0, description="seconds to wait for the answer")]
FilePath = Annotated[str | None, Field(description="the file's path on the worker (or give the *_base64 argument)")]
FileBase64 = Annotated[str | None, Field(description="the file's content, base64-encoded (instead of a path)")]
Filename = Annotated[str | None, Field(description="the file's name as sent (default: the path's name, else 'file')")]


def send(kind: str, method: str, path: str, api_key: str | None, api_base: str | None, *, json: Any = None,
         params: dict[str, Any] | None = None, data: dict[str, Any] | None = None, files: Any = None,
         timeout: float = 120.0, stream: bool = False) -> rest.Reply:
    """`method` `path` (e.g. /chat/completions) on the OpenAI API, with the key as a Bearer token."""
    headers = {"authorization": f"Bearer {rest.key(api_key, KEY_VARIABLE, PROVIDER)}"}
    url = rest.base(api_base, BASE_VARIABLE, DEFAULT_BASE) + path
    return rest.send(PROVIDER, kind, method, url, headers=headers, params=params, json=json, data=_form(data), files=files,
                     timeout=timeout, stream=stream)


def _form(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """Form fields as text (absent ones left out; lists as repeated fields)."""
    if data is None:
        return None
    form: dict[str, Any] = {}
    for name, value in data.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        form[name] = [str(v) for v in value] if isinstance(value, list | tuple) else str(value)
    return form


def file_part(kind: str, what: str, path: str | None, encoded: str | None, filename: str | None) -> tuple[str, bytes, str]:
    """A multipart file part, (name, content, content type), from a path or base64 text."""
    if (path is None) == (encoded is None):
        raise StepError(f"{kind}: give either `{what}` (a path) or `{what}_base64`", type="InvalidArguments")
    if path is not None:
        try:
            content = Path(path).expanduser().read_bytes()
        except OSError as exc:
            raise StepError(f"{kind}: cannot read {what} {path!r}: {exc.strerror or exc}", type="InvalidArguments") from None
        name = filename or Path(path).name
    else:
        try:
            content = base64.b64decode(encoded or "", validate=True)
        except (binascii.Error, ValueError):
            raise StepError(f"{kind}: `{what}_base64` is not base64", type="InvalidArguments") from None
        name = filename or what
    return name, content, mimetypes.guess_type(name)[0] or "application/octet-stream"


def answer(reply: rest.Reply, **more: Any) -> dict[str, Any]:
    return {"result": reply.body, "status": reply.status, **more}


def usage(counted: dict[str, Any] | None, latency_ms: float) -> dict[str, Any]:
    """OpenAI's usage ({prompt_tokens, completion_tokens} or, for images and the Responses
    style, {input_tokens, output_tokens}) in the shape `legion run show` sums."""
    counted = counted or {}
    prompt = int(counted.get("prompt_tokens", counted.get("input_tokens")) or 0)
    completion = int(counted.get("completion_tokens", counted.get("output_tokens")) or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion, "cost": None,
            "latency_ms": round(latency_ms, 3)}
