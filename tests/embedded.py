"""An embedded deployment in one test process, for the interfaces' tests (the REST API, the MCP
tools): a `Service` on a fresh LEGION_HOME (SQLite), holding a started engine, whose registry
has the built-in `core` extension and a `probe.hidden.secret_sauce` declared `expose=False`."""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from legion.engine.registry import Registry
from legion.engine.service import Service
from legion.engine.settings import Settings
from legion.sdk import Extension, function

HIDDEN = "probe.hidden.secret_sauce"


def hidden_registry() -> Registry:
    module = types.ModuleType("hidden")

    @function(expose=False)
    def secret_sauce() -> str:
        """Not for the API or agents."""
        return "sauce"

    module.secret_sauce = secret_sauce  # type: ignore[attr-defined]
    module.__all__ = ["secret_sauce"]  # type: ignore[attr-defined]
    return Registry([Registry.discover().extensions["core"], Extension("probe", runners=[module])])


@contextmanager
def embedded_service(home: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry | None = None,
                     workers: int | None = None) -> Iterator[Service]:
    """A Service on a fresh LEGION_HOME (SQLite, the embedded secret store) holding a started
    engine; its registry `registry` (default: core and the hidden probe)."""
    for name in ("LEGION_DATABASE_URL", "LEGION_AMQP_URL", "LEGION_REDIS_URL", "VAULT_ADDR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEGION_HOME", str(home))
    service = Service(Settings.from_env(), registry=registry or hidden_registry())
    engine = service.engine(workers)
    service.use_engine(engine)
    try:
        with engine:
            yield service
    finally:
        service.close()
