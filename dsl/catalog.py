"""What validation needs to know about installed functions, without importing the engine.

The engine's extension registry builds `FunctionSpec`s from runner signatures; the DSL only
reads them, so `legion.dsl` stays pure and testable with a hand-written catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema


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

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]

    def args_schema(self) -> dict[str, Any]:
        """JSON Schema of the `with` mapping (used by the API, MCP tools and editors)."""
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {p.name: dict(p.schema, **({"description": p.description} if p.description else {})) for p in self.params},
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
            if param.schema and not (is_template and is_template(value)):
                try:
                    jsonschema.validate(value, param.schema)
                except jsonschema.ValidationError as exc:
                    problems.append((name, f"argument {name!r} of {self.ref}: {exc.message}"))
        for param in self.params:
            if param.required and param.name not in args:
                problems.append((None, f"{self.ref} needs the argument {param.name!r}; add it under `with`"))
        return problems


Catalog = Mapping[str, FunctionSpec]
