"""The sandboxed Jinja2 environment that templates compile in (spec section 3).

Imported by `legion.dsl.expressions.Template` when the first template is compiled, so that
processes compiling none never load Jinja2.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import simpleeval
from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2 import meta as jinja_meta
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from legion.dsl.errors import ExpressionError
from legion.dsl.expressions import MAPPING_METHODS, _mapping_method, secret_token


class _Environment(ImmutableSandboxedEnvironment):
    # `**` goes through call_binop, bounded as in conditions; an intercepted operator is also
    # never folded at compile time, so validating `{{ 9 ** 9 ** 9 }}` cannot hang either.
    intercepted_binops = frozenset({"**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            try:
                return simpleeval.safe_power(left, right)
            except simpleeval.NumberTooHigh as exc:
                raise ExpressionError(str(exc)) from None
        return super().call_binop(context, operator, left, right)

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None, defer_init: bool = False) -> str:
        # Rewrite `m.get(...)` (and keys/values/items) into a call of the mapping method, so
        # that it works even when the mapping has a key of that name, as in conditions.
        for call in source.find_all(nodes.Call):
            target = call.node
            if isinstance(target, nodes.Getattr) and target.attr in MAPPING_METHODS:
                call.node = nodes.Call(nodes.Name("__method__", "load"), [target.node, nodes.Const(target.attr)], [], None, None)
        return super()._generate(source, name, filename, defer_init)  # type: ignore[no-any-return]

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping):
            if attribute in obj:
                return obj[attribute]
            if attribute in MAPPING_METHODS:
                return getattr(obj, attribute)
            return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


def _bound_method(env: _Environment) -> Callable[[Any, str], Any]:
    def method(target: Any, name: str) -> Any:
        if isinstance(target, Mapping):
            return _mapping_method(target, name)
        return env.getattr(target, name)  # not a mapping: what `target.name` would give

    return method


def _make_env() -> _Environment:
    env = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.globals.update(null=None, secret=secret_token, __method__=_bound_method(env))
    env.tests["None"] = lambda value: value is None
    return env


ENV = _make_env()


def compile_template(source: str) -> tuple[frozenset[str], Callable[..., Any] | None, Any]:
    """(the names the template reads, the compiled expression when the template is a single
    `{{ expression }}`, else the compiled template); ExpressionError when it cannot compile."""
    try:
        tree = ENV.parse(source)
        names = frozenset(jinja_meta.find_undeclared_variables(tree)) - {"null", "secret"}
        inner = _single_expression(source, tree)
        if inner is not None:
            return names, ENV.compile_expression(inner, undefined_to_none=False), None
        return names, None, ENV.from_string(tree)
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"template {source!r}: syntax error: {exc.message}") from None
    except Exception as exc:  # unknown filters and tests, and errors while folding constants
        raise ExpressionError(f"template {source!r}: {type(exc).__name__}: {exc}") from None


def _single_expression(source: str, tree: nodes.Template) -> str | None:
    """The inner expression text when the template is one `{{ expression }}` and nothing else."""
    text = source[:-1] if source.endswith("\n") else source
    if not (text.startswith("{{") and text.endswith("}}")):
        return None
    body = tree.body
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    parts = list(body[0].nodes)
    if source.endswith("\n") and parts and isinstance(parts[-1], nodes.TemplateData) and parts[-1].data == "\n":
        parts.pop()  # the one trailing newline a YAML block scalar leaves is ignored
    parts = [n for n in parts if not (isinstance(n, nodes.TemplateData) and n.data == "")]
    if len(parts) != 1 or isinstance(parts[0], nodes.TemplateData):
        return None
    inner = text[2:-2]
    if inner.startswith("-"):
        inner = inner[1:]
    if inner.endswith("-"):
        inner = inner[:-1]
    return inner
