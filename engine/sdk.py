"""The extension SDK: what an extension package declares, and how a function's signature
becomes the JSON Schema of its arguments.

An extension is a package that exposes an `Extension` object through the `legion.extensions`
entry-point group; its runners are modules of plain (sync or async) functions. Type hints on
a function are its argument schema: validation, the CLI, the REST API, the MCP tools and the
editors all read it from there.

    # my_ext/__init__.py
    from legion.engine.sdk import Extension
    from my_ext.runners import tickets
    extension = Extension("tickets", runners=[tickets], description="Ticket desk")
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from legion.dsl.catalog import FunctionSpec, Param
from legion.dsl.durations import parse_duration

ACTOR_KINDS = ("subscription", "every", "poll", "once", "loop")


@dataclass(frozen=True)
class Actor:
    """How a function is run besides on demand (LegionIO's actor kinds).

    `subscription` (the default): on its runner queue, when a step or task asks for it.
    `every`: every `interval` seconds. `poll`: every `interval` seconds, firing its trigger
    (on.events) only when the result differs from the last one. `once`: once, `delay` seconds
    after start. `loop`: again as soon as it returns.
    """

    kind: str = "subscription"
    interval: float = 0.0
    delay: float = 0.0
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ACTOR_KINDS:
            raise ValueError(f"actor kind {self.kind!r} is not one of {', '.join(ACTOR_KINDS)}")


def every(interval: str | float, **args: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return _actor(Actor("every", interval=parse_duration(interval), args=args))


def poll(interval: str | float, **args: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return _actor(Actor("poll", interval=parse_duration(interval), args=args))


def once(delay: str | float = 1.0, **args: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return _actor(Actor("once", delay=parse_duration(delay), args=args))


def loop(**args: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return _actor(Actor("loop", args=args))


def _actor(actor: Actor) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__legion_actor__ = actor  # type: ignore[attr-defined]
        return fn

    return mark


@dataclass(frozen=True)
class Extension:
    """What an extension package exports as `extension`."""

    name: str
    runners: Sequence[types.ModuleType] = ()
    description: str | None = None
    version: str | None = None


def schema_of(hint: Any) -> dict[str, Any]:
    """JSON Schema for a type hint (the common cases; anything else accepts any value)."""
    if hint is inspect.Parameter.empty or hint is Any:
        return {}
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [schema_of(a) for a in typing.get_args(hint)]
        if any(o == {} for o in options):
            return {}
        return {"anyOf": options}
    if origin is Literal:
        return {"enum": list(typing.get_args(hint))}
    if hint is type(None):
        return {"type": "null"}
    simple = {str: "string", bool: "boolean", int: "integer", float: "number", dict: "object", list: "array", tuple: "array"}
    if hint in simple:
        return {"type": simple[hint]}
    if origin in (list, tuple, set, frozenset, typing.Sequence) or origin is not None and origin.__name__ in ("Sequence", "Iterable"):
        args = typing.get_args(hint)
        item = schema_of(args[0]) if args else {}
        return {"type": "array", "items": item} if item else {"type": "array"}
    if origin in (dict, typing.Mapping) or (origin is not None and origin.__name__ == "Mapping"):
        return {"type": "object"}
    if hint is float:
        return {"type": "number"}
    return {}


def function_spec(ref: str, fn: Callable[..., Any]) -> FunctionSpec:
    """The FunctionSpec of a runner function, read from its signature and docstring."""
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to "any value"
        hints = {}
    params = []
    extra = False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            extra = True
            continue
        if p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY):
            continue
        schema = schema_of(hints.get(p.name, p.annotation))
        required = p.default is inspect.Parameter.empty
        default = None if required else p.default
        if not required and default is None and schema and "anyOf" not in schema:
            schema = {"anyOf": [schema, {"type": "null"}]}
        params.append(Param(p.name, schema, required, default))
    doc = inspect.getdoc(fn)
    summary = doc.strip().split("\n\n")[0].replace("\n", " ") if doc else None
    returns = schema_of(hints.get("return", inspect.Parameter.empty))
    return FunctionSpec(ref=ref, params=tuple(params), extra_args=extra, description=summary, returns=returns)
