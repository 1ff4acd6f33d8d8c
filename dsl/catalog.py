"""What validation needs to know about installed functions, without importing the engine.

The engine's extension registry builds `FunctionSpec`s from runner signatures; the DSL only
reads them, so `legion.dsl` stays pure and testable with a hand-written catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict[str, Any] = field(default_factory=dict)  # JSON Schema of the value
    required: bool = False
    default: Any = None
    description: str | None = None


@dataclass(frozen=True)
class FunctionSpec:
    """One callable function: `ext.runner.function` and the arguments it takes."""

    ref: str
    params: tuple[Param, ...] = ()
    extra_args: bool = False  # the function takes **kwargs
    description: str | None = None
    returns: dict[str, Any] = field(default_factory=dict)
    # Declared options: defaults a chain's step overrides (`timeout` in seconds, `retry` in
    # the shape of a step's `retry`); `expose=False` keeps the function off the API and MCP.
    timeout: float | None = None
    retry: Mapping[str, Any] | None = None
    expose: bool = True
    # (argument, literal value) -> a sentence when the value does not fit, else None: the
    # engine's check, the same one that runs at step start. Without it, the JSON Schema is
    # used (hand-written catalogs).
    check: Callable[[str, Any], str | None] | None = field(default=None, compare=False, repr=False)

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]

    def args_schema(self) -> dict[str, Any]:
        """JSON Schema of the `with` mapping (used by the API, MCP tools and editors)."""
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {p.name: _described(p) for p in self.params},
            "additionalProperties": self.extra_args,
        }
        required = [p.name for p in self.params if p.required]
        if required:
            schema["required"] = required
        return schema

    def check_args(self, args: Mapping[str, Any], is_template: Any = None) -> list[tuple[str | None, str]]:
        """Problems with `args` as (argument or None, sentence); templates are not type-checked.

        `is_template(value)` tells whether a value is rendered later (its type is then unknown).
        """
        problems: list[tuple[str | None, str]] = []
        known = {p.name: p for p in self.params}
        for name, value in args.items():
            param = known.get(name)
            if param is None:
                if not self.extra_args:
                    allowed = ", ".join(known) or "no arguments"
                    problems.append((name, f"{self.ref} has no argument {name!r}; it takes: {allowed}"))
                continue
            if is_template is not None and _holds_template(value, is_template):
                continue
            problem = self.check(name, value) if self.check is not None else _schema_problem(self.ref, param, value)
            if problem:
                problems.append((name, problem))
        for param in self.params:
            if param.required and param.name not in args:
                problems.append((None, f"{self.ref} needs the argument {param.name!r}; add it under `with`"))
        return problems


def _described(param: Param) -> dict[str, Any]:
    if param.description and "description" not in param.schema:
        return dict(param.schema, description=param.description)
    return param.schema


def _holds_template(value: Any, is_template: Callable[[Any], bool]) -> bool:
    """A value rendered later, at any depth: its type is known only then."""
    if isinstance(value, dict):
        return any(_holds_template(v, is_template) for v in value.values())
    if isinstance(value, list):
        return any(_holds_template(v, is_template) for v in value)
    return bool(is_template(value))


def _schema_problem(ref: str, param: Param, value: Any) -> str | None:
    if not param.schema:
        return None
    import jsonschema

    try:
        jsonschema.validate(value, param.schema)
    except jsonschema.ValidationError as exc:
        return f"argument {param.name!r} of {ref}: {exc.message}"
    return None


Catalog = Mapping[str, FunctionSpec]


def missing_function(catalog: Catalog, ref: str) -> str | None:
    """Why `ref` is not in the catalog when its extension is installed but failed to load
    (the registry's catalog knows; a plain mapping does not)."""
    broken: Mapping[str, str] = getattr(catalog, "broken", {})
    reason = broken.get(ref.split(".", 1)[0])
    return None if reason is None else f"{ref!r} cannot be used: its extension {reason}"
