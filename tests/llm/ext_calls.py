"""What the provider extensions' tests share: calling a function as a step does, and the
usage shape every token-spending call returns (what `legion run show` sums)."""

from __future__ import annotations

import json
from typing import Any

from legion.engine.invoke import call
from legion.engine.registry import Registry

REGISTRY = Registry.discover()
USAGE = {"prompt_tokens", "completion_tokens", "total_tokens", "cost", "latency_ms"}


def run(ref: str, **args: Any) -> Any:
    return call(REGISTRY.function(ref), args, None)


def ok(ref: str, **args: Any) -> dict[str, Any]:
    done = run(ref, **args)
    assert done.status == "succeeded", done.error
    return dict(done.result)


def failed(ref: str, **args: Any) -> dict[str, Any]:
    done = run(ref, **args)
    assert done.status == "failed", done.result
    return dict(done.error)


def tokens(usage: dict[str, Any], prompt: int, completion: int) -> None:
    """`usage` has exactly the shape run show sums, with these counts."""
    assert set(usage) == USAGE and usage["cost"] is None and usage["latency_ms"] >= 0
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (prompt, completion, prompt + completion)


def nowhere(secret: str, *values: Any) -> None:
    """The key (or its first 12 characters) is in none of these."""
    text = json.dumps(values, default=str)
    assert secret not in text and secret[:12] not in text
