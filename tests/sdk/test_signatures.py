"""A function's signature is its argument schema and its argument check: the same one at
`chain validate` (literal values), at step start (rendered values), and in `lex list`."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic needs this one on Python 3.11

from legion.dsl.errors import ValidationFailed
from legion.dsl.validate import load_chain
from legion.engine.invoke import call
from legion.engine.registry import Registry
from legion.engine.sdk import Context, Extension, function, function_spec
from legion.engine.signature import arg_descriptions

PROBE = '''
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from legion.sdk import function

seen = []


class Ticket(BaseModel):
    title: str
    priority: int = 3


def open_ticket(ticket: Ticket) -> dict:
    """Open a ticket."""
    seen.append(ticket)
    return {"title": ticket.title, "priority": ticket.priority, "model": type(ticket).__name__}


def complete(prompt: str, max_tokens: Annotated[int, Field(ge=1)] = 16) -> dict:
    """Pretend to complete a prompt."""
    seen.append(max_tokens)
    return {"tokens": max_tokens}


def count(n: int) -> int:
    seen.append(n)
    return n + 1
'''


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Point(TypedDict):
    x: int
    y: int


@dataclass
class Box:
    width: float
    height: float = 1.0


class Ticket(BaseModel):
    title: str = Field(description="one line")
    priority: Annotated[int, Field(ge=1, le=5)] = 3


def _schema(fn: Any) -> dict[str, Any]:
    return function_spec("x.y.f", fn).args_schema()


def test_models_typeddicts_enums_dataclasses_and_literals_have_real_schemas() -> None:
    def f(ticket: Ticket, color: Color, point: Point, box: Box, mode: Literal["fast", "slow"] = "fast",
          note: str | None = None) -> Ticket:
        return ticket

    schema = _schema(f)
    props = schema["properties"]
    assert props["ticket"]["type"] == "object" and props["ticket"]["required"] == ["title"]
    assert props["ticket"]["properties"]["priority"] == {"default": 3, "maximum": 5, "minimum": 1, "title": "Priority", "type": "integer"}
    assert props["ticket"]["properties"]["title"]["description"] == "one line"
    assert props["color"]["enum"] == ["red", "blue"]
    assert props["point"]["required"] == ["x", "y"] and props["point"]["properties"]["x"]["type"] == "integer"
    assert props["box"]["required"] == ["width"] and props["box"]["properties"]["height"]["default"] == 1.0
    assert props["mode"] == {"enum": ["fast", "slow"], "type": "string", "default": "fast"}
    assert props["note"] == {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    assert schema["required"] == ["ticket", "color", "point", "box"]
    assert function_spec("x.y.f", f).returns["properties"]["title"]["type"] == "string"


def test_constraints_defaults_and_descriptions_reach_the_schema() -> None:
    def f(max_tokens: Annotated[int, Field(ge=1, description="upper bound")] = 16,
          temperature: Annotated[float, Field(ge=0, le=2)] = 0.7, name: str = "x") -> None:
        """Complete.

        Args:
            temperature: how random
                the sampling is.
            name: who asks
        """

    props = _schema(f)["properties"]
    assert props["max_tokens"] == {"type": "integer", "minimum": 1, "default": 16, "description": "upper bound"}
    assert props["temperature"] == {"type": "number", "minimum": 0, "maximum": 2, "default": 0.7,
                                    "description": "how random the sampling is."}
    assert props["name"] == {"type": "string", "default": "x", "description": "who asks"}


def test_the_context_parameter_is_not_an_argument() -> None:
    def f(a: int, ctx: Context) -> None:
        return None

    spec = function_spec("x.y.f", f)
    assert spec.param_names == ["a"]
    assert spec.check_args({"a": 1, "ctx": {}}) == [("ctx", "x.y.f has no argument 'ctx'; it takes: a")]


def test_docstring_args_sections_google_and_sphinx() -> None:
    assert arg_descriptions("Do.\n\nArgs:\n    a (int): first\n        and more\n    b: second\n\nReturns:\n    x: no\n") == {
        "a": "first and more", "b": "second"}
    assert arg_descriptions(":param a: first\n:param int b: second") == {"a": "first", "b": "second"}
    assert arg_descriptions(None) == {}


def test_lax_coercion_and_refusals() -> None:
    def f(n: int, ratio: float = 1.0, flag: bool = False, ticket: Ticket | None = None) -> dict[str, Any]:
        return {"n": n, "ratio": ratio, "flag": flag, "ticket": ticket.model_dump() if ticket else None}

    fn = Registry([]).functions  # an empty registry: the function is wrapped by hand below
    assert fn == {}
    from legion.engine.registry import Function

    probe = Function("x.y.f", "x", "y", "f", f)
    ok = call(probe, {"n": "5", "ratio": "2.5", "flag": "true", "ticket": {"title": "t", "priority": "2"}})
    assert ok.status == "succeeded"
    assert ok.result == {"n": 5, "ratio": 2.5, "flag": True, "ticket": {"title": "t", "priority": 2}}
    bad = call(probe, {"n": "soon"})
    assert (bad.status, bad.error["type"]) == ("failed", "InvalidArguments")
    assert bad.error["message"].startswith("argument 'n' of x.y.f expects an integer, got a string: Input should be a valid integer")
    nested = call(probe, {"n": 1, "ticket": {"title": "t", "priority": 9}})
    assert nested.error["message"] == ("argument 'ticket' of x.y.f, at ticket.priority: expects an integer, got an integer: "
                                       "Input should be less than or equal to 5")
    missing = call(probe, {"n": 1, "ticket": {"priority": 1}})
    assert missing.error["message"] == "argument 'ticket' of x.y.f, at ticket.title: expects a string, got nothing: Field required"
    assert call(probe, {}).error["message"] == "x.y.f needs the argument 'n'"


def test_a_secret_value_never_appears_in_the_message() -> None:
    from legion.engine.registry import Function

    def f(n: int) -> int:
        return n

    outcome = call(Function("x.y.f", "x", "y", "f", f), {"n": "hunter2-password"})
    assert outcome.error["type"] == "InvalidArguments" and "hunter2" not in outcome.error["message"]
    assert "got a string" in outcome.error["message"]


def test_options_declared_with_function() -> None:
    @function(description="Sync an account.", timeout="30s", retry={"count": 2, "delay": "1s"}, expose=False)
    def sync(account: str) -> None:
        """Ignored summary."""

    spec = function_spec("x.y.sync", sync)
    assert (spec.description, spec.timeout, spec.retry, spec.expose) == ("Sync an account.", 30.0, {"count": 2, "delay": "1s"}, False)

    @function
    def plain(a: int) -> None:
        """Plain."""

    assert function_spec("x.y.plain", plain).expose is True
    assert function(retry=3)(plain).__legion_options__.retry == {"count": 3}  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="timeout must be positive"):
        function(timeout=0)
    with pytest.raises(ValueError, match="retry"):
        function(retry={"count": -1})


def test_validate_refuses_a_literal_outside_an_annotated_constraint(runner: Any) -> None:
    registry = runner("gen", PROBE)
    text = "chain: c\nsteps:\n  s:\n    run: gen.probe.complete\n    with: {prompt: hi, max_tokens: 0}\n"
    with pytest.raises(ValidationFailed) as info:
        load_chain("c.yaml", text=text, functions=registry.catalog())
    issue = info.value.issues[0]
    assert (issue.line, issue.col) == (5, 24)
    assert "argument 'max_tokens' of gen.probe.complete expects an integer, got an integer: Input should be greater than or equal to 1" in issue.message
    # A template is checked when it renders, not before; a nested literal model is checked now.
    load_chain("c.yaml", text=text.replace("max_tokens: 0", "max_tokens: '{{ input.n }}'"), functions=registry.catalog())
    bad_model = "chain: c\nsteps:\n  s:\n    run: gen.probe.open_ticket\n    with: {ticket: {priority: 2}}\n"
    with pytest.raises(ValidationFailed, match="at ticket.title: expects a string, got nothing: Field required"):
        load_chain("c.yaml", text=bad_model, functions=registry.catalog())


def test_rendered_values_are_checked_at_step_start_and_not_retried(runner: Any, engine_of: Any, run_chain: Any) -> None:
    registry = runner("gen", PROBE)
    probe = registry.function("gen.probe.complete").call.__globals__
    engine = engine_of(registry)
    run = run_chain(engine, """
        chain: tokens
        steps:
          s:
            run: gen.probe.complete
            with: {prompt: hi, max_tokens: "{{ input.n }}"}
            retry: {count: 3, delay: 0.01}
        """, {"n": 0})
    assert run["status"] == "failed" and run["error"]["type"] == "InvalidArguments"
    assert run["error"]["message"].startswith("chain 'tokens', step 's': argument 'max_tokens' of gen.probe.complete expects an integer")
    tasks = engine.store.run_tasks(run["id"])
    assert [(t["status"], t["attempt"]) for t in tasks] == [("failed", 1)]  # no retry
    assert probe["seen"] == []  # the function was not called
    ok = run_chain(engine, """
        chain: tokens
        steps:
          s:
            run: gen.probe.complete
            with: {prompt: hi, max_tokens: "{{ input.n }}"}
        output: "{{ result }}"
        """, {"n": "7"})
    assert ok["status"] == "succeeded" and ok["output"] == {"tokens": 7} and probe["seen"] == [7]


def test_invalid_arguments_is_retried_when_retry_when_names_it(runner: Any, engine_of: Any, run_chain: Any) -> None:
    engine = engine_of(runner("gen", PROBE))
    run = run_chain(engine, """
        chain: named
        steps:
          s:
            run: gen.probe.count
            with: {n: "{{ 'x' if attempt < 3 else 41 }}"}
            retry: {count: 3, delay: 0.01, jitter: false, when: "error.type == 'InvalidArguments'"}
        output: "{{ result }}"
        """)
    assert run["status"] == "succeeded" and run["output"] == 42
    assert [t["status"] for t in engine.store.run_tasks(run["id"])] == ["failed", "failed", "succeeded"]


def test_a_model_argument_arrives_as_the_model_and_an_edge_can_handle_invalid_arguments(runner: Any, engine_of: Any,
                                                                                         run_chain: Any) -> None:
    registry = runner("desk", PROBE)
    engine = engine_of(registry)
    run = run_chain(engine, """
        chain: desk
        steps:
          s:
            run: desk.probe.open_ticket
            with: {ticket: {title: "{{ input.title }}", priority: "2"}}
        output: "{{ result }}"
        """, {"title": "Printer"})
    assert run["output"] == {"title": "Printer", "priority": 2, "model": "Ticket"}
    handled = run_chain(engine, """
        chain: desk
        steps:
          s:
            run: desk.probe.open_ticket
            with: {ticket: "{{ input.title }}"}
            next:
              - when: failed and error.type == 'InvalidArguments'
                publish: {why: "{{ error.type }}"}
        output: "{{ ctx.why }}"
        """, {"title": "Printer"})
    assert handled["status"] == "succeeded" and handled["output"] == "InvalidArguments"


def test_rehearsals_check_rendered_arguments_of_mocked_steps_too(runner: Any) -> None:
    from legion.dsl.model import MockEntry
    from legion.engine.conductor import ChainProgram
    from legion.engine.rehearsal import VirtualRun

    registry = runner("gen", PROBE)
    chain, _ = load_chain("c.yaml", text="chain: c\nsteps:\n  s:\n    run: gen.probe.count\n    with: {n: '{{ input.n }}'}\n",
                          functions=registry.catalog())
    program = ChainProgram(chain, functions=registry.catalog())
    mocks = {"s": [MockEntry(result=1)]}
    assert VirtualRun(program, registry, mocks=mocks).run({"n": "5"}).status == "succeeded"
    bad = VirtualRun(program, registry, mocks={"s": [MockEntry(result=1)]}).run({"n": "five"})
    assert bad.status == "failed" and bad.error["type"] == "InvalidArguments"


def test_returned_models_and_dataclasses_become_json() -> None:
    from legion.engine.registry import Function

    def f() -> Ticket:
        return Ticket(title="t")

    def g() -> Box:
        return Box(2.0)

    assert call(Function("x.y.f", "x", "y", "f", f), {}).result == {"title": "t", "priority": 3}
    assert call(Function("x.y.g", "x", "y", "g", g), {}).result == {"width": 2.0, "height": 1.0}


def test_lex_list_shows_types_defaults_and_descriptions_of_http_get() -> None:
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "legion.engine.cli.main", "lex", "list", "--json"],
                         capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)["data"]
    http = next(r for r in rows if r["name"] == "http")
    get = next(f for r in http["runners"] for f in r["functions"] if f["ref"] == "http.request.get")
    props = get["args_schema"]["properties"]
    assert props["url"] == {"type": "string", "description": "the URL to request (http:// or https://)"}
    assert props["timeout"]["type"] == "number" and props["timeout"]["default"] == 30.0
    assert props["timeout"]["description"].startswith("seconds to wait")
    assert props["verify"] == {"type": "boolean", "default": True, "description": "check the server's TLS certificate"}


def test_a_registry_built_by_hand_still_works() -> None:
    assert Registry([Extension("empty")]).catalog().broken == {}


def test_the_argument_rule_in_rehearsal_files() -> None:
    from pathlib import Path

    from legion.engine.rehearsal import run_rehearsal

    folder = Path(__file__).parent / "rehearsals"
    reports = [run_rehearsal(path, Registry.discover()) for path in sorted(folder.glob("*.test.yaml"))]
    assert [(r.name, r.passed, r.failures) for r in reports] == [
        ("coerced-and-refused", True, []), ("refused-when-mocked", True, [])]
