"""Helpers for SDK tests: runner modules written to real files (so tracebacks have real
file names and line numbers), registries of them, and engines over SQLite."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from legion.engine.data.store import Store
from legion.engine.registry import Registry
from legion.engine.runtime import Engine
from legion.engine.sdk import Extension


def load_module(folder: Path, name: str, source: str) -> types.ModuleType:
    """Write `source` to folder/<name>.py and import it as `name`."""
    path = folder / f"{name.replace('.', '_')}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def runner(tmp_path: Path) -> Callable[[str, str], Registry]:
    """`runner(ext, source)`: a registry with the built-ins and extension `ext` whose one
    runner, `ext.probe`, is `source`."""
    def make(ext: str, source: str) -> Registry:
        module = load_module(tmp_path, f"{ext}_ext.runners.probe", source)
        base = Registry.discover()
        return Registry([*base.extensions.values(), Extension(ext, runners=[module])])

    return make


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'db.sqlite'}")


@pytest.fixture
def engine_of(store: Store) -> Iterator[Callable[[Registry], Engine]]:
    engines: list[Engine] = []

    def make(registry: Registry, workers: int = 2) -> Engine:
        engine = Engine(registry, store, workers=workers).start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.stop(drain=1.0)


@pytest.fixture
def run_chain(tmp_path: Path, store: Store) -> Callable[..., dict]:
    """`run_chain(engine, text, input)`: apply the chain `text`, run it, wait for its end."""
    from legion.engine.chains import apply_items, load_chains

    def run(engine: Engine, text: str, input: dict | None = None, timeout: float = 20.0) -> dict:
        folder = tmp_path / "chains"
        folder.mkdir(exist_ok=True)
        path = folder / "chain.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        files, _ = load_chains([path], engine.registry)
        store.apply_chains(apply_items(files))
        return engine.wait(engine.submit(files[0].chain.chain, input or {}), timeout)

    return run
