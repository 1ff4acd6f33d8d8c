"""Shared by the secrets tests: the process-wide masker starts empty for each test."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from legion.dsl.model import MockEntry
from legion.dsl.validate import load_chain
from legion.engine.conductor import ChainProgram
from legion.engine.registry import Registry
from legion.engine.rehearsal import RunResult, VirtualRun
from legion.engine.secrets import MASKER, EmbeddedSecrets, Resolver


@pytest.fixture(autouse=True)
def fresh_masker() -> Iterator[None]:
    MASKER.forget()
    yield
    MASKER.forget()


REGISTRY = Registry.discover()


def program(text: str) -> ChainProgram:
    chain, _ = load_chain("test.yaml", text=textwrap.dedent(text), functions=REGISTRY.catalog())
    return ChainProgram(chain)


@pytest.fixture()
def compile_program() -> Callable[[str], ChainProgram]:
    """`compile_program(text)`: a chain's YAML text, validated and compiled."""
    return program


@pytest.fixture()
def rehearse() -> Callable[..., RunResult]:
    """`rehearse(text, store, input=None, mocks=None)`: one run on the virtual clock whose real
    calls read secrets from `store`; `mocks` maps steps to results."""

    def run(text: str, store: Any, input: dict[str, Any] | None = None, mocks: dict[str, list[Any]] | None = None) -> RunResult:
        entries = {step: [MockEntry(result=r) for r in results] for step, results in (mocks or {}).items()}
        return VirtualRun(program(text), REGISTRY, secrets=Resolver(store), mocks=entries).run(dict(input or {}))

    return run


@pytest.fixture()
def embedded(tmp_path: Path) -> EmbeddedSecrets:
    store = EmbeddedSecrets(tmp_path / "home")
    store.write("api", "token", "s3cr3t-value")
    return store
