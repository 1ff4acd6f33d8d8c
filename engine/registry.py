"""The extension registry: every installed extension, found through the `legion.extensions`
entry-point group (the built-ins register exactly like a third party)."""

from __future__ import annotations

import inspect
import traceback
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import entry_points
from typing import Any

from legion.dsl.catalog import FunctionSpec
from legion.engine.errors import ExtensionError, NotFound
from legion.engine.sdk import Actor, Context, Extension, Options, function_spec
from legion.engine.signature import Signature, build_signature

ENTRY_POINT_GROUP = "legion.extensions"


class Function:
    """One callable function. Its signature (argument schema and check) is built on first
    use, so commands pay only for the functions they touch."""

    def __init__(self, ref: str, extension: str, runner: str, name: str, call: Callable[..., Any]) -> None:
        self.ref = ref  # ext.runner.function
        self.extension = extension
        self.runner = runner
        self.name = name
        self.call = call
        self.is_async = inspect.iscoroutinefunction(call)
        self.actor: Actor = getattr(call, "__legion_actor__", Actor())
        self.options: Options = getattr(call, "__legion_options__", Options())

    @cached_property
    def signature(self) -> Signature:
        try:
            return build_signature(self.call, Context)
        except Exception as exc:  # e.g. a type pydantic cannot handle: name the function
            raise ExtensionError(f"function {self.ref}: its signature cannot be read: {type(exc).__name__}: {exc}") from exc

    @cached_property
    def cancelable(self) -> bool:
        """Whether a cancel can reach a call: an async function's task is cancelled, and a
        function that declares a Context sees `canceled`."""
        try:
            return self.is_async or self.signature.context is not None
        except ExtensionError:  # the call fails before it starts
            return False

    @cached_property
    def spec(self) -> FunctionSpec:
        return function_spec(self.ref, self.call, self.signature)

    def __repr__(self) -> str:
        return f"Function({self.ref!r})"


@dataclass(frozen=True)
class BrokenExtension:
    """An installed extension that failed to load: every other extension still works."""

    name: str
    entry_point: str
    error: str  # "ImportError: No module named 'x'"
    traceback: str
    hint: str

    def reason(self) -> str:
        return f"{self.name!r} failed to load ({self.error}); {self.hint}"


class Catalog(Mapping[str, FunctionSpec]):
    """The registry as validation sees it: specs built on lookup, and the broken extensions."""

    def __init__(self, registry: Registry) -> None:
        self._functions = registry.functions
        self.broken = {name: b.reason() for name, b in registry.broken.items()}

    def __getitem__(self, ref: str) -> FunctionSpec:
        return self._functions[ref].spec

    def __iter__(self) -> Iterator[str]:
        return iter(self._functions)

    def __len__(self) -> int:
        return len(self._functions)


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


_installed: Registry | None = None


class Registry:
    """Extensions, runners and functions by name; built once per process."""

    def __init__(self, extensions: list[Extension], broken: list[BrokenExtension] | None = None) -> None:
        self.extensions: dict[str, Extension] = {}
        self.runners: dict[str, Runner] = {}
        self.functions: dict[str, Function] = {}
        self.broken: dict[str, BrokenExtension] = {b.name: b for b in broken or ()}
        for ext in extensions:
            self.add(ext)

    @classmethod
    def tolerant(cls, extensions: list[Extension], broken: list[BrokenExtension]) -> Registry:
        """Like the constructor, but an extension that cannot be added is kept aside as broken."""
        registry = cls([], broken)
        for ext in extensions:
            try:
                registry.add(ext)
            except ExtensionError as exc:
                registry.broken[ext.name] = _broken(ext.name, ext.name, exc)
        return registry

    @classmethod
    def discover(cls) -> Registry:
        """Every extension in the entry-point group. One that fails to load is kept aside as
        broken (`legion lex list` and `legion doctor` report it) and the others load."""
        found: list[Extension] = []
        broken: list[BrokenExtension] = []
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            try:
                ext = ep.load()
                if not isinstance(ext, Extension):
                    raise ExtensionError(f"entry point {ep.value} is a {type(ext).__name__}, not a legion.sdk.Extension")
            except Exception as exc:
                broken.append(_broken(ep.name, ep.value, exc))
                continue
            found.append(ext)
        return cls.tolerant(found, broken)

    @classmethod
    def installed(cls) -> Registry:
        """The registry of the installed extensions, discovered once per process (for calls
        made outside an engine, which has its own)."""
        global _installed
        if _installed is None:
            _installed = cls.discover()
        return _installed

    def add(self, ext: Extension) -> None:
        if ext.name in self.extensions:
            raise ExtensionError(f"two extensions are named {ext.name!r}")
        self.extensions[ext.name] = ext
        for module in ext.runners:
            rname = runner_name(module)
            functions = []
            for fname, fn in runner_functions(module):
                functions.append(Function(f"{ext.name}.{rname}.{fname}", ext.name, rname, fname, fn))
            doc = inspect.getdoc(module)
            runner = Runner(ext.name, rname, module.__name__, tuple(functions), doc.split("\n\n")[0] if doc else None)
            self.runners[f"{ext.name}.{rname}"] = runner
            for f in functions:
                self.functions[f.ref] = f

    def catalog(self) -> Catalog:
        return Catalog(self)

    def function(self, ref: str) -> Function:
        try:
            return self.functions[ref]
        except KeyError:
            broken = self.broken.get(ref.split(".", 1)[0])
            if broken is not None:
                raise ExtensionError(f"{ref!r} cannot be used: extension {broken.reason()}") from None
            raise NotFound(f"no function {ref!r} is installed; `legion lex list` shows what is") from None


def _broken(name: str, value: str, exc: BaseException) -> BrokenExtension:
    error = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ModuleNotFoundError):
        hint = f"install the missing module {exc.name!r} into this environment, or uninstall the extension"
    elif isinstance(exc, ExtensionError):
        error, hint = str(exc), "fix the extension's entry point"
    else:
        hint = "fix the error in the extension's code (see the traceback: `legion doctor -v`), or uninstall it"
    frames = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-12:])
    return BrokenExtension(name, value, error, frames, hint)
