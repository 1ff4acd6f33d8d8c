"""OpenAI's Embeddings (POST /embeddings): `create`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from legion.extensions.openai import _http
from legion.extensions.openai._http import ApiBase, ApiKey, Timeout

__all__ = ["create"]


def create(input: Annotated[str | list[str], Field(description="a text, or a list of texts")],
           model: Annotated[str, Field(description="the embedding model")] = "text-embedding-3-small",
           encoding_format: Annotated[Literal["float", "base64"] | None, Field(description="how vectors are written")] = None,
           dimensions: Annotated[int | None, Field(gt=0, description="shorten the vectors to this many dimensions")] = None,
           api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 120.0) -> dict[str, Any]:
    """The embedding of each text: {result: {data: [{index, embedding}, ...], model, usage},
    embeddings: the vectors in order, status, usage}."""
    body = {"input": input, "model": model, **({"encoding_format": encoding_format} if encoding_format else {}),
            **({"dimensions": dimensions} if dimensions else {})}
    reply = _http.send("openai.embeddings.create", "POST", "/embeddings", api_key, api_base, json=body, timeout=timeout)
    result = reply.body if isinstance(reply.body, dict) else {}
    vectors = [item.get("embedding") for item in sorted(result.get("data") or [], key=lambda item: item.get("index", 0))]
    return _http.answer(reply, embeddings=vectors, usage=_http.usage(result.get("usage"), reply.latency_ms))
