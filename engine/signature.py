"""A function's signature as the one source of its argument schema and its argument check.

Each parameter's type hint (with `Annotated[..., Field(...)]` constraints) becomes a pydantic
`TypeAdapter`, built once. From the adapters come the JSON Schema that `legion lex list`,
validation, the API, MCP tools and editors read (with defaults, descriptions from the
docstring's Args section or from `Field(description=...)`, nested models, enums, `Literal`,
optional values, and the return type's schema), and the check of arguments at step start:
pydantic's lax mode, so `"5"` becomes 5 for an `int` argument and `"soon"` is refused.

Building adapters costs milliseconds per function, so a `FunctionSpec` builds its signature
on first use: `legion chain validate` pays only for the functions its chains call.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from legion.dsl.catalog import Param

if typing.TYPE_CHECKING:
    from pydantic import TypeAdapter

ARGS_HEADERS = ("args", "arguments", "parameters", "params")


class ArgumentProblem(Exception):
    """One argument that does not fit its parameter, as a sentence (no value in it)."""


@dataclass(frozen=True)
class Signature:
    """Parameters (without the run context), the name of the context parameter if any,
    whether the function takes **kwargs, and the return type's schema."""

    params: tuple[Param, ...]
    adapters: Mapping[str, TypeAdapter[Any]]
    context: str | None
    extra_args: bool
    returns: dict[str, Any]
    summary: str | None

    def validate(self, ref: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments coerced to the parameters' types (lax mode), the run context left
        out; ArgumentProblem naming the first argument that does not fit."""
        out: dict[str, Any] = {}
        adapters = self.adapters
        for name, value in args.items():
            adapter = adapters.get(name)
            if adapter is None:
                if not self.extra_args or name == self.context:
                    raise ArgumentProblem(f"{ref} has no argument {name!r}; it takes: {', '.join(adapters) or 'no arguments'}")
                out[name] = value
                continue
            out[name] = _validated(ref, name, adapter, value, self._schema(name))
        for param in self.params:
            if param.required and param.name not in args:
                raise ArgumentProblem(f"{ref} needs the argument {param.name!r}")
        return out

    def check(self, ref: str, name: str, value: Any) -> str | None:
        """A sentence when a literal `value` does not fit parameter `name`, else None."""
        adapter = self.adapters.get(name)
        if adapter is None:
            return None
        try:
            _validated(ref, name, adapter, value, self._schema(name))
        except ArgumentProblem as exc:
            return str(exc)
        return None

    def _schema(self, name: str) -> dict[str, Any]:
        for p in self.params:
            if p.name == name:
                return p.schema
        return {}


def _validated(ref: str, name: str, adapter: TypeAdapter[Any], value: Any, schema: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        inner = [p for p in first.get("loc", ()) if not (isinstance(p, str) and p.startswith("function-"))]
        if not inner:
            raise ArgumentProblem(f"argument {name!r} of {ref} expects {expected(schema)}, got {json_type(value)}: {first['msg']}") from None
        part_schema, part = _part(schema, value, inner)
        where = ".".join([name, *map(str, inner)])
        raise ArgumentProblem(f"argument {name!r} of {ref}, at {where}: expects {expected(part_schema)}, "
                              f"got {json_type(part) if part is not _MISSING else 'nothing'}: {first['msg']}") from None


_MISSING = object()


def _part(schema: dict[str, Any], value: Any, loc: list[Any]) -> tuple[dict[str, Any], Any]:
    """The schema and the value at `loc` inside an argument (best effort: {} where unknown)."""
    defs = schema.get("$defs", {})

    def resolve(s: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in s:
            s = defs.get(s["$ref"].rsplit("/", 1)[-1], {})
        return s

    for key in loc:
        schema = resolve(schema)
        if "anyOf" in schema:  # `Model | None`: the option that has this key
            options = [resolve(o) for o in schema["anyOf"]]
            schema = next((o for o in options if key in o.get("properties", {}) or (isinstance(key, int) and "items" in o)), {})
        if isinstance(key, int):
            schema = schema.get("items", {}) if isinstance(schema.get("items"), dict) else {}
        else:
            schema = schema.get("properties", {}).get(key) or (
                schema["additionalProperties"] if isinstance(schema.get("additionalProperties"), dict) else {})
        if isinstance(value, dict) and not isinstance(key, int):
            value = value.get(key, _MISSING)
        elif isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value):
            value = value[key]
        else:
            value = _MISSING
    return resolve(schema), value


def expected(schema: Mapping[str, Any]) -> str:
    """A JSON Schema in a few words: "an integer", "one of 'a', 'b'", "a Ticket object"."""
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) for v in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    if "anyOf" in schema:
        return " or ".join(expected(s) for s in schema["anyOf"])
    if "$ref" in schema:
        return f"a {schema['$ref'].rsplit('/', 1)[-1]} object"
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(expected({"type": k}) for k in kind)
    words = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "a boolean",
             "array": "a list", "object": "an object", "null": "null"}
    return words.get(str(kind), "any value") if kind else "any value"


def json_type(value: Any) -> str:
    """What kind of JSON value `value` is, never the value itself (it may be a secret)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


# ---------------------------------------------------------------- building


def build_signature(fn: Callable[..., Any], context_type: type) -> Signature:
    """Read `fn`'s parameters, type hints and docstring into a Signature."""
    from pydantic import ConfigDict
    from pydantic.fields import FieldInfo

    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable forward references: such parameters accept any value
        hints = {}
    doc = inspect.getdoc(fn)
    described = arg_descriptions(doc)
    config = ConfigDict(arbitrary_types_allowed=True)
    names: list[str] = []
    adapters: dict[str, TypeAdapter[Any]] = {}
    meta: dict[str, tuple[bool, Any, str | None]] = {}
    context = None
    extra = False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            extra = True
            continue
        if p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY):
            continue
        hint = hints.get(p.name, Any)
        if _is_context(hint, context_type):
            context = p.name
            continue
        field = _field_info(hint, FieldInfo)
        default = p.default
        if default is inspect.Parameter.empty and field is not None and not field.is_required():
            default = field.get_default(call_default_factory=True)
        required = default is inspect.Parameter.empty
        description = (field.description if field is not None else None) or described.get(p.name)
        names.append(p.name)
        adapters[p.name] = _adapter(hint, config)
        meta[p.name] = (required, None if required else default, description)
    schemas = _schemas(adapters)
    params = []
    for name in names:
        required, default, description = meta[name]
        schema = dict(schemas[name])
        if description:
            schema["description"] = description
        if not required:
            schema["default"] = _json_default(default)
        params.append(Param(name, schema, required, default, description))
    returns = _return_schema(hints.get("return", inspect.Parameter.empty), config)
    summary = doc.strip().split("\n\n")[0].replace("\n", " ") if doc else None
    return Signature(tuple(params), adapters, context, extra, returns, summary)


def _is_context(hint: Any, context_type: type) -> bool:
    """`Context`, `Context | None` (so a unit test may call the function without one), or
    either of them `Annotated`."""
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = options[0] if len(options) == 1 else None
    return isinstance(hint, type) and issubclass(hint, context_type)


def _field_info(hint: Any, field_type: type) -> Any:
    if typing.get_origin(hint) is typing.Annotated:
        for extra in typing.get_args(hint)[1:]:
            if isinstance(extra, field_type):
                return extra
    return None


def _adapter(hint: Any, config: Any) -> TypeAdapter[Any]:
    """A TypeAdapter that allows arbitrary classes (checked with isinstance); a model,
    dataclass or TypedDict carries its own config, and pydantic refuses a second one."""
    from pydantic import TypeAdapter
    from pydantic.errors import PydanticUserError

    try:
        return TypeAdapter(hint, config=config)
    except PydanticUserError as exc:
        if exc.code != "type-adapter-config-unused":
            raise
        return TypeAdapter(hint)


def _schemas(adapters: Mapping[str, TypeAdapter[Any]]) -> dict[str, dict[str, Any]]:
    """Each parameter's JSON Schema; the definitions of nested models are inlined per
    parameter, so every parameter's schema stands alone (the API and MCP show them one by
    one). A type with no JSON form (an arbitrary class) accepts any value in the schema."""
    from pydantic.errors import PydanticInvalidForJsonSchema, PydanticUserError

    out: dict[str, dict[str, Any]] = {}
    for name, adapter in adapters.items():
        try:
            schema = adapter.json_schema()
        except (PydanticInvalidForJsonSchema, PydanticUserError):
            schema = {}
        out[name] = schema
    return out


def _return_schema(hint: Any, config: Any) -> dict[str, Any]:
    if hint is inspect.Parameter.empty or hint is Any:
        return {}
    from pydantic.errors import PydanticInvalidForJsonSchema, PydanticUserError

    try:
        return _adapter(hint, config).json_schema()
    except (PydanticInvalidForJsonSchema, PydanticUserError, TypeError):
        return {}


def _json_default(value: Any) -> Any:
    """A default as JSON for the schema (an Enum member as its value, a model as a dict)."""
    from pydantic_core import to_jsonable_python

    try:
        return to_jsonable_python(value)
    except Exception:  # a default with no JSON form is shown as its text
        return repr(value)


_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


def arg_descriptions(doc: str | None) -> dict[str, str]:
    """Parameter descriptions from a docstring's `Args:` section (Google style, with
    indented continuation lines) or from `:param name: text` lines (Sphinx style)."""
    out: dict[str, str] = {}
    section: int | None = None  # the indent of the `Args:` header while inside its section
    item: int | None = None  # the indent of the section's `name: text` lines
    current: str | None = None
    for line in (doc or "").splitlines():
        stripped = line.strip()
        here = len(line) - len(line.lstrip())
        sphinx = _SPHINX.match(stripped)
        if sphinx:
            current = sphinx.group(1)
            out[current] = sphinx.group(2).strip()
        elif stripped.endswith(":") and stripped[:-1].lower() in ARGS_HEADERS:
            section, item, current = here, None, None
        elif section is None or not stripped:
            current = None if not stripped else current
        elif here <= section:  # the next section (Returns:, Raises:, ...)
            section, current = None, None
        elif (match := _ARG_LINE.match(stripped)) and (item is None or here <= item):
            item, current = here, match.group(1).lstrip("*")
            out[current] = match.group(2).strip()
        elif current is not None:
            out[current] = f"{out[current]} {stripped}".strip()
    return out
