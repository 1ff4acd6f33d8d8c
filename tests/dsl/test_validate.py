"""Chain validation (spec section 1, "Validation"): every issue at once, each at file:line:col."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from legion.dsl.catalog import FunctionSpec, Param
from legion.dsl.errors import ExpressionError, Issue, ValidationFailed
from legion.dsl.expressions import Template
from legion.dsl.loader import load_text
from legion.dsl.model import Chain
from legion.dsl.validate import (
    load_chain,
    validate_chain_document,
    validate_rehearsal_document,
)

CATALOG = {
    "core.util.echo": FunctionSpec("core.util.echo", (Param("message", {"type": "string"}, required=True),)),
    "core.util.noop": FunctionSpec("core.util.noop"),
    "core.util.set": FunctionSpec("core.util.set", extra_args=True),
    "core.util.sleep": FunctionSpec("core.util.sleep", (Param("seconds", {"type": "number", "minimum": 0}, required=True),)),
    "core.util.log": FunctionSpec(
        "core.util.log",
        (Param("message", {"type": "string"}, required=True), Param("level", {"enum": ["info", "warning"]}, default="info")),
    ),
}


def check(text: str, **kwargs: object) -> tuple[Chain | None, list[Issue]]:
    return validate_chain_document(load_text(text, "c.yaml"), **kwargs)  # type: ignore[arg-type]


def errors(text: str, **kwargs: object) -> list[Issue]:
    return [i for i in check(text, **kwargs)[1] if i.severity == "error"]


def warnings(text: str, **kwargs: object) -> list[Issue]:
    return [i for i in check(text, **kwargs)[1] if i.severity == "warning"]


def one_error(text: str, **kwargs: object) -> Issue:
    found = errors(text, **kwargs)
    assert len(found) == 1, [str(i) for i in found]
    return found[0]


def at(issue: Issue) -> tuple[int, int]:
    return issue.line, issue.col


# ---------------------------------------------------------------- a valid chain

VALID = """\
chain: order-pipeline
description: Fetch an order, check every line, notify on failure
input:
  type: object
  required: [order_id]
  properties: {order_id: {type: integer}}
vars: {attempts: 0, who: "{{ input.order_id }} {{ run.id }}"}
on:
  schedule:
    - cron: "*/5 * * * *"
      input: {order_id: 1}
    - every: 30s
  events: [core.util.echo]
steps:
  fetch:
    run: core.util.echo
    with:
      message: "https://shop.example/orders/{{ input.order_id }}"
    timeout: 30s
    retry: {count: 3, delay: 1s, backoff: 2.0, max_delay: 30s, jitter: true, when: "failed and attempt < 3"}
    next:
      - when: succeeded and result.status == 200
        publish: {order: "{{ result.json }}"}
        do: check
      - when: failed
        do: [notify, fail]
  check:
    run: core.util.echo
    for_each: "{{ ctx.order.lines }}"
    concurrency: 4
    with: {message: "{{ item.sku }} #{{ index }}"}
  notify:
    run: core.util.log
    with: {message: "order {{ input.order_id }} failed: {{ error.message }}"}
output:
  lines: "{{ ctx.order.lines | length if 'order' in ctx else 0 }}"
"""


def test_the_spec_example_is_valid() -> None:
    chain, issues = check(VALID, functions=CATALOG)
    assert issues == []
    assert isinstance(chain, Chain)
    assert chain.steps["fetch"].timeout == 30.0
    assert chain.steps["fetch"].next[1].do == ["notify", "fail"]
    assert chain.steps["fetch"].next[0].do == ["check"]
    assert chain.steps["check"].with_ == {"message": "{{ item.sku }} #{{ index }}"}
    assert chain.on is not None and chain.on.schedule[1].every == 30.0
    assert chain.start_steps() == ["fetch"]
    assert chain.predecessors() == {"fetch": [], "check": ["fetch"], "notify": ["fetch"]}


def test_load_chain_returns_the_model_and_warnings() -> None:
    text = "chain: a\nsteps:\n  s: {run: core.util.noop, for_each: [1, 2]}\n"
    chain, issues = load_chain("c.yaml", text=text)
    assert chain.chain == "a"
    assert [i.severity for i in issues] == ["warning"]


def test_load_chain_raises_with_every_issue(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("chain: a\nsteps:\n  s: {run: core.util.noop, next: [{do: t}, {do: u}]}\n", encoding="utf-8")
    with pytest.raises(ValidationFailed) as info:
        load_chain(str(path))
    messages = [str(i) for i in info.value.issues]
    assert len(messages) == 2
    assert messages[0].startswith(f"{path}:3:40: error: `do` names 't'")
    assert messages[1].startswith(f"{path}:3:49: error: `do` names 'u'")


def test_load_chain_reports_yaml_errors_as_validation_failed() -> None:
    with pytest.raises(ValidationFailed) as info:
        load_chain("c.yaml", text="chain: a\nsteps:\n  s: {run: core.util.noop}\n  s: {run: core.util.noop}\n")
    assert at(info.value.issues[0]) == (4, 3) and "duplicate key" in info.value.issues[0].message


def test_every_issue_at_once_sorted_by_place() -> None:
    text = """\
chain: Bad Name
steps:
  a:
    run: core.util.noop
    priorty: 3
    next:
      - when: "{{ succeeded }}"
        do: nowhere
  b:
    run: core.util.noop
    concurrency: 2
    with: {message: "{{ nope }}"}
"""
    found = errors(text)
    assert [at(i) for i in found] == sorted(at(i) for i in found)
    lines = {i.line for i in found}
    assert {1, 5, 7, 8, 11, 12} <= lines
    assert all(i.file == "c.yaml" for i in found)


# ---------------------------------------------------------------- schema errors


def test_unknown_top_level_key_suggests_the_right_one() -> None:
    issue = one_error("chain: a\ndescripton: x\nsteps: {s: {run: core.util.noop}}\n")
    assert at(issue) == (2, 1)
    assert "unknown key 'descripton'" in issue.message and "did you mean 'description'?" in issue.message
    assert "allowed here: chain, description" in issue.message


@pytest.mark.parametrize(("text", "where", "key", "suggestion"), [
    ("chain: a\nsteps:\n  s:\n    run: core.util.noop\n    retries: 2\n", (5, 5), "retries", "retry"),
    ("chain: a\nsteps:\n  s:\n    run: core.util.noop\n    next:\n      - whne: failed\n", (6, 9), "whne", "when"),
    ("chain: a\nsteps:\n  s:\n    run: core.util.noop\n    retry: {count: 1, dealy: 2s}\n", (5, 23), "dealy", "delay"),
    ("chain: a\non:\n  scheduel: []\nsteps: {s: {run: core.util.noop}}\n", (3, 3), "scheduel", "schedule"),
    ("chain: a\non:\n  schedule:\n    - every: 5s\n      inputs: {}\nsteps: {s: {run: core.util.noop}}\n", (5, 7), "inputs", "input"),
], ids=["step", "edge", "retry", "triggers", "schedule-entry"])
def test_unknown_keys_at_every_level(text: str, where: tuple[int, int], key: str, suggestion: str) -> None:
    issue = one_error(text)
    assert at(issue) == where
    assert f"unknown key {key!r}" in issue.message and f"did you mean {suggestion!r}" in issue.message


def test_missing_required_keys() -> None:
    found = errors("description: nothing\n")
    assert sorted(i.message for i in found) == ["missing required key 'chain'", "missing required key 'steps'"]
    issue = one_error("chain: a\nsteps:\n  s:\n    with: {}\n")
    assert at(issue) == (3, 3) and issue.message == "missing required key 'run'"


def test_wrong_type_points_at_the_value() -> None:
    issue = one_error("chain: a\nsteps:\n  s:\n    run: core.util.noop\n    priority: high\n")
    assert at(issue) == (5, 15)
    assert issue.message.startswith("steps.s.priority:") and "integer" in issue.message


def test_bad_duration_message_lists_the_units() -> None:
    issue = one_error("chain: a\nsteps:\n  s: {run: core.util.noop, timeout: soon}\n")
    assert "'soon' is not a duration" in issue.message and "250ms, 30s, 5m, 2h, 1d" in issue.message


def test_reserved_step_name() -> None:
    found = errors("chain: a\nsteps:\n  fail: {run: core.util.noop}\n")
    assert any("reserved" in i.message and i.line == 3 for i in found)


def test_chain_name_pattern() -> None:
    issue = one_error("chain: Order Pipeline\nsteps: {s: {run: core.util.noop}}\n")
    assert at(issue) == (1, 8) and issue.message.startswith("chain name 'Order Pipeline': use lowercase letters")


def test_a_file_that_is_not_a_mapping() -> None:
    found = errors("- chain: a\n")
    assert found and all(i.line == 1 for i in found)
    assert any("must be a mapping" in i.message for i in found)


def test_schedule_entry_needs_exactly_one_kind() -> None:
    issue = one_error('chain: a\non:\n  schedule:\n    - {cron: "* * * * *", every: 5s}\nsteps: {s: {run: core.util.noop}}\n')
    assert issue.line == 4 and "exactly one of `cron` and `every`" in issue.message


def test_cron_with_wrong_field_count_and_invalid_cron() -> None:
    found = errors('chain: a\non:\n  schedule:\n    - cron: "* * *"\nsteps: {s: {run: core.util.noop}}\n')
    assert found and all(i.line == 4 for i in found)
    assert any("must have 5 fields" in i.message for i in found)
    issue = one_error('chain: a\non:\n  schedule:\n    - cron: "61 * * * *"\nsteps: {s: {run: core.util.noop}}\n')
    assert at(issue) == (4, 13) and "not a valid 5-field cron expression" in issue.message


def test_unquoted_cron_fails_validation_with_the_quote_hint() -> None:
    with pytest.raises(ValidationFailed) as info:
        load_chain("c.yaml", text="chain: a\non:\n  schedule:\n    - cron: */5 * * * *\nsteps: {s: {run: core.util.noop}}\n")
    issue = info.value.issues[0]
    assert issue.line == 4 and "quote the cron expression" in issue.message


def test_input_must_be_a_json_schema() -> None:
    issue = one_error("chain: a\ninput: {type: objekt}\nsteps: {s: {run: core.util.noop}}\n")
    assert issue.line == 2 and "not a valid JSON Schema" in issue.message


# ---------------------------------------------------------------- expressions


def test_condition_in_braces_gets_the_drop_the_braces_hint() -> None:
    text = "chain: a\nsteps:\n  s:\n    run: core.util.noop\n    next:\n      - when: \"{{ result.ok }}\"\n        do: t\n  t: {run: core.util.noop}\n"
    issue = one_error(text)
    assert at(issue) == (6, 15)
    assert "drop the braces" in issue.message


def test_retry_when_in_braces_gets_the_hint() -> None:
    issue = one_error('chain: a\nsteps:\n  s:\n    run: core.util.noop\n    retry: {count: 1, when: "{{ failed }}"}\n')
    assert issue.line == 5 and "drop the braces" in issue.message


def test_condition_syntax_error() -> None:
    issue = one_error("chain: a\nsteps:\n  s:\n    run: core.util.noop\n    next:\n      - when: result.ok ==\n")
    assert at(issue) == (6, 15) and "syntax error" in issue.message and "result.ok ==" in issue.message


def test_condition_with_disallowed_syntax() -> None:
    issue = one_error("chain: a\nsteps:\n  s:\n    run: core.util.noop\n    next:\n      - when: 'result.__class__'\n")
    assert "'__class__' is not allowed" in issue.message
    issue = one_error("chain: a\nsteps:\n  s:\n    run: core.util.noop\n    next:\n      - when: '(lambda: 1)()'\n")
    assert "Lambda is not allowed" in issue.message


def test_template_syntax_error() -> None:
    issue = one_error('chain: a\nsteps:\n  s:\n    run: core.util.noop\n    with:\n      x: "{{ input.a "\n')
    assert at(issue) == (6, 10) and "syntax error" in issue.message


def test_unknown_name_in_condition_lists_the_names_allowed_there() -> None:
    issue = one_error("chain: a\nsteps:\n  s:\n    run: core.util.noop\n    next:\n      - when: succeeded and reslt.ok\n")
    assert at(issue) == (6, 15)
    assert "unknown name 'reslt'" in issue.message and "result" in issue.message


def test_comprehension_variables_are_not_unknown_names() -> None:
    assert errors("chain: a\nsteps:\n  s:\n    run: core.util.noop\n    next:\n      - when: 'all(x > 0 for x in result)'\n") == []
    assert errors("chain: a\nsteps:\n  s:\n    run: core.util.noop\n    next:\n      - when: 'len([x for x in result if x]) > min(1, 2)'\n") == []


def test_unknown_name_in_template() -> None:
    issue = one_error('chain: a\nsteps:\n  s:\n    run: core.util.noop\n    next:\n      - publish: {x: "{{ rezult }}"}\n')
    assert at(issue) == (6, 22) and "unknown name 'rezult'" in issue.message


def test_template_names_deep_in_with() -> None:
    issue = one_error('chain: a\nsteps:\n  s:\n    run: core.util.noop\n    with:\n      a: [1, {b: "{{ oops }}"}]\n')
    assert issue.line == 6 and issue.path == ("steps", "s", "with", "a", 1, "b")


def test_template_locals_are_not_unknown_names() -> None:
    text = 'chain: a\nsteps:\n  s:\n    run: core.util.noop\n    with: {m: "{% for x in ctx.l %}{{ x }}{% endfor %}{% set y = 1 %}{{ y }}"}\n'
    assert errors(text) == []


def test_vars_see_only_input_and_run() -> None:
    issue = one_error('chain: a\nvars: {v: "{{ ctx.x }}", w: "{{ input.a }}{{ run.id }}"}\nsteps: {s: {run: core.util.noop}}\n')
    assert issue.line == 2 and "unknown name 'ctx'" in issue.message and "names here: input, run" in issue.message


def test_item_and_index_only_inside_for_each() -> None:
    issue = one_error('chain: a\nsteps:\n  s:\n    run: core.util.noop\n    with: {m: "{{ item }}"}\n')
    assert "unknown name 'item'" in issue.message
    text = 'chain: a\nsteps:\n  s:\n    run: core.util.noop\n    for_each: [1]\n    concurrency: 1\n    with: {m: "{{ item }}{{ index }}"}\n'
    assert errors(text) == []


def test_output_does_not_know_item_or_attempt() -> None:
    found = errors('chain: a\nsteps: {s: {run: core.util.noop}}\noutput: {a: "{{ attempt }}", b: "{{ item }}", c: "{{ status }}{{ error }}"}\n')
    assert sorted(i.message.split("unknown name ")[1].split(";")[0] for i in found) == ["'attempt'", "'item'"]


def test_for_each_must_be_a_template_or_a_list() -> None:
    issue = one_error("chain: a\nsteps:\n  s:\n    run: core.util.noop\n    for_each: input.items\n    concurrency: 2\n")
    assert at(issue) == (5, 15) and "for_each must be a template" in issue.message
    issue = one_error('chain: a\nsteps:\n  s:\n    run: core.util.noop\n    for_each: "{{ itemz }}"\n    concurrency: 2\n')
    assert "unknown name 'itemz'" in issue.message


def test_unknown_filter_is_an_issue() -> None:
    issue = one_error('chain: a\nsteps:\n  s:\n    run: core.util.noop\n    with: {m: "{{ input | nofilter }}"}\n')
    assert issue.line == 5 and "nofilter" in issue.message


def test_huge_constant_in_a_template_fails_when_rendered_not_when_validated() -> None:
    """`**` is never folded at compile time; its bound applies when the template renders."""
    assert errors('chain: a\nsteps:\n  s:\n    run: core.util.noop\n    with: {m: "{{ 10 ** 5000 }}"}\n') == []
    with pytest.raises(ExpressionError, match="too high|too large|Sorry"):
        Template("{{ 10 ** 5000000 }}").render({})
    assert Template("{{ 2 ** 10 }}").render({}) == 1024


def test_huge_power_in_a_template_does_not_hang_validation() -> None:
    code = (
        "from legion.dsl.loader import load_text\n"
        "from legion.dsl.validate import validate_chain_document\n"
        "text = 'chain: a\\nsteps:\\n  s:\\n    run: core.util.noop\\n    with: {m: \"{{ 9 ** (9 ** 9) }}\"}\\n'\n"
        "try:\n"
        "    _, issues = validate_chain_document(load_text(text))\n"
        "except Exception as exc:\n"
        "    print('escaped', type(exc).__name__)\n"
        "else:\n"
        "    print([i.line for i in issues if i.severity == 'error'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=10, check=False)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


# ---------------------------------------------------------------- references


def test_do_target_that_is_not_a_step() -> None:
    text = "chain: a\nsteps:\n  fetch:\n    run: core.util.noop\n    next:\n      - do: [chek, fail]\n  check: {run: core.util.noop}\n"
    issue = one_error(text)
    assert at(issue) == (6, 14)
    assert "`do` names 'chek', which is not a step; did you mean 'check'?" in issue.message


def test_do_target_without_close_match_lists_the_steps() -> None:
    issue = one_error("chain: a\nsteps:\n  s:\n    run: core.util.noop\n    next: [{do: zzz}]\n")
    assert "steps: s" in issue.message and at(issue) == (5, 17)


def test_fail_is_a_valid_target() -> None:
    assert errors("chain: a\nsteps:\n  s:\n    run: core.util.noop\n    next: [{when: failed, do: fail}]\n") == []


def test_start_naming_an_unknown_step() -> None:
    issue = one_error("chain: a\nstart: [s, nope]\nsteps: {s: {run: core.util.noop}}\n")
    assert issue.line == 2 and "start names 'nope', which is not a step" in issue.message


def test_unknown_sub_chain_when_chains_are_known() -> None:
    text = "chain: a\nsteps:\n  s: {run: 'chain:other'}\n  t: {run: 'chain:known'}\n"
    issue = one_error(text, chains=["known"])
    assert issue.line == 3 and "no chain named 'other'" in issue.message
    assert errors(text) == []  # without a list of chains nothing is checked


# ---------------------------------------------------------------- functions


def test_unknown_function_with_a_suggestion() -> None:
    issue = one_error("chain: a\nsteps:\n  s:\n    run: core.util.ech\n", functions=CATALOG)
    assert at(issue) == (4, 10)
    assert "unknown function 'core.util.ech'" in issue.message and "did you mean 'core.util.echo'?" in issue.message


def test_unknown_function_without_a_suggestion() -> None:
    issue = one_error("chain: a\nsteps:\n  s:\n    run: far.away.thing\n", functions=CATALOG)
    assert "legion lex list" in issue.message


def test_functions_are_not_checked_without_a_catalog() -> None:
    assert errors("chain: a\nsteps:\n  s:\n    run: far.away.thing\n    with: {x: 1}\n") == []


def test_unknown_argument_names_the_arguments_taken() -> None:
    issue = one_error("chain: a\nsteps:\n  s:\n    run: core.util.echo\n    with:\n      message: hi\n      mesage: hi\n", functions=CATALOG)
    assert at(issue) == (7, 7)
    assert issue.message == "core.util.echo has no argument 'mesage'; it takes: message"


def test_missing_required_argument() -> None:
    issue = one_error("chain: a\nsteps:\n  s:\n    run: core.util.echo\n", functions=CATALOG)
    assert at(issue) == (4, 10) and "needs the argument 'message'" in issue.message


def test_argument_of_the_wrong_type() -> None:
    issue = one_error("chain: a\nsteps:\n  s:\n    run: core.util.sleep\n    with: {seconds: soon}\n", functions=CATALOG)
    assert issue.line == 5 and "argument 'seconds' of core.util.sleep" in issue.message and "number" in issue.message
    issue = one_error("chain: a\nsteps:\n  s:\n    run: core.util.log\n    with: {message: m, level: loud}\n", functions=CATALOG)
    assert "argument 'level'" in issue.message


def test_template_arguments_are_not_type_checked() -> None:
    text = 'chain: a\nsteps:\n  s:\n    run: core.util.sleep\n    with: {seconds: "{{ input.n }}"}\n'
    assert errors(text, functions=CATALOG) == []


def test_function_with_extra_args_takes_anything() -> None:
    assert errors("chain: a\nsteps:\n  s:\n    run: core.util.set\n    with: {a: 1, b: [2]}\n", functions=CATALOG) == []


def test_function_without_parameters() -> None:
    issue = one_error("chain: a\nsteps:\n  s:\n    run: core.util.noop\n    with: {x: 1}\n", functions=CATALOG)
    assert "it takes: no arguments" in issue.message


def test_unknown_event_function() -> None:
    issue = one_error("chain: a\non:\n  events: [core.util.echo, git.hub.push]\nsteps: {s: {run: core.util.noop}}\n", functions=CATALOG)
    assert at(issue) == (3, 28) and "unknown function 'git.hub.push' in on.events" in issue.message


def test_args_schema_of_a_function_spec() -> None:
    schema = CATALOG["core.util.log"].args_schema()
    assert schema == {
        "type": "object",
        "properties": {"message": {"type": "string"}, "level": {"enum": ["info", "warning"]}},
        "additionalProperties": False,
        "required": ["message"],
    }
    assert CATALOG["core.util.set"].args_schema()["additionalProperties"] is True


# ---------------------------------------------------------------- the graph


def test_join_above_the_number_of_predecessors() -> None:
    text = """\
chain: a
steps:
  a: {run: core.util.noop, next: [{do: c}]}
  b: {run: core.util.noop, next: [{do: c}, {when: failed, do: c}]}
  c:
    run: core.util.noop
    join: 3
"""
    issue = one_error(text)
    assert at(issue) == (7, 11)
    assert "join: 3 waits for more predecessors than step 'c' has (2)" in issue.message


def test_join_equal_to_the_predecessors_is_fine() -> None:
    text = "chain: a\nsteps:\n  a: {run: core.util.noop, next: [{do: c}]}\n  b: {run: core.util.noop, next: [{do: c}]}\n  c: {run: core.util.noop, join: 2}\n"
    assert check(text)[1] == []


def test_no_start_step() -> None:
    text = "chain: a\nsteps:\n  a: {run: core.util.noop, next: [{do: b}]}\n  b: {run: core.util.noop, next: [{do: a}]}\n"
    issue = one_error(text)
    assert at(issue) == (2, 1)
    assert "no start step" in issue.message and "start:" in issue.message


def test_explicit_start_makes_a_cycle_valid() -> None:
    text = "chain: a\nstart: a\nsteps:\n  a: {run: core.util.noop, next: [{do: b}]}\n  b: {run: core.util.noop, next: [{when: failed, do: a}]}\n"
    chain, issues = check(text)
    assert chain is not None and chain.start_steps() == ["a"]
    assert [i.severity for i in issues] == []


def test_concurrency_without_for_each() -> None:
    issue = one_error("chain: a\nsteps:\n  s:\n    run: core.util.noop\n    concurrency: 3\n")
    assert at(issue) == (5, 5) and "concurrency only applies with for_each" in issue.message


# ---------------------------------------------------------------- warnings


def test_warning_unreachable_step() -> None:
    text = "chain: a\nstart: a\nsteps:\n  a: {run: core.util.noop}\n  b: {run: core.util.noop}\n"
    chain, issues = check(text)
    assert chain is not None
    assert [(i.severity, i.line, i.col) for i in issues] == [("warning", 5, 3)]
    assert "step 'b' is unreachable" in issues[0].message


def test_warning_unreachable_island_cycle() -> None:
    text = "chain: a\nsteps:\n  a: {run: core.util.noop}\n  b: {run: core.util.noop, next: [{do: c}]}\n  c: {run: core.util.noop, next: [{do: b}]}\n"
    found = warnings(text)
    assert sorted(i.message.split("'")[1] for i in found if "unreachable" in i.message) == ["b", "c"]


def test_warning_two_predecessors_without_join() -> None:
    text = "chain: a\nsteps:\n  a: {run: core.util.noop, next: [{do: c}]}\n  b: {run: core.util.noop, next: [{do: c}]}\n  c: {run: core.util.noop}\n"
    chain, issues = check(text)
    assert chain is not None and len(issues) == 1
    assert (issues[0].severity, issues[0].line) == ("warning", 5)
    assert "2 predecessors and no `join`" in issues[0].message and "join: all" in issues[0].message


def test_two_edges_from_one_predecessor_is_not_two_predecessors() -> None:
    text = "chain: a\nsteps:\n  a: {run: core.util.noop, next: [{do: c}, {when: failed, do: c}]}\n  c: {run: core.util.noop}\n"
    assert check(text)[1] == []


def test_warning_for_each_without_concurrency() -> None:
    chain, issues = check('chain: a\nsteps:\n  s:\n    run: core.util.noop\n    for_each: "{{ input.items }}"\n')
    assert chain is not None and len(issues) == 1
    assert (issues[0].severity, issues[0].line, issues[0].col) == ("warning", 5, 5)
    assert "set concurrency" in issues[0].message


def test_warnings_do_not_hide_errors() -> None:
    chain, issues = check("chain: a\nsteps:\n  s:\n    run: core.util.noop\n    for_each: [1]\n    next: [{do: nope}]\n")
    assert chain is None
    assert sorted(i.severity for i in issues) == ["error", "warning"]


# ---------------------------------------------------------------- robustness


def test_schedule_that_is_not_a_list_is_an_issue_not_a_crash() -> None:
    issue = one_error("chain: a\non: {schedule: 5}\nsteps: {s: {run: core.util.noop}}\n")
    assert issue.line == 2


@pytest.mark.parametrize("text", [
    "chain: a\nsteps: {s: 5}\n",
    "chain: a\nsteps: {s: {run: core.util.noop, next: 5}}\n",
    "chain: a\nsteps: {s: {run: core.util.noop, next: [5, {do: 5}, {do: {x: 1}}]}}\n",
    "chain: a\nsteps: {s: {run: core.util.noop, with: [1]}}\n",
    "chain: a\nstart: {x: 1}\nsteps: {s: {run: 5}}\n",
    "chain: a\non: [1]\nsteps: {s: {run: core.util.noop, retry: 5, join: x}}\n",
    "chain: a\non: {schedule: [5, {cron: 5}]}\nsteps: []\n",
    "chain: a\nvars: 5\noutput: {a: [1, {b: '{{ nope }}'}]}\nsteps: {s: {run: core.util.noop, for_each: {a: 1}}}\n",
    "",
    "just a string\n",
    "42\n",
])
def test_odd_shapes_give_issues_not_crashes(text: str) -> None:
    _, issues = check(text, functions=CATALOG, chains=[])
    assert any(i.severity == "error" for i in issues)
    assert all(i.line >= 1 and i.file == "c.yaml" for i in issues)


# ---------------------------------------------------------------- rehearsals


def test_rehearsal_unknown_keys_everywhere() -> None:
    doc = load_text(
        "rehearsal: r\nchain: c.yaml\nmocks:\n  s: [{result: 1, stauts: failed}]\nexpect: {status: succeeded, sequnce: [s]}\nextra: 1\n",
        "r.yaml",
    )
    model, issues = validate_rehearsal_document(doc)
    assert model is None
    assert [(i.line, i.message.split(";")[0]) for i in issues] == [
        (4, "unknown key 'stauts'"), (5, "unknown key 'sequnce'"), (6, "unknown key 'extra' (allowed here: rehearsal, chain, input, mocks, expect)"),
    ]


def test_valid_rehearsal() -> None:
    doc = load_text("chain: ../chains/a.yaml\nmocks: {s: [{status: failed, error: boom}, {result: 2}]}\nexpect: {status: failed, error: {type: StepFailed}}\n")
    model, issues = validate_rehearsal_document(doc)
    assert issues == [] and model is not None
    assert model.mocks["s"][0].status == "failed" and model.mocks["s"][1].result == 2
    assert model.input == {}


def test_names_get_sentences_not_regular_expressions() -> None:
    found = errors('chain: ok\non: {events: [nope]}\nsteps:\n  "9bad":\n    run: core.util\n')
    by_line = {(i.line, i.col): i.message for i in found}
    assert by_line[(4, 3)] == "step name '9bad': use letters, digits, '_' and '-', starting with a letter or '_'"
    assert by_line[(5, 10)].startswith("'core.util' is not a function reference: write extension.runner.function")
    assert by_line[(2, 15)].startswith("'nope' is not a function reference")


def test_input_time_zone_numbers_and_reserved_names() -> None:
    found = errors(
        "chain: d\n"
        "input: {order_id: 1, type: object}\n"
        'on: {schedule: [{cron: "* * * * *", tz: Mars/Base}]}\n'
        "steps:\n"
        "  a: {run: core.util.echo, with: {message: .nan, n: .inf}}\n"
        "  fail: {run: core.util.noop}\n"
    )
    by_line: dict[int, list[str]] = {}
    for issue in found:
        by_line.setdefault(issue.line, []).append(issue.message)
    assert by_line[2] == [by_line[2][0]] and "`input` holds JSON Schema keywords only, and 'order_id'" in by_line[2][0]
    assert by_line[3] == ["unknown time zone 'Mars/Base'; use an IANA name such as UTC or Europe/Paris"]
    assert len(by_line[5]) == 2 and all(m.startswith("not a JSON number") for m in by_line[5])
    assert [(i.line, i.col) for i in found if "reserved" in i.message] == [(6, 3)]


def test_a_valid_time_zone_and_schema_keywords_pass() -> None:
    assert errors(
        "chain: d\n"
        "input: {type: object, required: [n], properties: {n: {type: integer}}, $defs: {}}\n"
        'on: {schedule: [{cron: "0 9 * * *", tz: Europe/Paris}]}\n'
        "steps:\n  a: {run: core.util.noop}\n"
    ) == []
