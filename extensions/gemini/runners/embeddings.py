"""Gemini's embeddings: `embed` (POST /v1beta/models/{model}:embedContent) and `batch_embed`
(:batchEmbedContents)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from legion.extensions.gemini import _http
from legion.extensions.gemini._http import ApiBase, ApiKey, Timeout

__all__ = ["embed", "batch_embed"]

Model = Annotated[str, Field(description="the embedding model, e.g. gemini-embedding-001 or text-embedding-004")]
TaskType = Annotated[str | None, Field(description="RETRIEVAL_QUERY, RETRIEVAL_DOCUMENT, SEMANTIC_SIMILARITY, CLASSIFICATION, "
                                                   "CLUSTERING, QUESTION_ANSWERING, FACT_VERIFICATION")]
Dimensions = Annotated[int | None, Field(gt=0, description="shorten the vectors to this many dimensions")]


def _request(model: str, content: str | dict[str, Any], task_type: str | None, title: str | None,
             dimensions: int | None) -> dict[str, Any]:
    fields = {"taskType": task_type, "title": title, "outputDimensionality": dimensions}
    return {"model": model, "content": {"parts": [{"text": content}]} if isinstance(content, str) else content,
            **{k: v for k, v in fields.items() if v is not None}}


def embed(content: Annotated[str | dict[str, Any], Field(description="a text, or a Content {parts: [{text}, ...]}")],
          model: Model = "gemini-embedding-001", task_type: TaskType = None,
          title: Annotated[str | None, Field(description="the document's title (RETRIEVAL_DOCUMENT)")] = None,
          output_dimensionality: Dimensions = None, api_key: ApiKey = None, api_base: ApiBase = None,
          timeout: Timeout = 120.0) -> dict[str, Any]:
    """One embedding: {result: {embedding: {values}}, embedding: the values, status}."""
    name = _http.name("models", model)
    body = _request(name, content, task_type, title, output_dimensionality)
    reply = _http.send("gemini.embeddings.embed", "POST", _http.path(name + ":embedContent"), api_key, api_base, json=body,
                       timeout=timeout)
    result = reply.body if isinstance(reply.body, dict) else {}
    return _http.answer(reply, embedding=(result.get("embedding") or {}).get("values"))


def batch_embed(requests: Annotated[list[str | dict[str, Any]], Field(min_length=1, description=(
                    "texts, or EmbedContentRequests {content, taskType?, title?, outputDimensionality?}"))],
                model: Model = "gemini-embedding-001", task_type: TaskType = None, output_dimensionality: Dimensions = None,
                api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 120.0) -> dict[str, Any]:
    """Many embeddings at once: {result: {embeddings: [{values}, ...]}, embeddings: the values
    in order, status}."""
    name = _http.name("models", model)
    sent = [_request(name, r, task_type, None, output_dimensionality) if isinstance(r, str) else {"model": name, **r}
            for r in requests]
    reply = _http.send("gemini.embeddings.batch_embed", "POST", _http.path(name + ":batchEmbedContents"), api_key, api_base,
                       json={"requests": sent}, timeout=timeout)
    result = reply.body if isinstance(reply.body, dict) else {}
    return _http.answer(reply, embeddings=[e.get("values") for e in result.get("embeddings") or []])
