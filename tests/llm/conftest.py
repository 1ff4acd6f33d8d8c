"""The language-model tests: no connection leaves loopback (tests/conftest.py sees to that for
the whole suite; litellm would otherwise fetch a price list, and a wrong `api_base` would
reach the internet), and each test starts with every provider's circuit closed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def fresh_guard() -> Iterator[None]:
    """Each test starts with every provider's circuit closed and no rate-limit counts."""
    from legion.extensions.llm import guard

    guard.BREAKER.reset()
    guard.LIMITS.reset()
    yield
    guard.BREAKER.reset()
    guard.LIMITS.reset()
