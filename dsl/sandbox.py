"""The sandboxed Jinja2 environment that templates compile in (spec section 3).

Imported by `legion.dsl.expressions.Template` when the first template is compiled, so that
processes compiling none never load Jinja2.

Every evaluation runs under the budgets of `legion.dsl.budget`: loops, calls and filters
pass its checkpoints, and what they and the operators that can make large values (`*`, `+`,
`**`, `%`, `~`) would make is sized before it is made. Constant folding is off, so that
compiling a template (what validation does) never evaluates any of it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2 import meta as jinja_meta
from jinja2.compiler import CodeGenerator
from jinja2.filters import do_join
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from legion.dsl import budget
from legion.dsl.errors import ExpressionError
from legion.dsl.expressions import MAPPING_METHODS, _mapping_method, secret_token, shown, sized

_BINOPS: dict[str, Callable[[Any, Any], Any]] = {"**": budget.power, "*": budget.mul, "+": budget.add, "%": budget.modulo}


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset(_BINOPS)

    def make_globals(self, d: Any) -> Any:
        # A plain dict rather than Jinja's ChainMap over `self.globals`: every render copies
        # the globals into its context, and copying a dict is several times faster. The
        # globals are set once, in `_make_env`, so nothing is lost by not chaining.
        return dict(self.globals, **(d or {}))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return _BINOPS[operator](left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's signature
        ev = budget.current()
        target = getattr(__obj, "__wrapped__", __obj)
        owner = getattr(target, "__self__", None)
        ev.tick(budget.cost(owner, *args))
        if isinstance(owner, str) and getattr(target, "__name__", "") in budget.PADDING_METHODS:
            budget.check_string_call(owner, target.__name__, args, kwargs)
        result = ImmutableSandboxedEnvironment.call(__self, __context, __obj, *args, **kwargs)
        return _checked(result, ev)

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None, defer_init: bool = False) -> str:
        return super()._generate(_Bounded().visit(source), name, filename, defer_init)  # type: ignore[no-any-return]

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping):
            if attribute in obj:
                return obj[attribute]
            if attribute in MAPPING_METHODS:
                return getattr(obj, attribute)
            return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


class _Bounded(NodeTransformer):
    """Rewrites a parsed template before it is compiled:
    - `m.get(...)` (and keys/values/items) becomes a call of the mapping's method, so that it
      works even when the mapping has a key of that name, as in conditions;
    - every loop's items pass the budget's checkpoint (`__loop__`);
    - `~` becomes a call that sizes the text before joining it (`__concat__`)."""

    def visit_Call(self, node: nodes.Call) -> nodes.Node:
        self.generic_visit(node)
        target = node.node
        if isinstance(target, nodes.Getattr) and target.attr in MAPPING_METHODS:
            node.node = nodes.Call(nodes.Name("__method__", "load"), [target.node, nodes.Const(target.attr)], [], None, None)
        return node

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _call("__loop__", [node.iter])
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _call("__concat__", list(node.nodes), lineno=node.lineno)


def _call(name: str, args: list[Any], lineno: int | None = None) -> nodes.Call:
    return nodes.Call(nodes.Name(name, "load"), args, [], None, None, lineno=lineno)


def _checked(result: Any, ev: budget.Evaluation) -> Any:
    """A call's or filter's result within the size budget; a lazy one ticks per item."""
    if isinstance(result, (str, list, tuple, dict)):
        ev.size(len(result), "a value")
    elif isinstance(result, Iterator):
        return budget.ticking(result)
    return result


# -- filters and globals ------------------------------------------------------------------
# Each filter passes the checkpoint and has its result sized; those that can make much more
# than they are given size it before (the pre-checks below get the filter's own arguments).


def _pre_center(value: Any, width: int = 80, *_: Any, **__: Any) -> None:
    budget.current().size(width if isinstance(width, int) else 0, "the centred text")


def _pre_indent(s: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    text = str(s) if not isinstance(s, str) else s
    per_line = width if isinstance(width, int) else len(str(width))
    budget.current().size(len(text) + (text.count("\n") + 1) * max(per_line, 0), "the indented text")


def _pre_replace(s: Any, old: Any, new: Any, count: Any = None) -> None:
    if isinstance(s, str) and isinstance(old, str) and isinstance(new, str):
        budget.check_replace(s, old, new, count)


def _pre_wordwrap(s: Any, width: Any = 79, break_long_words: Any = True, wrapstring: Any = None, *_: Any) -> None:
    if isinstance(s, str) and isinstance(width, int):
        lines = len(s) // max(width, 1) + s.count("\n") + 1
        budget.current().size(len(s) + lines * len(str(wrapstring or "\n")), "the wrapped text")


def _pre_batch(value: Any, linecount: Any, fill_with: Any = None) -> None:
    budget.current().size(linecount if isinstance(linecount, int) else 0, "a batch")


def _pre_tojson(value: Any, indent: Any = None) -> None:
    ev = budget.current()
    if isinstance(indent, int):
        ev.size(indent * 100, "the indentation")
    sized(value, ev)


def _pre_text(value: Any, *_: Any, **__: Any) -> None:
    sized(value, budget.current())


_PRE_CHECKS: dict[str, Callable[..., None]] = {
    "center": _pre_center, "indent": _pre_indent, "replace": _pre_replace,
    "wordwrap": _pre_wordwrap, "batch": _pre_batch, "tojson": _pre_tojson, "string": _pre_text,
    "pprint": _pre_text, "urlencode": _pre_text, "e": _pre_text, "escape": _pre_text, "forceescape": _pre_text,
}


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    """The `format` filter (printf-style) under the same checks as the `%` operator."""
    if args and kwargs:
        raise ExpressionError("the format filter takes positional or keyword arguments, not both")
    result: str = budget.modulo(str(value), kwargs or args)
    return result


def _join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> str:
    """The `join` filter, with what it joins sized first (its items may be a generator)."""
    items = value if isinstance(value, list) else list(value)
    ev = budget.current()
    ev.size(len(str(d)) * len(items), "the separators")
    sized(items, ev)
    return do_join(eval_ctx, items, d, attribute)


_join.jinja_pass_arg = do_join.jinja_pass_arg  # type: ignore[attr-defined] # Jinja passes the eval context first


def _bounded_filter(name: str, f: Callable[..., Any]) -> Callable[..., Any]:
    pre = _PRE_CHECKS.get(name)
    passes = 1 if getattr(f, "jinja_pass_arg", None) is not None else 0  # eval context or environment first

    @functools.wraps(f)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        ev = budget.current()
        ev.tick(budget.cost(*args[passes:passes + 1]))
        if pre is not None:
            pre(*args[passes:], **kwargs)
        return _checked(f(*args, **kwargs), ev)

    return bounded


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002 - Jinja's names
    ev = budget.current()
    ev.size(n * max * 12 if isinstance(n, int) and isinstance(max, int) else 0, "the generated text")
    from jinja2.utils import generate_lorem_ipsum

    return _checked(generate_lorem_ipsum(n, html, min, max), ev)  # type: ignore[no-any-return]


def _bounded_global(f: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(f)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        budget.current().tick()
        return f(*args, **kwargs)

    return bounded


def _finalize(value: Any) -> Any:
    """Every `{{ }}` inside a longer template: sized before Jinja turns it into text."""
    if not isinstance(value, (str, int, float, bool)) and value is not None:
        sized(value, budget.current())
    return value


def _bound_method(env: _Environment) -> Callable[[Any, str], Any]:
    def method(target: Any, name: str) -> Any:
        if isinstance(target, Mapping):
            return _mapping_method(target, name)
        return env.getattr(target, name)  # not a mapping: what `target.name` would give

    return method


def _make_env() -> _Environment:
    env = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, optimized=False,
                       finalize=_finalize)
    env.filters = {name: _bounded_filter(name, f) for name, f in env.filters.items()}
    env.filters["format"] = _bounded_filter("format", _format)
    env.filters["join"] = _bounded_filter("join", _join)
    env.globals.update({name: _bounded_global(f) for name, f in env.globals.items() if callable(f)})
    env.globals.update(null=None, secret=secret_token, __method__=_bound_method(env), lipsum=_lipsum,
                       __loop__=budget.ticking, __concat__=budget.concat)
    env.tests["None"] = lambda value: value is None
    return env


ENV = _make_env()


def compile_template(source: str) -> tuple[frozenset[str], Callable[..., Any] | None, Any]:
    """(the names the template reads, the compiled expression when the template is a single
    `{{ expression }}`, else the compiled template); ExpressionError when it cannot compile."""
    with _compile_errors(source):
        tree = ENV.parse(source)
        names = _names(tree)
        inner = _single_expression(source, tree)
        if inner is not None:
            return names, ENV.compile_expression(inner, undefined_to_none=False), None
        return names, None, ENV.from_string(tree)


@contextlib.contextmanager
def _compile_errors(source: str) -> Iterator[None]:
    """Jinja's errors while parsing or compiling `source` as one ExpressionError naming it."""
    try:
        yield
    except TemplateSyntaxError as exc:  # unknown filters and tests too
        raise ExpressionError(f"template {shown(source)}: syntax error: {exc.message}") from None
    except RecursionError:
        raise ExpressionError(f"template {shown(source)} nests too deeply: split it up") from None
    except ExpressionError:
        raise
    except Exception as exc:
        raise ExpressionError(f"template {shown(source)}: {type(exc).__name__}: {exc}") from None


class _Names(jinja_meta.TrackingCodeGenerator):
    """Jinja's introspection (the names a template reads), without constant folding: Jinja's
    own folds constants as it goes, which would evaluate parts of the template."""

    def __init__(self, environment: Any) -> None:
        CodeGenerator.__init__(self, environment, "<introspection>", "<introspection>", optimized=False)
        self.undeclared_identifiers: set[str] = set()


def _names(tree: nodes.Template) -> frozenset[str]:
    generator = _Names(ENV)
    generator.visit(tree)
    return frozenset(generator.undeclared_identifiers) - {"null", "secret"}


def template_names(source: str) -> frozenset[str]:
    """What validation needs of a template, without compiling it to Python (which costs twice
    as much): the names it reads. ExpressionError when it does not parse, nests too deeply,
    or uses a filter or test that does not exist."""
    with _compile_errors(source):
        return _names(ENV.parse(source))


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
