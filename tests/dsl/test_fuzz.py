"""Fuzzing the loader, the validator and the expression compilers.

The property: whatever the text, `load_text` + `validate_chain_document` either succeed or raise a
Legion error (a subclass of `LegionError`), and once the text parsed as YAML every issue points
at a place in the file (line and column >= 1).

A crash that is a known, not yet fixed bug may be listed in KNOWN_ESCAPES with its reproducer,
so that the property keeps hunting for other ones; the list is empty today.
"""

from __future__ import annotations

import io
import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

import legion.dsl
from legion.dsl.catalog import FunctionSpec, Param
from legion.dsl.errors import ExpressionError, LegionError, ValidationFailed
from legion.dsl.expressions import Condition, Template
from legion.dsl.loader import load_text
from legion.dsl.validate import validate_chain_document, validate_rehearsal_document

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DSL_DIR = Path(legion.dsl.__file__).resolve().parent
CONFORMANCE = Path(os.environ["LEGION_CONFORMANCE"])
SAMPLES = [p.read_text(encoding="utf-8") for p in sorted((CONFORMANCE / "chains").glob("*.yaml"))] + [
    p.read_text(encoding="utf-8") for p in sorted((CONFORMANCE / "rehearsals").glob("*.yaml"))
]

CATALOG = {
    "core.util.echo": FunctionSpec("core.util.echo", (Param("message", {"type": "string"}, required=True),)),
    "core.util.noop": FunctionSpec("core.util.noop"),
    "core.util.set": FunctionSpec("core.util.set", extra_args=True),
    "core.util.sleep": FunctionSpec("core.util.sleep", (Param("seconds", {"type": "number"}, required=True),)),
}


# ---------------------------------------------------------------- known escapes


@dataclass(frozen=True)
class KnownEscape:
    file: str  # the innermost legion.dsl frame of the traceback: file, function, a piece of its line
    function: str
    line: tuple[str, ...]
    exc_type: type[BaseException]
    reproducer: str
    bug: str

    def matches(self, exc: BaseException) -> bool:
        frame = _innermost_dsl_frame(exc)
        return (
            isinstance(exc, self.exc_type)
            and frame is not None
            and frame[:2] == (self.file, self.function)
            and any(piece in frame[2] for piece in self.line)
        )


def _innermost_dsl_frame(exc: BaseException) -> tuple[str, str, str] | None:
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename).resolve()
        if path.parent == DSL_DIR:
            found = (path.name, frame.name, frame.line or "")
    return found


KNOWN_ESCAPES: list[KnownEscape] = []  # every escape found so far is fixed; add a reproducer here when one appears


def _known(exc: BaseException) -> bool:
    return any(k.matches(exc) for k in KNOWN_ESCAPES)


# ---------------------------------------------------------------- the property


def check_chain_text(text: str, *, tolerate_known: bool = True) -> None:
    try:
        doc = load_text(text, "fuzz.yaml")
    except ValidationFailed as exc:
        assert exc.issues and all(i.file == "fuzz.yaml" and i.severity == "error" for i in exc.issues)
        return
    except Exception as exc:
        if tolerate_known and _known(exc):
            return
        raise AssertionError(f"{type(exc).__name__} escaped load_text: {exc}") from exc
    try:
        model, issues = validate_chain_document(doc, functions=CATALOG, chains=["other"])
    except LegionError:
        return
    except Exception as exc:
        if tolerate_known and _known(exc):
            return
        raise AssertionError(f"{type(exc).__name__} escaped validate_chain_document: {exc}") from exc
    for issue in issues:
        assert issue.line >= 1 and issue.col >= 1, f"issue without a place: {issue}"
        assert issue.file == "fuzz.yaml"
        assert issue.severity in ("error", "warning")
        assert issue.message
    assert [(i.line, i.col) for i in issues] == sorted((i.line, i.col) for i in issues)
    has_errors = any(i.severity == "error" for i in issues)
    assert (model is None) == has_errors


def check_rehearsal_text(text: str) -> None:
    try:
        doc = load_text(text, "fuzz.yaml")
    except ValidationFailed:
        return
    except Exception as exc:
        if _known(exc):
            return
        raise AssertionError(f"{type(exc).__name__} escaped load_text: {exc}") from exc
    model, issues = validate_rehearsal_document(doc)
    assert all(i.line >= 1 and i.col >= 1 for i in issues)
    assert (model is None) == bool(issues)


def test_the_property_catches_an_escape(monkeypatch: pytest.MonkeyPatch) -> None:
    import legion.dsl.validate as validate_mod

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("boom")

    monkeypatch.setattr(validate_mod._Checker, "run", broken)
    with pytest.raises(AssertionError, match="KeyError escaped"):
        check_chain_text("chain: a\nsteps: {s: {run: core.util.noop}}\n")


# ---------------------------------------------------------------- strategies

TOP_KEYS = ["chain", "description", "input", "vars", "on", "start", "steps", "output", "max_steps"]
STEP_KEYS = ["run", "with", "next", "join", "for_each", "concurrency", "retry", "timeout", "delay", "priority"]
EDGE_KEYS = ["when", "publish", "do"]
RETRY_KEYS = ["count", "delay", "backoff", "max_delay", "jitter", "when"]
SCHEDULE_KEYS = ["cron", "every", "tz", "input"]
ALL_KEYS = TOP_KEYS + STEP_KEYS + EDGE_KEYS + RETRY_KEYS + SCHEDULE_KEYS + ["schedule", "events", "fail", "item"]
NAMES = ["input", "ctx", "result", "status", "succeeded", "failed", "error", "attempt", "run", "item", "index", "bogus"]
STEP_NAMES = ["a", "b", "c", "fail", "start", "A_1", "x-y", "1st", ""]

keys = st.one_of(st.sampled_from(ALL_KEYS), st.sampled_from(STEP_NAMES), st.text(max_size=8))

atoms = st.one_of(
    st.sampled_from(NAMES),
    st.integers(min_value=0, max_value=9).map(str),
    st.sampled_from(["None", "null", "true", "False", "'s'", "\"t\"", "[]", "{}"]),
)


@st.composite
def expressions(draw: Any, depth: int = 3, power: bool = True) -> str:
    """Python-ish expressions over the spec's names (not always valid)."""
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        return draw(atoms)
    inner = expressions(depth - 1, power)
    kind = draw(st.integers(0, 9))
    a = draw(inner)
    if kind == 0:
        return f"{a}.{draw(st.sampled_from(['items', 'keys()', 'get(' + repr('k') + ', 1)', 'status', 'upper()', 'lines', '__class__', 'x']))}"
    if kind == 1:
        ops = ["and", "or", "==", "!=", "<", "in", "not in", "is", "is not", "+", "-", "*", "%", "//"] + (["**"] if power else [])
        return f"{a} {draw(st.sampled_from(ops))} {draw(inner)}"
    if kind == 2:
        return f"{draw(st.sampled_from(['len', 'min', 'max', 'sorted', 'str', 'int', 'bool', 'range', 'open']))}({a})"
    if kind == 3:
        return f"{a}[{draw(inner)}]"
    if kind == 4:
        return f"[{a}, {draw(inner)}]"
    if kind == 5:
        return f"not {a}"
    if kind == 6:
        return f"[x for x in {a} if x]"
    if kind == 7:
        return f"({a})"
    if kind == 8:
        return f"{{'k': {a}}}"
    return f"{a} if {draw(inner)} else {draw(inner)}"


@st.composite
def templates(draw: Any) -> str:
    expr = draw(expressions(power=False))
    filters = draw(st.lists(st.sampled_from(["default(1)", "length", "string", "list", "first", "upper", "int", "tojson"]), max_size=2))
    body = " | ".join([expr, *filters])
    shape = draw(st.integers(0, 4))
    if shape == 0:
        return "{{ " + body + " }}"
    if shape == 1:
        return "{{- " + body + " -}}\n"
    if shape == 2:
        return "text {{ " + body + " }} more"
    if shape == 3:
        return "{% if " + expr + " %}y{% else %}{{ " + body + " }}{% endif %}"
    return "{{ " + body


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 20), st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=12), st.sampled_from(["30s", "250ms", "5m", "all", "core.util.echo", "core.util.nope", "chain:other", "*/5 * * * *"]),
    expressions(), templates(),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
    max_leaves=12,
)


def _maybe(key: str, strategy: Any) -> Any:
    return st.one_of(st.just({}), strategy.map(lambda v: {key: v}))


@st.composite
def edges(draw: Any) -> dict[str, Any]:
    edge: dict[str, Any] = {}
    for part in (
        _maybe("when", st.one_of(expressions(), st.booleans(), templates(), values)),
        _maybe("publish", st.one_of(st.dictionaries(keys, st.one_of(templates(), values), max_size=3), values)),
        _maybe("do", st.one_of(st.sampled_from(STEP_NAMES), st.lists(st.sampled_from(STEP_NAMES), max_size=3), values)),
        _maybe(draw(keys), values),
    ):
        edge.update(draw(part))
    return edge


@st.composite
def steps(draw: Any) -> dict[str, Any]:
    step: dict[str, Any] = {}
    for part in (
        _maybe("run", st.one_of(st.sampled_from(["core.util.echo", "core.util.noop", "core.util.sleep", "core.util.set", "core.util.nope", "chain:other", "chain:nope", "x"]), values)),
        _maybe("with", st.one_of(st.dictionaries(st.sampled_from(["message", "seconds", "other", "x"]), st.one_of(templates(), values), max_size=3), values)),
        _maybe("next", st.one_of(st.lists(edges(), max_size=3), values)),
        _maybe("join", st.one_of(st.sampled_from(["all", 1, 2, 3, 0, True]), values)),
        _maybe("for_each", st.one_of(templates(), st.lists(values, max_size=3), values)),
        _maybe("concurrency", st.one_of(st.integers(0, 4), values)),
        _maybe("retry", st.one_of(st.dictionaries(st.sampled_from(RETRY_KEYS + ["x"]), st.one_of(expressions(), values), max_size=4), values)),
        _maybe("timeout", st.one_of(st.sampled_from(["30s", "1d", -1, 0, "x"]), values)),
        _maybe(draw(keys), values),
    ):
        step.update(draw(part))
    return step


@st.composite
def chains(draw: Any) -> dict[Any, Any]:
    chain: dict[Any, Any] = {}
    triggers = st.one_of(
        st.fixed_dictionaries({}, optional={
            "schedule": st.one_of(st.lists(st.dictionaries(st.sampled_from(SCHEDULE_KEYS + ["x"]), values, max_size=3), max_size=2), values),
            "events": st.one_of(st.lists(st.sampled_from(["core.util.echo", "x.y.z", "bad"]), max_size=2), values),
        }),
        values,
    )
    for part in (
        _maybe("chain", st.one_of(st.sampled_from(["ok", "order-pipeline", "Bad Name"]), values)),
        _maybe("description", values),
        _maybe("input", st.one_of(st.just({"type": "object"}), st.just({"type": "nope"}), values)),
        _maybe("vars", st.one_of(st.dictionaries(keys, st.one_of(templates(), values), max_size=3), values)),
        _maybe("on", triggers),
        _maybe("start", st.one_of(st.sampled_from(STEP_NAMES), st.lists(st.sampled_from(STEP_NAMES), max_size=2), values)),
        _maybe("steps", st.one_of(st.dictionaries(st.sampled_from(STEP_NAMES), steps(), max_size=4), values)),
        _maybe("output", values),
        _maybe("max_steps", values),
        _maybe(draw(keys), values),
    ):
        chain.update(draw(part))
    return chain


GOOD_CONDITIONS = ["succeeded", "failed", "result.status == 200", "ctx.get('k') is None", "attempt < 3", True, False]
GOOD_TEMPLATES = ["{{ result }}", "{{ input.a }}", "n={{ ctx.get('k', 0) }}", "{{ ctx.items | length }}", "plain"]


@st.composite
def near_valid_chains(draw: Any) -> dict[str, Any]:
    """A valid chain over steps a, b, c, then zero to two random changes anywhere in it."""
    names = ["a", "b", "c"][: draw(st.integers(1, 3))]
    chain_steps: dict[str, Any] = {}
    for i, name in enumerate(names):
        step: dict[str, Any] = {"run": draw(st.sampled_from(["core.util.noop", "core.util.set", "core.util.echo"]))}
        if step["run"] == "core.util.echo":
            step["with"] = {"message": draw(st.sampled_from(GOOD_TEMPLATES))}
        later = names[i + 1:]
        if later:
            step["next"] = [
                {"when": draw(st.sampled_from(GOOD_CONDITIONS)), "do": draw(st.lists(st.sampled_from(later), min_size=1, max_size=2, unique=True))}
                for _ in range(draw(st.integers(0, 2)))
            ]
        if draw(st.booleans()):
            step["for_each"] = draw(st.sampled_from(["{{ input.items }}", [1, 2]]))
            step["concurrency"] = draw(st.integers(1, 3))
        if draw(st.booleans()):
            step["retry"] = {"count": draw(st.integers(0, 3)), "delay": draw(st.sampled_from(["1s", 2, "250ms"]))}
        chain_steps[name] = step
    chain: dict[str, Any] = {"chain": "fuzz", "steps": chain_steps}
    if draw(st.booleans()):
        chain["on"] = {"schedule": [{"cron": "*/5 * * * *"}, {"every": "30s"}], "events": ["core.util.echo"]}
    if draw(st.booleans()):
        chain["output"] = {"r": draw(st.sampled_from(GOOD_TEMPLATES))}
    for _ in range(draw(st.integers(0, 2))):
        _change(draw, chain)
    return chain


def _change(draw: Any, node: Any) -> None:
    """Replace, add or delete one entry somewhere in the tree."""
    while True:
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node)) if isinstance(node, list) else []
        containers = [(k, v) for k, v in children if isinstance(v, (dict, list)) and v]
        if containers and draw(st.booleans()):
            node = draw(st.sampled_from(containers))[1]
            continue
        break
    kind = draw(st.integers(0, 2))
    if isinstance(node, dict):
        if kind == 0 and node:
            del node[draw(st.sampled_from(sorted(node, key=str)))]
        elif kind == 1 and node:
            node[draw(st.sampled_from(sorted(node, key=str)))] = draw(values)
        else:
            node[draw(keys)] = draw(values)
    elif isinstance(node, list):
        if kind == 0 and node:
            del node[draw(st.integers(0, len(node) - 1))]
        elif kind == 1 and node:
            node[draw(st.integers(0, len(node) - 1))] = draw(values)
        else:
            node.append(draw(values))


def _dump(data: Any, flow: bool) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = flow
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


@st.composite
def mutated_samples(draw: Any) -> str:
    text = draw(st.sampled_from(SAMPLES))
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.integers(0, 5))
        if kind == 0:
            del lines[i]
        elif kind == 1:
            lines.insert(i, lines[i])
        elif kind == 2:
            lines[i] = " " + lines[i]
        elif kind == 3:
            lines[i] = lines[i].lstrip(" ")
        elif kind == 4:
            line = lines[i]
            j = draw(st.integers(0, len(line)))
            token = draw(st.one_of(st.sampled_from(["{{", "}}", ":", "- ", "[", "]", "{", "}", "'", '"', "*", "&a", "!!", "#", "\t", "fail", "join: 9", "when: x"]), st.text(max_size=4)))
            lines[i] = line[:j] + token + line[j:]
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    return "".join(lines)


# ---------------------------------------------------------------- the fuzz tests


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    check_chain_text(text)


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("abc:-[]{}'\"*&!|>#%@`,?\n  \t0123.~")), max_size=200))
def test_yaml_punctuation_soup(text: str) -> None:
    check_chain_text(text)


@FUZZ
@given(chains(), st.booleans())
def test_chain_shaped_structures(data: dict[Any, Any], flow: bool) -> None:
    check_chain_text(_dump(data, flow))


@FUZZ
@given(near_valid_chains(), st.booleans())
def test_near_valid_chains(data: dict[str, Any], flow: bool) -> None:
    check_chain_text(_dump(data, flow))


@FUZZ
@given(mutated_samples())
def test_mutated_conformance_files(text: str) -> None:
    check_chain_text(text)
    check_rehearsal_text(text)


@FUZZ
@given(st.dictionaries(st.sampled_from(["rehearsal", "chain", "input", "mocks", "expect", "x"]), values, max_size=5))
def test_rehearsal_shaped_structures(data: dict[str, Any]) -> None:
    check_rehearsal_text(_dump(data, False))


SCOPE = {
    "input": {"a": 1, "items": [1, 2]}, "ctx": {"items": [1, 2], "k": "v", "lines": []}, "result": {"status": 200},
    "status": "succeeded", "succeeded": True, "failed": False, "error": None, "attempt": 1,
    "run": {"id": "r"}, "item": "s", "index": 0, "bogus": None,
}


@FUZZ
@given(st.one_of(expressions(depth=4), st.text(max_size=40)))
def test_conditions_raise_only_expression_errors(source: str) -> None:
    try:
        condition = Condition(source)
    except ExpressionError:
        return
    try:
        assert isinstance(condition(SCOPE), bool)
    except ExpressionError:
        pass


@FUZZ
@given(st.one_of(templates(), st.text(max_size=40)))
def test_templates_raise_only_expression_errors(source: str) -> None:
    try:
        template = Template(source)
    except ExpressionError:
        return
    except Exception as exc:
        if KNOWN_ESCAPES[1].matches(exc):
            return
        raise
    try:
        template.render(SCOPE)
    except ExpressionError:
        pass
