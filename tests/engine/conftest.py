"""Fixtures for the engine tests: chains written inline, compiled, and run on the virtual clock."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from legion.dsl.errors import LegionError
from legion.dsl.model import MockEntry
from legion.dsl.validate import load_chain
from legion.engine.conductor import ChainProgram
from legion.engine.registry import Registry
from legion.engine.rehearsal import EPOCH, RunResult, VirtualRun


@pytest.fixture(scope="session")
def registry() -> Registry:
    return Registry.discover()


@pytest.fixture(scope="session")
def compile_chain(registry: Registry) -> Callable[..., ChainProgram]:
    """`compile_chain(text, chains=[...])`: validate YAML text and compile it for the conductor."""

    def _compile(text: str, chains: tuple[str, ...] | list[str] = ()) -> ChainProgram:
        source = textwrap.dedent(text)
        name = "inline"
        for line in source.splitlines():
            if line.startswith("chain:"):
                name = line.split(":", 1)[1].strip()
                break
        chain, _ = load_chain(name, text=source, functions=registry.catalog(), chains=[name, *chains])
        return ChainProgram(chain)

    return _compile


def mock_entries(mocks: Mapping[str, list[Mapping[str, Any]]] | None) -> dict[str, list[MockEntry]]:
    return {step: [MockEntry.model_validate(dict(e)) for e in entries] for step, entries in (mocks or {}).items()}


@pytest.fixture(scope="session")
def rehearse(registry: Registry, compile_chain: Callable[..., ChainProgram]) -> Callable[..., RunResult]:
    """`rehearse(text, input=..., mocks=..., subs={name: text})`: one run on the virtual clock."""

    def _run(
        text: str,
        input: dict[str, Any] | None = None,
        mocks: Mapping[str, list[Mapping[str, Any]]] | None = None,
        subs: Mapping[str, str] | None = None,
        start: float = EPOCH,
    ) -> RunResult:
        names = tuple(subs or ())
        program = compile_chain(text, chains=names)
        subprograms = {name: compile_chain(sub, chains=names) for name, sub in (subs or {}).items()}

        def resolve(name: str) -> ChainProgram:
            if name not in subprograms:
                raise LegionError(f"no chain named {name!r}")
            return subprograms[name]

        run = VirtualRun(program, registry, resolve_chain=resolve, mocks=mock_entries(mocks), start=start)
        return run.run(dict(input or {}))

    return _run
