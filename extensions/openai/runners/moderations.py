"""OpenAI's Moderations (POST /moderations): `create`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from legion.extensions.openai import _http
from legion.extensions.openai._http import ApiBase, ApiKey, Timeout

__all__ = ["create"]


def create(input: Annotated[str | list[Any], Field(description="a text, a list of texts, or multimodal parts "
                                                                "[{type: text|image_url, ...}]")],
           model: Annotated[str, Field(description="omni-moderation-latest or text-moderation-latest")] = "omni-moderation-latest",
           api_key: ApiKey = None, api_base: ApiBase = None, timeout: Timeout = 60.0) -> dict[str, Any]:
    """Classify texts (and images) as harmful or not: {result: {id, model, results: [{flagged,
    categories, category_scores}, ...]}, flagged: whether any input was, status}."""
    reply = _http.send("openai.moderations.create", "POST", "/moderations", api_key, api_base, json={"input": input, "model": model},
                       timeout=timeout)
    results = reply.body.get("results") if isinstance(reply.body, dict) else None
    return _http.answer(reply, flagged=any(r.get("flagged") for r in results or []))
