"""The extension registry: every installed extension, found through the `legion.extensions`
entry-point group (the built-ins register exactly like a third party)."""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from legion.dsl.catalog import FunctionSpec
from legion.engine.errors import ExtensionError, NotFound
from legion.engine.sdk import Actor, Extension, function_spec

ENTRY_POINT_GROUP = "legion.extensions"


@dataclass(frozen=True)
class Function:
    ref: str  # ext.runner.function
    extension: str
    runner: str
    name: str
    call: Callable[..., Any]
    spec: FunctionSpec
    is_async: bool
    actor: Actor


@dataclass(frozen=True)
class Runner:
    extension: str
    name: str
    module: str
    functions: tuple[Function, ...]
    description: str | None

    @property
    def queue(self) -> str:
        return f"lex.{self.extension}.{self.name}"


def runner_name(module: types.ModuleType) -> str:
    return module.__name__.rsplit(".", 1)[-1]


def runner_functions(module: types.ModuleType) -> Iterator[tuple[str, Callable[..., Any]]]:
    """Public functions defined in a runner module (not the ones it imports)."""
    names = getattr(module, "__all__", None)
    for name, value in vars(module).items():
        if name.startswith("_") or not inspect.isfunction(value):
            continue
        if names is not None and name not in names:
            continue
        if names is None and value.__module__ != module.__name__:
            continue
        yield name, value


class Registry:
    """Extensions, runners and functions by name; built once per process."""

    def __init__(self, extensions: list[Extension]) -> None:
        self.extensions: dict[str, Extension] = {}
        self.runners: dict[str, Runner] = {}
        self.functions: dict[str, Function] = {}
        for ext in extensions:
            self.add(ext)

    @classmethod
    def discover(cls) -> Registry:
        found = []
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            try:
                ext = ep.load()
            except Exception as exc:
                raise ExtensionError(f"extension {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}") from exc
            if not isinstance(ext, Extension):
                raise ExtensionError(f"entry point {ep.name!r} ({ep.value}) must be a legion.engine.sdk.Extension, not {type(ext).__name__}")
            found.append(ext)
        return cls(found)

    def add(self, ext: Extension) -> None:
        if ext.name in self.extensions:
            raise ExtensionError(f"two extensions are named {ext.name!r}")
        self.extensions[ext.name] = ext
        for module in ext.runners:
            rname = runner_name(module)
            functions = []
            for fname, fn in runner_functions(module):
                ref = f"{ext.name}.{rname}.{fname}"
                functions.append(Function(
                    ref=ref, extension=ext.name, runner=rname, name=fname, call=fn,
                    spec=function_spec(ref, fn), is_async=inspect.iscoroutinefunction(fn),
                    actor=getattr(fn, "__legion_actor__", Actor()),
                ))
            doc = inspect.getdoc(module)
            runner = Runner(ext.name, rname, module.__name__, tuple(functions), doc.split("\n\n")[0] if doc else None)
            self.runners[f"{ext.name}.{rname}"] = runner
            for f in functions:
                self.functions[f.ref] = f

    def catalog(self) -> dict[str, FunctionSpec]:
        return {ref: f.spec for ref, f in self.functions.items()}

    def function(self, ref: str) -> Function:
        try:
            return self.functions[ref]
        except KeyError:
            raise NotFound(f"no function {ref!r} is installed; `legion lex list` shows what is") from None
