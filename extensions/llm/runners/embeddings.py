"""Embeddings: vectors for texts, from a provider's embedding model."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from legion.extensions.llm import client
from legion.extensions.llm.runners.chat import ApiBase, ApiKey, Model, Timeout

__all__ = ["create"]


def create(input: Annotated[str | list[str], Field(description="a text, or a list of texts")], model: Model = None,
           api_base: ApiBase = None, api_key: ApiKey = None, timeout: Timeout = 120.0) -> dict[str, Any]:
    """The embedding of each text: {embeddings: [[float, ...], ...], model, usage}."""
    chosen = client.model_of(model)
    texts = [input] if isinstance(input, str) else list(input)
    options: dict[str, Any] = {"timeout": timeout, **({"api_base": api_base} if api_base else {})}

    def request(lib: Any) -> Any:
        return lib.embedding(model=chosen, input=texts, num_retries=0, **options, **client.key_option(chosen, api_key))

    response, latency = client.call("llm.embeddings.create", chosen, request)
    vectors = [item["embedding"] if isinstance(item, dict) else item.embedding for item in response.data]
    return {"embeddings": vectors, "model": chosen, "usage": client.usage_of(client.litellm(), response, latency)}
