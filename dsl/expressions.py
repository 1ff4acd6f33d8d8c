"""Conditions (simpleeval) and templates (sandboxed Jinja2), compiled once and evaluated often.

Both follow spec section 3: mappings read keys before their methods (`ctx.items` is the key
`items` when there is one), a condition that reads a missing key is an error, a template that
reads one gets Jinja's strict undefined, and a template that is a single `{{ expression }}`
renders to the expression's native value.

The Jinja2 environment itself is in `legion.dsl.sandbox`, loaded with the first template.
"""

from __future__ import annotations

import ast
import math
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import simpleeval
from markupsafe import Markup

from legion.dsl.errors import ExpressionError

# The tokens live in a Jinja-free module (the engine's masking loads it in every command);
# the names unused here stay importable from here, where `secret()` makes tokens.
from legion.dsl.tokens import SECRET_CLOSE, SECRET_OPEN, make_token, split_reference, token_reference  # noqa: F401
from legion.dsl.trees import leaves

# Names a chain may use, per place (spec section 3's table).
RUN_NAMES = frozenset({"input", "run"})
STEP_NAMES = frozenset(
    {"input", "ctx", "result", "status", "succeeded", "failed", "error", "attempt", "run"}
)
ITEM_NAMES = frozenset({"item", "index"})
CONSTANT_NAMES = {"None": None, "True": True, "False": False, "null": None, "true": True, "false": False}

MAPPING_METHODS = frozenset({"get", "keys", "values", "items"})
STRING_METHODS = frozenset({"startswith", "endswith", "lower", "upper", "strip", "split", "replace"})
FUNCTIONS: dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (len, min, max, abs, round, sum, any, all, sorted, int, float, str, bool)
}


def _is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


class NotJsonValue(ValueError):
    """A value that is not JSON (a set, an object, NaN, a non-string key)."""


def json_value(value: Any) -> Any:
    """The value as plain JSON: tuples and iterators become lists, markup becomes a string.

    Step results and rendered templates both pass through here (spec section 3).
    """
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise NotJsonValue(f"{value} is not a JSON number")
        return value
    if isinstance(value, str):
        return str(value) if isinstance(value, Markup) else value
    _fail_if_undefined(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotJsonValue(f"mapping key {key!r} is not a string")
            out[key] = json_value(item)
        return out
    if isinstance(value, (list, tuple, Iterator)):
        return [json_value(item) for item in value]
    raise NotJsonValue(f"{type(value).__name__} is not a JSON value")


# ---------------------------------------------------------------- conditions


class _Evaluator(simpleeval.EvalWithCompoundTypes):
    """simpleeval with the spec's attribute rules and errors that say which name is missing."""

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        attr = node.attr
        if attr.startswith("_"):
            raise ExpressionError(f"access to {attr!r} is not allowed")
        value = self._eval(node.value)
        if isinstance(value, Mapping):
            if attr in value:
                return value[attr]
            if attr in MAPPING_METHODS:
                return getattr(value, attr)
            raise ExpressionError(f"no key {attr!r} (keys: {', '.join(map(str, value)) or 'none'})")
        if isinstance(value, str) and attr in STRING_METHODS:
            return getattr(value, attr)
        raise ExpressionError(f"{type(value).__name__} has no attribute {attr!r}")

    def _eval_call(self, node: ast.Call) -> Any:
        # `m.get(...)`, `m.keys()`, ... call the mapping's method even when the mapping has a
        # key of that name: `ctx.get('k', d)` always works (spec section 3).
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in MAPPING_METHODS:
            target = self._eval(func.value)
            if isinstance(target, Mapping):
                args = [self._eval(a) for a in node.args]
                kwargs = {k.arg: self._eval(k.value) for k in node.keywords if k.arg is not None}
                return _mapping_method(target, func.attr)(*args, **kwargs)
            return self._call_on(target, func.attr, node)
        return super()._eval_call(node)

    def _call_on(self, target: Any, attr: str, node: ast.Call) -> Any:
        if isinstance(target, str) and attr in STRING_METHODS:
            args = [self._eval(a) for a in node.args]
            return getattr(target, attr)(*args)
        raise ExpressionError(f"{type(target).__name__} has no method {attr!r}")

    def _eval_subscript(self, node: ast.Subscript) -> Any:
        try:
            return super()._eval_subscript(node)
        except KeyError as exc:
            raise ExpressionError(f"no key {exc.args[0]!r}") from None
        except IndexError:
            raise ExpressionError("list index out of range") from None

    def _eval_name(self, node: ast.Name) -> Any:
        try:
            return self.names[node.id]
        except KeyError:
            if node.id in CONSTANT_NAMES:
                return CONSTANT_NAMES[node.id]
            if node.id in self.functions:
                return self.functions[node.id]
            raise ExpressionError(f"unknown name {node.id!r}") from None


def _mapping_method(target: Mapping[str, Any], name: str) -> Any:
    if isinstance(target, dict):
        return getattr(dict, name).__get__(target)
    return getattr(target, name)


_local = threading.local()


def _evaluator() -> _Evaluator:
    ev = getattr(_local, "evaluator", None)
    if ev is None:
        ev = _Evaluator(functions=dict(FUNCTIONS), names={})
        _local.evaluator = ev
    return ev


# Expression node types simpleeval can evaluate (checked at compile time, so that a lambda or a
# walrus is a validation error rather than a run-time surprise).
_ALLOWED_NODES: tuple[type, ...] = tuple(
    t for t in _Evaluator(functions={}, names={}).nodes if issubclass(t, ast.expr)
) + (ast.comprehension,)


def _free_names(tree: ast.AST) -> set[str]:
    loaded: set[str] = set()
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
    return loaded - bound - set(FUNCTIONS) - set(CONSTANT_NAMES)


class Condition:
    """A compiled `when`: Python expression syntax, evaluated by simpleeval."""

    __slots__ = ("source", "constant", "tree", "names")

    def __init__(self, source: str | bool) -> None:
        self.source = source
        self.constant: bool | None = None
        self.tree: ast.Expression | None = None
        if isinstance(source, bool):
            self.constant = source
            self.names: frozenset[str] = frozenset()
            return
        text = source.strip()
        if text.startswith("{{") and text.endswith("}}"):
            raise ExpressionError(
                f"condition {source!r} is written in braces: drop the braces, "
                f"a condition is a bare expression such as `succeeded and result.ok`"
            )
        try:
            self.tree = ast.parse(text, mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"condition {source!r}: syntax error: {exc.msg}") from None
        for node in ast.walk(self.tree.body):
            if isinstance(node, ast.expr) and not isinstance(node, _ALLOWED_NODES):
                raise ExpressionError(
                    f"condition {source!r}: {type(node).__name__} is not allowed in a condition"
                )
            if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                raise ExpressionError(f"condition {source!r}: access to {node.attr!r} is not allowed")
        self.names = frozenset(_free_names(self.tree))
        if source == "succeeded":  # the default edge: skip the evaluator on the hot path
            self.tree = None

    def __call__(self, names: Mapping[str, Any]) -> bool:
        if self.constant is not None:
            return self.constant
        if self.tree is None:
            return bool(names["succeeded"])
        ev = _evaluator()
        ev.names = names
        try:
            return bool(ev.eval(self.source, previously_parsed=self.tree.body))
        except ExpressionError as exc:
            raise ExpressionError(f"condition {self.source!r}: {exc.message}") from None
        except Exception as exc:  # simpleeval and Python errors alike: one kind for the user
            raise ExpressionError(f"condition {self.source!r}: {type(exc).__name__}: {exc}") from None


# ---------------------------------------------------------------- templates


class Template:
    """A compiled template string; `render(scope)` gives a JSON value (spec section 3)."""

    __slots__ = ("source", "names", "_expression", "_template")

    def __init__(self, source: str) -> None:
        # Jinja2 loads with the first template: commands and chains that compile none (a
        # `legion task run`, a chain without templates) do without it.
        from legion.dsl.sandbox import compile_template

        self.source = source
        self.names, self._expression, self._template = compile_template(source)

    def render(self, scope: Mapping[str, Any]) -> Any:
        try:
            if self._expression is not None:
                return json_value(self._expression(**scope))
            return self._template.render(scope)
        except NotJsonValue as exc:
            raise ExpressionError(f"template {self.source!r}: {exc}") from None
        except ExpressionError as exc:
            if exc.message.startswith("template "):
                raise
            raise ExpressionError(f"template {self.source!r}: {exc.message}") from None
        except Exception as exc:
            raise ExpressionError(f"template {self.source!r}: {type(exc).__name__}: {exc}") from None


# ---------------------------------------------------------------- secrets (spec section 7)


def secret_token(reference: object) -> str:
    """The token `secret(reference)` renders to: `«secret:path#key|mac»` (see `legion.dsl.tokens`)."""
    _fail_if_undefined(reference)  # `secret(input.missing)`: say which name is missing
    return make_token(reference)


def _fail_if_undefined(value: Any) -> None:
    """Raise Jinja's error for one of its undefined values. Those exist only once Jinja2 is
    loaded, so its `Undefined` is looked up rather than imported."""
    runtime = sys.modules.get("jinja2.runtime")
    if runtime is not None and isinstance(value, runtime.Undefined):
        value._fail_with_undefined_error()


# ---------------------------------------------------------------- value trees


Renderer = Callable[[Mapping[str, Any]], Any]


def compile_value(value: Any) -> Renderer:
    """Compile a tree in which every string is a template into one render function.

    Parts without templates are returned as they are, so a static `with` costs nothing.
    """
    if not _has_template(value):
        return _constant(value)
    if isinstance(value, str):
        return Template(value).render
    if isinstance(value, Mapping):
        parts = {k: compile_value(v) for k, v in value.items()}
        return lambda scope: {k: render(scope) for k, render in parts.items()}
    items = [compile_value(v) for v in value]
    return lambda scope: [render(scope) for render in items]


def _constant(value: Any) -> Renderer:
    """A renderer of a value without templates; containers come back as fresh copies (of the
    top level), so a caller that adds a key does not change the chain."""
    if isinstance(value, Mapping):
        mapping = dict(value)
        return lambda scope: dict(mapping)
    if isinstance(value, list):
        sequence = list(value)
        return lambda scope: list(sequence)
    return lambda scope: value


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return _is_template(value)
    if isinstance(value, Mapping):
        return any(_has_template(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_template(v) for v in value)
    return False


def template_sources(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every template string in a tree, with its path (for validation)."""
    for where, leaf in leaves(value, path):
        if isinstance(leaf, str) and _is_template(leaf):
            yield where, leaf
