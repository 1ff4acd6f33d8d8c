"""The embedding guard (LegionIO's Runners::EmbeddingGuard): how close an input comes to known
jailbreak phrases, by cosine similarity of embeddings from the `llm` extension. Skipped (safe)
when no embedding model is configured: an explicit `model`, or LEGION_LLM_MODEL."""

from __future__ import annotations

import os
from typing import Annotated, Any

from pydantic import Field

from legion.extensions.privatecore import helpers as h
from legion.sdk import Context, StepError

__all__ = ["check_embedding_similarity"]


def check_embedding_similarity(ctx: Context, input: Annotated[str, Field(description="the inbound text")],
                               threshold: Annotated[float | None, Field(ge=0, le=1, description="similarity from which the "
                                                                        "input is unsafe (default 0.85)")] = None,
                               patterns: Annotated[list[str] | None, Field(description="the phrases to compare with "
                                                                           "(default: 15 jailbreak phrases)")] = None,
                               model: Annotated[str | None, Field(description="the embedding model (default "
                                                                  "LEGION_LLM_MODEL)")] = None) -> dict[str, Any]:
    """{safe, max_similarity, matched_pattern, details: [{pattern, similarity}]}; with
    skipped: true when no model is configured, error: embed_failed when embedding failed."""
    limit = h.EMBEDDING_THRESHOLD if threshold is None else threshold
    phrases = list(patterns) if patterns is not None else list(h.DEFAULT_ADVERSARIAL_PATTERNS)
    if not (model or os.environ.get("LEGION_LLM_MODEL")):
        return {"safe": True, "max_similarity": 0.0, "matched_pattern": None, "details": [], "skipped": True}
    try:
        # One request for the input and the phrases: nothing is cached between calls.
        answer = ctx.call("llm.embeddings.create", {"input": [input, *phrases], **({"model": model} if model else {})})
        vectors = answer["embeddings"]
    except (StepError, KeyError, TypeError) as exc:
        ctx.log.warning("privatecore: embedding guard could not embed: %s", exc)
        return {"safe": True, "max_similarity": 0.0, "matched_pattern": None, "details": [], "error": "embed_failed"}
    details = [{"pattern": p, "similarity": h.cosine_similarity(vectors[0], v)} for p, v in zip(phrases, vectors[1:], strict=False)]
    top = max(details, key=lambda d: d["similarity"], default=None)
    best = top["similarity"] if top else 0.0
    matched = top["pattern"] if top and best >= limit else None
    if matched:
        ctx.log.warning("privatecore: adversarial input (similar to %r)", matched)
    return {"safe": matched is None, "max_similarity": best, "matched_pattern": matched, "details": details}
