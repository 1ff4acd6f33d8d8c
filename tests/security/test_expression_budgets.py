"""Budgets of conditions and templates (issue cases 1, 3, 5 and the deep condition of 8): each
attack ends quickly with an ExpressionError naming the budget, and a property over generated
templates and conditions: every evaluation ends within its budget, or fails with
ExpressionError, within a memory cap."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from legion.dsl.budget import Limits, configure, limits
from legion.dsl.errors import ExpressionError
from legion.dsl.expressions import Condition, Template, compile_value
from legion.dsl.validate import load_chain


@pytest.fixture(autouse=True)
def fast_budget() -> Iterator[Limits]:
    """A short time budget, so that the cases that run to it take little time."""
    before = limits()
    configure(Limits(time=0.1))
    yield limits()
    configure(before)


def refused(source: str, match: str, *, condition: bool = False) -> ExpressionError:
    with pytest.raises(ExpressionError, match=match) as caught:
        if condition:
            Condition(source)({"input": {}})
        else:
            Template(source).render({"input": {}})
    return caught.value


def test_nested_loops_stop_at_the_budget() -> None:
    error = refused("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}x",
                    r"budget of 1,000,000 steps|time budget of 100 ms")
    assert "LEGION_EXPRESSION" in error.message


def test_a_loop_that_only_spins_is_stopped_by_the_clock() -> None:
    configure(Limits(time=0.1, steps=10**9))
    refused("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}x",
            r"time budget of 100 ms \(LEGION_EXPRESSION_TIMEOUT\)")


@pytest.mark.parametrize("source", [
    "{{ 'a' * 10**8 }}", "x{{ 'a' * 200000000 }}", "{{ lipsum(100000) }}", "{{ 'a' | center(10**9) }}",
    "{{ '%1000000000s' | format('x') }}", "{{ '%*s' % (10**9, 'x') }}", "{{ '{:>1000000000}'.format('x') }}",
    "{{ 'a'.ljust(10**9) }}", "{{ range(100000) | join(',' * 1000) }}", "{{ 'ab' | indent(10**7) }}",
    "{{ [1, 2] | batch(10**9, 0) | list }}", "{{ ('a' * 100000) | replace('a', 'aaaaaaaaaaaaaaaaaaaa') }}",
    "{% set a = 'x' * 100000 %}{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a ~ a %}{{ a }}",
])
def test_what_would_grow_past_the_size_budget_is_refused_before_it_is_made(source: str) -> None:
    tracemalloc.start()
    try:
        refused(source, r"LEGION_EXPRESSION_MAX_(SIZE|STEPS)")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50_000_000


@pytest.mark.parametrize("source", ["{{ 10**5000 }}", "{{ input.n * input.n * input.n * input.n }}", "{{ 9 ** (9 ** 9) }}"])
def test_integers_are_bounded(source: str) -> None:
    n = 10**1500
    with pytest.raises(ExpressionError, match="digits"):
        Template(source).render({"input": {"n": n}})


@pytest.mark.parametrize("source", ["10**4000000 * 10**4000000 > 0", "9**9**9 > 1", "input.n * input.n > 0",
                                    "len('a' * 10**9) > 0", "len(('a' * 1000).replace('', 'b' * 10000)) > 0"])
def test_conditions_are_bounded(source: str) -> None:
    started = time.monotonic()
    with pytest.raises(ExpressionError, match="digits|size budget"):
        Condition(source)({"input": {"n": 10**3000}})
    assert time.monotonic() - started < 5  # refused before computing, not after seconds of work


def test_a_condition_of_five_thousand_minus_signs_is_a_clear_error() -> None:
    with pytest.raises(ExpressionError, match="nests more than 100 levels deep"):
        Condition("-" * 5000 + "1 > 0")


def test_a_template_nested_too_deeply_is_a_clear_error() -> None:
    with pytest.raises(ExpressionError, match="nests more than 100 levels deep"):
        Template("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}").render({})


def test_shared_parts_cannot_blow_up_when_printed() -> None:
    doubling = "{% set l = [1] %}" + "{% set l = [l, l] %}" * 40
    for tail in ("{{ l }}", "x{{ l }}", "{{ l | tojson }}", "{{ l | string }}"):
        refused(doubling + tail, r"budget")


def test_one_field_shares_one_budget() -> None:
    """A `with` of many templates is one evaluation: their steps add up."""
    configure(Limits(time=10, steps=100_000))
    loop = "{% for i in range(40000) %}{% endfor %}"
    assert compile_value({"a": loop})({}) == {"a": ""}
    with pytest.raises(ExpressionError, match="100,000 steps"):
        compile_value({"a": loop, "b": loop, "c": loop})({})


def test_validation_never_evaluates_a_template() -> None:
    """Constant folding is off: compiling `'a' * 200000000` costs nothing."""
    text = "chain: big\nsteps:\n  a:\n    run: core.util.echo\n    with: {message: \"x{{ 'a' * 200000000 }}\"}\n"
    tracemalloc.start()
    try:
        started = time.monotonic()
        chain, issues = load_chain("big.yaml", text=text)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert chain is not None and not [i for i in issues if i.severity == "error"]
    assert peak < 50_000_000 and elapsed < 10


def test_ordinary_templates_are_untouched() -> None:
    assert Template("{{ input.items | map('upper') | join(',') }}").render({"input": {"items": ["a", "b"]}}) == "A,B"
    assert Template("{% for x in input.items %}{{ loop.index }}{{ x }}{% endfor %}").render({"input": {"items": ["a", "b"]}}) == "1a2b"
    assert Template("{{ 2 ** 10 * 3 + 1 }}").render({}) == 3073
    assert Template("{{ '%05d' % 42 }}-{{ '{:>4}'.format('x') }}-{{ 'ab' ~ 'cd' }}").render({}) == "00042-   x-abcd"
    assert Condition("len([x for x in input.items if x != 'a']) == 1 and 'b' * 3 == 'bbb'")({"input": {"items": ["a", "b"]}})


# ---------------------------------------------------------------- the property

PIECES = st.sampled_from([
    "input.s", "input.n", "input.l", "'ab'", "7", "10", "1000", "100000", "10**6", "99999999", "(input.n * input.n)",
    "range(100000)", "range(1000)", "[input.l, input.l]", "input.l * 1000", "'x' * 100000",
])
OPERATORS = st.sampled_from(["*", "+", "**", "%", "~", "-", "//"])
FILTERS = st.sampled_from(["", "| list", "| join(',')", "| string", "| length", "| center(100000)", "| tojson",
                           "| indent(1000)", "| replace('a', 'aaaaaaaaaa')", "| batch(1000) | list", "| sum", "| sort"])


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 2 or draw(st.booleans()):
        return draw(PIECES)
    left, right = draw(expressions(depth + 1)), draw(expressions(depth + 1))
    return f"({left} {draw(OPERATORS)} {right}) {draw(FILTERS)}".strip()


@st.composite
def templates(draw: st.DrawFn) -> str:
    body = "{{ " + draw(expressions()) + " }}"
    for _ in range(draw(st.integers(0, 3))):
        body = "{% for x in " + draw(st.sampled_from(["range(100000)", "input.l", "range(1000)"])) + " %}" + body + "{% endfor %}"
    return draw(st.sampled_from(["", "x"])) + body


SCOPE = {"input": {"s": "ab" * 1000, "n": 10**1000, "l": list(range(1000))}}
TIME = 0.1
MARGIN = 2.0  # generous: the suite runs in parallel on two cores
MEMORY = 300_000_000


def within_budget(evaluate: object) -> None:
    tracemalloc.start()
    started = time.monotonic()
    try:
        evaluate()  # type: ignore[operator]
    except ExpressionError:
        pass
    finally:
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    # tracemalloc slows Python code down; the budget still holds with the margin.
    assert elapsed < TIME * 3 + MARGIN
    assert peak < MEMORY


# Generating and shrinking only: the explain phase traces every line, which is slower than
# any budget and would be measured with it.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])
@given(templates())
def test_every_template_ends_within_its_budget(source: str) -> None:
    configure(Limits(time=TIME))
    try:
        template = Template(source)
    except ExpressionError:
        return
    within_budget(lambda: template.render(SCOPE))


# Generating and shrinking only: the explain phase traces every line, which is slower than
# any budget and would be measured with it.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])
@given(expressions())
def test_every_condition_ends_within_its_budget(source: str) -> None:
    configure(Limits(time=TIME))
    text = source.replace("~", "+").replace("|", "and")  # conditions have no `~` and no filters
    try:
        condition = Condition(text.replace("and list", "").replace("and join(',')", ""))
    except ExpressionError:
        return
    within_budget(lambda: condition(SCOPE))


def test_a_template_may_pass_on_a_value_larger_than_it_may_make() -> None:
    """Passing a stored value on makes nothing: it is bounded by the storage cap, not the size budget."""
    body = "x" * 2_000_000
    assert Template("{{ result.body }}").render({"result": {"body": body}}) == body
    with pytest.raises(ExpressionError, match="LEGION_EXPRESSION_MAX_SIZE"):
        Template("<{{ result.body }}>").render({"result": {"body": body}})
    with pytest.raises(ExpressionError, match="LEGION_MAX_VALUE_SIZE"):
        Template("{{ [result.body, result.body, result.body] }}").render({"result": {"body": body}})
