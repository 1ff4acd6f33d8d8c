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

from legion.dsl import budget
from legion.dsl.budget import BudgetExceeded, Evaluation, evaluating
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


def json_value(value: Any, ev: Evaluation | None = None) -> Any:
    """The value as plain JSON: tuples and iterators become lists, markup becomes a string.

    Step results and rendered templates both pass through here (spec section 3). Given an
    evaluation, what it makes counts against its size budget (and each item is a step), so
    that a value built of shared parts cannot blow up when it is turned into JSON.
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
    # A template that passes a value on (`{{ result.body }}`) makes nothing: the value may be as
    # large as a stored value. Counting still stops a value built of shared parts.
    counter = _Counter(ev, ev.limits.value, "LEGION_MAX_VALUE_SIZE") if ev is not None else None
    return _json(value, counter)


class _Counter:
    """Adds up the size of a value as it is walked (a step per part), against `limit`."""

    __slots__ = ("ev", "total", "limit", "setting")

    def __init__(self, ev: Evaluation, limit: int, setting: str) -> None:
        self.ev = ev
        self.total = 0
        self.limit = limit
        self.setting = setting  # the variable that sets `limit`, for the message

    def add(self, n: int) -> None:
        self.total += n
        self.ev.tick()
        if self.total > self.limit:
            raise BudgetExceeded(f"the value ({self.total:,}+ characters or items) would be over the size limit of "
                                 f"{self.limit:,} ({self.setting})")


def _json(value: Any, counter: _Counter | None) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        if counter is not None:
            counter.add(1)
        return json_value(value)
    if isinstance(value, str):
        if counter is not None:
            counter.add(len(value) + 1)
        return str(value) if isinstance(value, Markup) else value
    _fail_if_undefined(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotJsonValue(f"mapping key {key!r} is not a string")
            if counter is not None:
                counter.add(len(key) + 1)
            out[key] = _json(item, counter)
        return out
    if isinstance(value, (list, tuple, Iterator)):
        if counter is not None:
            counter.add(1)
        return [_json(item, counter) for item in value]
    raise NotJsonValue(f"{type(value).__name__} is not a JSON value")


def sized(value: Any, ev: Evaluation) -> None:
    """Raise BudgetExceeded when `value` (counting every part as often as it appears: a list
    may hold the same list twice) is larger than the size budget: a check before something
    turns a whole value into text at once (`tojson`, `string`, `{{ }}` inside text)."""
    counter = _Counter(ev, ev.limits.size, "LEGION_EXPRESSION_MAX_SIZE")
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            counter.add(len(item) + 1)
        elif isinstance(item, Mapping):
            counter.add(len(item) + 1)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            counter.add(len(item) + 1)
            stack.extend(item)
        else:
            counter.add(1)


def shown(source: str | bool, limit: int = 120) -> str:
    """An expression's text for a message: its repr, shortened when long."""
    return repr(source) if not isinstance(source, str) or len(source) <= limit else repr(source[:limit]) + f"... ({len(source):,} characters)"


# ---------------------------------------------------------------- conditions


class _Evaluator(simpleeval.EvalWithCompoundTypes):
    """simpleeval with the spec's attribute rules, errors that say which name is missing, and
    the budget's checkpoint at every call (`legion.dsl.budget`). simpleeval itself bounds
    comprehensions to 10,000 elements per evaluation; the operators size what they make."""

    def _check_disallowed_items(self, item: Any) -> None:
        # simpleeval walks every container a node gives, in Python: a million-item list costs
        # that walk at every node it passes through. Each element was checked when its own
        # node was evaluated, and the names hold only JSON data, so containers are skipped.
        if not isinstance(item, (list, tuple, dict, set, frozenset)):
            super()._check_disallowed_items(item)

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
        # key of that name: `ctx.get('k', d)` always works (spec section 3). A string's
        # method is sized before it runs (`'a'.replace('', 'b' * 10000)` would grow).
        func = node.func
        if not (isinstance(func, ast.Attribute) and (func.attr in MAPPING_METHODS or func.attr in STRING_METHODS)):
            return super()._eval_call(node)
        target = self._eval(func.value)
        if isinstance(target, Mapping) and func.attr not in MAPPING_METHODS:
            return super()._eval_call(node)  # `m.split(...)` calls the key `split`, as `m.split` reads it
        args = [self._eval(a) for a in node.args]
        kwargs = {k.arg: self._eval(k.value) for k in node.keywords if k.arg is not None}
        if isinstance(target, Mapping):
            return _mapping_method(target, func.attr)(*args, **kwargs)
        if isinstance(target, str) and func.attr in STRING_METHODS:
            budget.current().tick(budget.cost(target))
            if func.attr in budget.PADDING_METHODS:
                budget.check_string_call(target, func.attr, tuple(args), kwargs)
            return getattr(target, func.attr)(*args, **kwargs)
        raise ExpressionError(f"{type(target).__name__} has no method {func.attr!r}")

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


# simpleeval's operators, with those that can make a huge number or text in one step sized
# before they do (`10**4000000 * 10**4000000` is refused, not computed for seconds).
_OPERATORS = dict(simpleeval.DEFAULT_OPERATORS)
_OPERATORS.update({ast.Mult: budget.mul, ast.Add: budget.add, ast.Pow: budget.power, ast.LShift: budget.shift,
                   ast.Mod: budget.modulo})


def _charged(function: Callable[..., Any]) -> Callable[..., Any]:
    """A condition's function that passes the budget's checkpoint, charged for what it walks."""
    def charged(*args: Any, **kwargs: Any) -> Any:
        budget.current().tick(budget.cost(*args))
        return function(*args, **kwargs)

    charged.__name__ = function.__name__
    return charged


def _str(value: Any = "") -> str:
    sized(value, budget.current())
    return str(value)


def _evaluator() -> _Evaluator:
    ev = getattr(_local, "evaluator", None)
    if ev is None:
        ev = _Evaluator(functions={name: _charged(f) for name, f in dict(FUNCTIONS, str=_str).items()}, names={},
                        operators=_OPERATORS)
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


# How deeply an expression may nest: far beyond what anyone writes, and well inside what
# Python's parser and the evaluators' recursion can take.
MAX_NESTING = 100


class Condition:
    """A compiled `when`: Python expression syntax, evaluated by simpleeval."""

    __slots__ = ("source", "constant", "tree", "names", "calls")

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
                f"condition {shown(source)} is written in braces: drop the braces, "
                f"a condition is a bare expression such as `succeeded and result.ok`"
            )
        try:
            self.tree = ast.parse(text, mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"condition {shown(source)}: syntax error: {exc.msg}") from None
        except (RecursionError, MemoryError):
            raise _too_deep("condition", source) from None
        if _depth(self.tree.body) > MAX_NESTING:
            raise _too_deep("condition", source)
        for node in ast.walk(self.tree.body):
            if isinstance(node, ast.expr) and not isinstance(node, _ALLOWED_NODES):
                raise ExpressionError(
                    f"condition {shown(source)}: {type(node).__name__} is not allowed in a condition"
                )
            if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                raise ExpressionError(f"condition {shown(source)}: access to {node.attr!r} is not allowed")
        self.names = frozenset(_free_names(self.tree))
        # Only a condition that calls or loops needs an evaluation of its own (to add up
        # its steps); the others are bounded by their size.
        self.calls = any(isinstance(n, (ast.Call, ast.comprehension)) for n in ast.walk(self.tree))
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
            if self.calls:
                with evaluating():
                    return bool(ev.eval(self.source, previously_parsed=self.tree.body))
            return bool(ev.eval(self.source, previously_parsed=self.tree.body))
        except ExpressionError as exc:
            raise ExpressionError(f"condition {shown(self.source)}: {exc.message}") from None
        except RecursionError:
            raise _too_deep("condition", self.source) from None
        except Exception as exc:  # simpleeval and Python errors alike: one kind for the user
            raise ExpressionError(f"condition {shown(self.source)}: {type(exc).__name__}: {exc}") from None


def _depth(tree: ast.AST) -> int:
    """How deeply `tree` nests (without recursion: the tree may be very deep)."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_NESTING:
            break
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _too_deep(what: str, source: str | bool) -> ExpressionError:
    return ExpressionError(f"{what} {shown(source)} nests more than {MAX_NESTING} levels deep: split it up")


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
            ev = budget.active()
            if ev is None:  # on its own, not as part of a field (`compile_value`)
                with evaluating() as ev:
                    return self._render(scope, ev)
            return self._render(scope, ev)
        except NotJsonValue as exc:
            raise ExpressionError(f"template {shown(self.source)}: {exc}") from None
        except ExpressionError as exc:
            if exc.message.startswith("template "):
                raise
            raise ExpressionError(f"template {shown(self.source)}: {exc.message}") from None
        except RecursionError:
            raise _too_deep("template", self.source) from None
        except Exception as exc:
            raise ExpressionError(f"template {shown(self.source)}: {type(exc).__name__}: {exc}") from None

    def _render(self, scope: Mapping[str, Any], ev: Evaluation) -> Any:
        if self._expression is not None:
            return json_value(self._expression(**scope), ev)
        # Piece by piece, so that the text's size is checked as it grows.
        template = self._template
        parts = []
        total = 0
        limit = ev.limits.size
        for part in template.root_render_func(template.new_context(dict(scope))):
            total += len(part)
            if total > limit:
                ev.size(total, "the rendered text")
            parts.append(part)
        return "".join(parts)


# ---------------------------------------------------------------- secrets (spec section 7)


def secret_token(reference: object) -> str:
    """The token `secret(reference)` renders to: `«secret:path#key|mac»` (see `legion.dsl.tokens`)."""
    _fail_if_undefined(reference)  # `secret(input.missing)`: say which name is missing
    # Bound to the step run whose `with` is being rendered (none elsewhere): only that step
    # run's call resolves it.
    return make_token(reference, budget.current().binding)


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

    Parts without templates are returned as they are, so a static `with` costs nothing. The
    templates of one tree share one evaluation's budget.
    """
    if not _has_template(value):
        return _constant(value)
    render = _compile(value)

    def field(scope: Mapping[str, Any]) -> Any:
        with evaluating():
            return render(scope)

    return field


def _compile(value: Any) -> Renderer:
    if not _has_template(value):
        return _constant(value)
    if isinstance(value, str):
        return Template(value).render
    if isinstance(value, Mapping):
        parts = {k: _compile(v) for k, v in value.items()}
        return lambda scope: {k: render(scope) for k, render in parts.items()}
    items = [_compile(v) for v in value]
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


def has_templates(value: Any) -> bool:
    """Whether any string in the tree is a template (a tree without any renders to itself)."""
    return _has_template(value)


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
