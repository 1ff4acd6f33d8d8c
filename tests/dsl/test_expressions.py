"""Conditions (simpleeval) and templates (sandboxed Jinja2): spec section 3."""

from __future__ import annotations

from typing import Any

import pytest

from legion.dsl.errors import ExpressionError
from legion.dsl.expressions import Condition, Template, compile_value, secret_token, template_sources

SCOPE: dict[str, Any] = {
    "input": {"order_id": 7, "name": "Ada"},
    "ctx": {"items": [1, 2, 3], "order": {"lines": [{"sku": "a"}, {"sku": "b"}]}, "none": None, "flag": False},
    "result": {"status": 200, "json": {"ok": True}, "text": "Hello World"},
    "status": "succeeded",
    "succeeded": True,
    "failed": False,
    "error": None,
    "attempt": 1,
    "run": {"id": "r1", "chain": "c", "version": 3, "started_at": "2000-01-01T00:00:00Z"},
}


def cond(source: str | bool, scope: dict[str, Any] | None = None) -> bool:
    return Condition(source)(SCOPE if scope is None else scope)


def render(source: str, scope: dict[str, Any] | None = None) -> Any:
    return Template(source).render(SCOPE if scope is None else scope)


# ================================================================ conditions


@pytest.mark.parametrize(("source", "expected"), [
    ("succeeded", True),
    ("failed", False),
    ("succeeded and result.status == 200", True),
    ("status == 'succeeded'", True),
    ("result.status in [200, 201] and not failed", True),
    ("result.status not in (500, 503)", True),
    ("attempt < 3 or failed", True),
    ("result.json.ok is True", True),
    ("error is None", True),
    ("error is not None", False),
    ("error == null", True),
    ("ctx.flag == false and ctx.none is None", True),
    ("true", True),
    ("len(ctx.items) == 3", True),
    ("sum(ctx.items) + max(ctx.items) == 9", True),
    ("min(ctx.items) == 1 and abs(-2) == 2 and round(2.6) == 3", True),
    ("any(x > 2 for x in ctx.items) and all(x > 0 for x in ctx.items)", True),
    ("sorted([3, 1, 2]) == [1, 2, 3]", True),
    ("int('4') + float('0.5') == 4.5 and str(5) == '5' and bool(1)", True),
    ("[x * 2 for x in ctx.items] == [2, 4, 6]", True),
    ("{'a': 1}['a'] == 1", True),
    ("[l.sku for l in ctx.order.lines] == ['a', 'b']", True),
    ("result.text.startswith('Hello') and result.text.endswith('World')", True),
    ("result.text.lower() == 'hello world' and result.text.upper() == 'HELLO WORLD'", True),
    ("'  x '.strip() == 'x' and 'a,b'.split(',') == ['a', 'b'] and 'aa'.replace('a', 'b') == 'bb'", True),
    ("run.version == 3 and run.chain == 'c'", True),
    ("input['order_id'] == 7", True),
    ("ctx.items[-1] == 3", True),
    ("2 ** 10 == 1024", True),
    ("0", False),
    ("''", False),
    ("[]", False),
    ("ctx.items", True),
])
def test_condition_values(source: str, expected: bool) -> None:
    assert cond(source) is expected


def test_boolean_conditions_are_constants() -> None:
    assert Condition(True)({}) is True
    assert Condition(False)({}) is False
    assert Condition(True).names == frozenset()


def test_condition_names_are_the_free_names() -> None:
    names = Condition("succeeded and result.ok and [x for x in ctx.items if x] and len(input) > 0 and null is None").names
    assert names == {"succeeded", "result", "ctx", "input"}


# ---------------------------------------------------------------- mappings


def test_mapping_key_comes_before_the_method() -> None:
    assert cond("ctx.items == [1, 2, 3]")
    assert cond("len(input.items()) == 2")  # no key `items` in input: the method
    assert cond("sorted(input.keys()) == ['name', 'order_id']")
    assert cond("list_ == [1]", {"list_": [1]})  # trailing underscore is fine


def test_get_with_a_default_works_for_a_missing_key() -> None:
    assert cond("ctx.get('missing', 5) == 5")
    assert cond("ctx.get('missing') is None")
    assert cond("ctx.get('items') == [1, 2, 3]")


def test_get_works_even_when_the_mapping_has_a_key_named_get() -> None:
    """Spec section 3: `ctx.get('k', d)` always works; `ctx.get` alone is still the key."""
    assert cond("ctx.get('k', 5) == 5", {"ctx": {"get": 1}})
    assert cond("ctx.get == 1", {"ctx": {"get": 1}})


def test_missing_key_in_a_condition_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError) as info:
        cond("ctx.missing == 1")
    assert "no key 'missing'" in info.value.message
    assert "ctx.missing == 1" in info.value.message  # the message names the condition
    assert "items" in info.value.message  # and the keys that exist


def test_missing_key_by_subscript_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError, match="no key 'missing'"):
        cond("ctx['missing']")


@pytest.mark.parametrize("source", [
    "error.message == 'x'",  # attribute of null
    "ctx.items[10] == 1",
    "result.status + 'x'",
    "nosuchname",
    "range(3)",
    "open('/etc/passwd')",
    "__import__('os')",
    "'abc'.format()",
    "str.join",
    "ctx.items.append(4)",
    "input.order_id.bit_length()",
])
def test_evaluation_errors_are_expression_errors(source: str) -> None:
    with pytest.raises(ExpressionError) as info:
        cond(source)
    assert source in info.value.message


# ---------------------------------------------------------------- compile-time rejections


@pytest.mark.parametrize(("source", "fragment"), [
    ("{{ succeeded }}", "drop the braces"),
    ("  {{ result.ok and succeeded }}  ", "drop the braces"),
    ("succeeded and", "syntax error"),
    ("import os", "syntax error"),
    ("x = 1", "syntax error"),
    ("result.__class__", "'__class__' is not allowed"),
    ("ctx._private", "'_private' is not allowed"),
    ("(lambda: 1)()", "Lambda is not allowed"),
    ("(y := 1)", "not allowed"),
])
def test_conditions_rejected_when_compiled(source: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        Condition(source)
    assert fragment in info.value.message


def test_dunder_inside_a_comprehension_is_rejected() -> None:
    with pytest.raises(ExpressionError, match="not allowed"):
        cond("[x.__class__ for x in ctx.items]")


# ---------------------------------------------------------------- bounds


def test_power_is_bounded() -> None:
    with pytest.raises(ExpressionError, match="too large"):
        cond("10 ** 10000000 > 0")
    with pytest.raises(ExpressionError, match="too large"):
        cond("9 ** 9 ** 9 > 0")


def test_string_size_is_bounded() -> None:
    with pytest.raises(ExpressionError, match="over the size budget of 1,000,000"):
        cond("len('a' * 10000000) > 0")


def test_comprehension_size_is_bounded() -> None:
    big = {"ctx": {"items": list(range(2000))}}
    with pytest.raises(ExpressionError):
        cond("len([a * b for a in ctx.items for b in ctx.items]) > 0", big)


# ================================================================ templates


@pytest.mark.parametrize(("source", "expected"), [
    ("{{ ctx.items }}", [1, 2, 3]),
    ("{{ ctx.order }}", {"lines": [{"sku": "a"}, {"sku": "b"}]}),
    ("{{ input.order_id }}", 7),
    ("{{ 1.5 }}", 1.5),
    ("{{ result.json.ok }}", True),
    ("{{ false }}", False),
    ("{{ null }}", None),
    ("{{ none }}", None),
    ("{{ ctx.none }}", None),
    ("{{ '42' }}", "42"),
    ("{{ input.order_id | string }}", "7"),
    ("{{ [1, 'a', none] }}", [1, "a", None]),
    ("{{ {'a': [1, 2]} }}", {"a": [1, 2]}),
    ("{{ (1, 2) }}", [1, 2]),
    ("{{ ctx.items | map('string') }}", ["1", "2", "3"]),
    ("{{ ctx.order.lines | map(attribute='sku') }}", ["a", "b"]),
    ("{{ ctx.items | select('odd') }}", [1, 3]),
    ("{{ ctx.items | length }}", 3),
    ("{{ input.keys() | list | sort }}", ["name", "order_id"]),
])
def test_single_expression_renders_the_native_value(source: str, expected: Any) -> None:
    value = render(source)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("source", [
    "{{ctx.items}}",
    "{{   ctx.items   }}",
    "{{- ctx.items -}}",
    "{{- ctx.items }}",
    "{{ ctx.items -}}",
])
def test_inner_spacing_and_whitespace_control_do_not_matter(source: str) -> None:
    assert render(source) == [1, 2, 3]


def test_one_trailing_newline_is_ignored() -> None:
    assert render("{{ ctx.items }}\n") == [1, 2, 3]


def test_two_trailing_newlines_make_a_string() -> None:
    assert render("{{ input.order_id }}\n\n") == "7\n\n"


@pytest.mark.parametrize(("source", "expected"), [
    ("order {{ input.order_id }}", "order 7"),
    ("{{ input.order_id }} ", "7 "),
    (" {{ input.order_id }}", " 7"),
    ("{{ input.order_id }}{{ input.order_id }}", "77"),
    ("{{ 1 }}-{{ 2 }}", "1-2"),
    ("{% if succeeded %}yes{% else %}no{% endif %}", "yes"),
    ("{% for i in ctx.items %}{{ i }}{% endfor %}", "123"),
    ("no template at all", "no template at all"),
    ("{# just a comment #}", ""),
])
def test_any_other_string_renders_to_a_string(source: str, expected: str) -> None:
    assert render(source) == expected


def test_is_none_and_is_not_none() -> None:
    assert render("{{ ctx.none is None }}") is True
    assert render("{{ ctx.none is not None }}") is False
    assert render("{{ input.name is None }}") is False
    assert render("{{ error is none }}") is True


# ---------------------------------------------------------------- mappings and undefined


def test_template_mapping_key_before_method() -> None:
    assert render("{{ ctx.items }}") == [1, 2, 3]
    assert render("{{ input.items() | list | length }}") == 2
    assert render("{{ ctx.get('missing', 'd') }}") == "d"
    assert render("{{ ctx.get('missing') }}") is None


def test_template_get_works_even_when_the_mapping_has_a_key_named_get() -> None:
    assert render("{{ ctx.get('k', 5) }}", {"ctx": {"get": 1}}) == 5
    assert render("{{ ctx.get }}", {"ctx": {"get": 1}}) == 1
    assert render("{{ ctx.items() | list }}", {"ctx": {"items": 1}}) == [["items", 1]]


@pytest.mark.parametrize(("source", "expected"), [
    ("{{ ctx.missing | default(3) }}", 3),
    ("{{ ctx.missing | default('x') }}", "x"),
    ("{{ ctx.missing is defined }}", False),
    ("{{ ctx.items is defined }}", True),
    ("{{ ctx.missing is undefined }}", True),
    ("{{ ctx.get('missing', 'g') }}", "g"),
    ("value: {{ ctx.missing | default('none') }}", "value: none"),
    ("{% if ctx.missing is defined %}a{% else %}b{% endif %}", "b"),
])
def test_undefined_is_handled_by_default_defined_and_get(source: str, expected: Any) -> None:
    assert render(source) == expected


@pytest.mark.parametrize("source", [
    "{{ ctx.missing }}",
    "text {{ ctx.missing }}",
    "{{ ctx.missing + 1 }}",
    "{{ ctx.missing.deeper }}",
    "{{ ctx.missing | upper }}",
    "{% if ctx.missing %}a{% endif %}",
    "{{ [ctx.missing] }}",
    "{{ {'k': ctx.missing} }}",
    "{{ nosuchname }}",
])
def test_any_other_use_of_undefined_is_an_expression_error(source: str) -> None:
    with pytest.raises(ExpressionError) as info:
        render(source)
    assert source in info.value.message


# ---------------------------------------------------------------- the sandbox


@pytest.mark.parametrize("source", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__ }}",
    "x {{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ctx.__class__ }}",
    "{{ ctx.items.__self__ }}",
    "{{ input.keys.__globals__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ ctx.items.append(4) }}",
    "{{ ctx.pop('items') }}",
    "{{ ctx.update({'a': 1}) }}",
])
def test_sandbox_blocks_attribute_tricks_and_mutation(source: str) -> None:
    scope = {"ctx": {"items": [1, 2, 3]}, "input": {}}
    with pytest.raises(ExpressionError):
        render(source, scope)
    assert scope == {"ctx": {"items": [1, 2, 3]}, "input": {}}


@pytest.mark.parametrize("source", [
    "{{ input.keys }}",  # a bound method is not a JSON value
    "{{ {1: 2} }}",  # nor a mapping with a non-string key
    "{{ lipsum }}",  # nor a function
])
def test_values_that_are_not_json_are_expression_errors(source: str) -> None:
    with pytest.raises(ExpressionError, match="not a JSON value|is not a string"):
        render(source, {"input": {"a": 1}})


def test_template_syntax_error_is_an_expression_error_at_compile_time() -> None:
    with pytest.raises(ExpressionError) as info:
        Template("{{ input.a ")
    assert "syntax error" in info.value.message and "{{ input.a " in info.value.message
    with pytest.raises(ExpressionError, match="syntax error"):
        Template("{% if x %}no end")


def test_unknown_filter_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError, match="nofilter"):
        Template("{{ input | nofilter }}")


def test_template_names() -> None:
    template = Template("{{ ctx.a }} {{ input.b | default(null) }} {% for x in result %}{{ x }}{{ secret('p#k') }}{% endfor %}")
    assert template.names == {"ctx", "input", "result"}


def test_secret_renders_to_a_reference_not_a_value() -> None:
    # The worker resolves it just before the call (spec section 7); tests/secrets has the rest.
    assert render("{{ secret('db#password') }}", {}) == f"{secret_token('db#password')}"
    with pytest.raises(ExpressionError, match="path#key"):
        render("{{ secret('db') }}", {})


# ================================================================ value trees


def test_compile_value_renders_every_string_at_any_depth() -> None:
    renderer = compile_value({"a": ["{{ input.order_id }}", 2, "plain", {"b": "n={{ input.name }}"}], "c": None, "d": True})
    assert renderer(SCOPE) == {"a": [7, 2, "plain", {"b": "n=Ada"}], "c": None, "d": True}


def test_compile_value_of_static_values_returns_fresh_copies() -> None:
    renderer = compile_value({"a": 1, "b": [1]})
    first = renderer({})
    first["a"] = 99
    assert renderer({}) == {"a": 1, "b": [1]}
    listed = compile_value([1, 2])
    out = listed({})
    out.append(3)
    assert listed({}) == [1, 2]


def test_compile_value_scalars() -> None:
    assert compile_value("plain")({}) == "plain"
    assert compile_value(5)({}) == 5
    assert compile_value(None)({}) is None
    assert compile_value("{{ input.name }}")(SCOPE) == "Ada"


def test_compile_value_reports_syntax_errors_when_compiled() -> None:
    with pytest.raises(ExpressionError):
        compile_value({"a": ["{{ oops "]})


def test_template_sources_lists_every_template_with_its_path() -> None:
    value = {"a": "{{ x }}", "b": [1, "plain", {"c": "{% if y %}{% endif %}"}], "d": "{# c #}"}
    assert list(template_sources(value, ("with",))) == [
        (("with", "a"), "{{ x }}"),
        (("with", "b", 2, "c"), "{% if y %}{% endif %}"),
        (("with", "d"), "{# c #}"),
    ]
