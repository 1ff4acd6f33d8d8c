"""The deterministic driver (spec sections 5 and 8): the virtual clock, sub-chains, mocks and
rehearsal files, beyond the conformance suite."""

from __future__ import annotations

import json
import textwrap
import types
from pathlib import Path

import pytest

from legion.dsl.validate import load_chain
from legion.engine.conductor import ChainProgram
from legion.engine.registry import Registry
from legion.engine.rehearsal import EPOCH, VirtualRun, json_equal, run_rehearsal
from legion.engine.sdk import Extension

# ------------------------------------------------------------------------------ the virtual clock


def test_a_run_without_sleeps_or_waits_takes_no_time(rehearse):
    r = rehearse(
        """
        chain: instant
        steps:
          a:
            run: core.util.echo
            with: {message: x}
            next:
              - do: b
          b: {run: core.util.noop}
        """
    )
    assert (r.sequence, r.elapsed) == (["a", "b"], 0)


def test_sleep_takes_its_seconds_and_items_run_one_after_another(rehearse):
    r = rehearse(
        """
        chain: sleeps
        steps:
          each:
            run: core.util.sleep
            for_each: [2, 3, 0.5]
            concurrency: 3
            with: {seconds: "{{ item }}"}
            next:
              - publish: {r: "{{ result }}"}
        output: "{{ ctx.r }}"
        """
    )
    assert r.elapsed == 5.5
    assert r.output == [None, None, None]


def test_waits_ending_during_a_sleep_queue_in_the_order_they_end_before_its_successors(rehearse):
    r = rehearse(
        """
        chain: delays-during-sleep
        steps:
          start:
            run: core.util.noop
            next:
              - do: [d3, d1, s, d9]
          d3:
            run: core.util.noop
            delay: 3s
          d1:
            run: core.util.noop
            delay: 1s
          d9:
            run: core.util.noop
            delay: 9s
          s:
            run: core.util.sleep
            with: {seconds: 5}
            next:
              - do: after
          after:
            run: core.util.noop
        """
    )
    assert r.sequence == ["start", "s", "d1", "d3", "after", "d9"]
    assert r.elapsed == 9


def test_the_clock_jumps_to_the_earliest_wait_when_the_queue_is_empty(rehearse):
    r = rehearse(
        """
        chain: jump
        steps:
          start:
            run: core.util.noop
            next:
              - do: [late, early]
          late:
            run: core.util.noop
            delay: 1m
          early:
            run: core.util.noop
            delay: 250ms
            next:
              - do: then
          then:
            run: core.util.noop
            delay: 2s
        """
    )
    assert r.sequence == ["start", "early", "then", "late"]
    assert r.elapsed == 60


def test_waits_ending_at_the_same_instant_keep_their_creation_order(rehearse):
    # z's and a's delays are created when start finishes (z first); r's retry wait is created
    # later, when r fails. All three end at 2 s.
    r = rehearse(
        """
        chain: same-instant
        steps:
          start:
            run: core.util.noop
            next:
              - do: [r, z, a]
          r:
            run: core.util.echo
            with: {message: "r{{ attempt }}"}
            retry: {count: 1, delay: 2s, jitter: false}
          z:
            run: core.util.noop
            delay: 2s
          a:
            run: core.util.noop
            delay: 2s
        output: "{{ result }}"
        """,
        mocks={"r": [{"status": "failed", "error": "x"}]},
    )
    assert r.sequence == ["start", "r", "z", "a", "r"]
    assert r.output == "r2"
    assert r.elapsed == 2


def test_retry_backoff_is_capped_by_max_delay_on_the_virtual_clock(rehearse):
    r = rehearse(
        """
        chain: backoff
        steps:
          call:
            run: core.util.fail
            retry: {count: 4, delay: 1s, backoff: 3.0, max_delay: 5s, jitter: false}
        """
    )
    assert r.sequence == ["call"] * 5
    assert r.elapsed == 1 + 3 + 5 + 5


def test_retry_defaults_and_jitter_is_not_applied(rehearse):
    # defaults: delay 1s, backoff 2.0, jitter true (not applied on the virtual clock)
    r = rehearse(
        """
        chain: retry-defaults
        steps:
          call:
            run: core.util.fail
            retry: {count: 3}
        """
    )
    assert r.sequence == ["call"] * 4
    assert r.elapsed == 1 + 2 + 4


def test_retry_wait_ending_during_a_sleep_runs_before_the_sleep_s_successor(rehearse):
    r = rehearse(
        """
        chain: retry-vs-sleep
        steps:
          start:
            run: core.util.noop
            next:
              - do: [r, s]
          r:
            run: core.util.fail
            retry: {count: 2, delay: 1s, backoff: 4.0, jitter: false}
            next:
              - when: failed
                do: r_done
          r_done: {run: core.util.noop}
          s:
            run: core.util.sleep
            with: {seconds: 3}
            next:
              - do: s2
          s2: {run: core.util.noop}
        """
    )
    # r fails at 0; its retry ends at 1, during the sleep, and is queued before s2. That
    # attempt starts when the sleep is over (3 s) and fails: the next one waits 1 * 4 s.
    assert r.sequence == ["start", "r", "s", "r", "s2", "r", "r_done"]
    assert r.elapsed == 3 + 4


def test_timeout_shorter_than_a_sleep_fails_the_attempt_after_the_timeout(rehearse):
    r = rehearse(
        """
        chain: timeout
        steps:
          nap:
            run: core.util.sleep
            with: {seconds: 10}
            timeout: 3s
            next:
              - when: failed
                publish: {err: "{{ error }}"}
                do: after
          after:
            run: core.util.noop
        output: "{{ ctx.err }}"
        """
    )
    assert r.status == "succeeded"
    assert r.sequence == ["nap", "after"]
    assert r.elapsed == 3
    assert r.output["type"] == "Timeout" and r.output["step"] == "nap"


def test_waits_ending_after_a_timeout_are_not_queued_before_its_handler(rehearse):
    # The attempt ends at its timeout (3 s), not at the sleep's end (10 s): the delay that
    # ends at 5 s comes after the handler.
    r = rehearse(
        """
        chain: timeout-order
        steps:
          start:
            run: core.util.noop
            next:
              - do: [nap, d5]
          d5:
            run: core.util.noop
            delay: 5s
          nap:
            run: core.util.sleep
            with: {seconds: 10}
            timeout: 3s
            next:
              - when: failed
                do: handler
          handler: {run: core.util.noop}
        """
    )
    assert r.sequence == ["start", "nap", "handler", "d5"]
    assert r.elapsed == 5


def test_timed_out_attempts_are_retried(rehearse):
    r = rehearse(
        """
        chain: timeout-retry
        steps:
          nap:
            run: core.util.sleep
            with: {seconds: "{{ 10 if attempt == 1 else 1 }}"}
            timeout: 3s
            retry: {count: 2, delay: 2s, jitter: false, when: "error.type == 'Timeout'"}
        output: "{{ result }}"
        """
    )
    assert r.status == "succeeded"
    assert r.sequence == ["nap", "nap"]
    assert r.elapsed == 3 + 2 + 1


def test_timeout_unhandled_fails_the_run_with_timeout(rehearse):
    r = rehearse(
        """
        chain: timeout-unhandled
        steps:
          nap:
            run: core.util.sleep
            with: {seconds: 60}
            timeout: 500ms
        """
    )
    assert r.status == "failed"
    assert r.error["type"] == "Timeout" and r.error["step"] == "nap"
    assert r.elapsed == 0.5


def test_priority_does_not_reorder_the_deterministic_queue(rehearse):
    r = rehearse(
        """
        chain: priority
        steps:
          start:
            run: core.util.noop
            next:
              - do: [low, high]
          low: {run: core.util.noop}
          high:
            run: core.util.noop
            priority: 9
        """
    )
    assert r.sequence == ["start", "low", "high"]


def test_run_started_at_is_the_virtual_clock(rehearse):
    r = rehearse(
        """
        chain: clock
        steps:
          a: {run: core.util.noop}
        output: "{{ run.started_at }}"
        """
    )
    assert r.output == "2000-01-01T00:00:00Z"
    assert EPOCH == 946684800.0


# ------------------------------------------------------------------------------ sub-chains

GREETER = """
chain: greeter
input:
  type: object
  required: [name]
steps:
  greet:
    run: core.util.echo
    with: {message: "Hello, {{ input.name }}"}
    next:
      - when: input.name == 'nobody'
        do: fail
output:
  greeting: "{{ result }}"
  started: "{{ run.started_at }}"
"""


def test_sub_chain_result_is_its_output_and_its_steps_are_not_parent_step_runs(rehearse):
    r = rehearse(
        """
        chain: parent
        max_steps: 2
        steps:
          nap:
            run: core.util.sleep
            with: {seconds: 90}
            next:
              - do: call
          call:
            run: chain:greeter
            with: {name: Ada}
        output: "{{ result }}"
        """,
        subs={"greeter": GREETER},
    )
    assert r.status == "succeeded"
    assert r.sequence == ["nap", "call"]
    assert r.step_runs == 2
    assert r.output == {"greeting": "Hello, Ada", "started": "2000-01-01T00:01:30Z"}


def test_sub_chain_without_output_gives_null(rehearse):
    r = rehearse(
        """
        chain: parent
        steps:
          call:
            run: chain:quiet
            next:
              - publish: {got: "{{ result }}"}
        output: {got: "{{ ctx.got }}"}
        """,
        subs={"quiet": "chain: quiet\nsteps:\n  a: {run: core.util.echo, with: {message: x}}\n"},
    )
    assert r.output == {"got": None}


def test_sub_chain_failure_propagates_type_and_message_with_the_parent_step(rehearse):
    parent = """
        chain: parent
        steps:
          call:
            run: chain:greeter
            with: {name: "{{ input.name }}"}
        """
    r = rehearse(parent, input={"name": "nobody"}, subs={"greeter": GREETER})
    assert r.status == "failed"
    assert r.sequence == ["call"]
    assert r.error == {"type": "FailReached", "message": "fail reached from greet", "step": "call"}
    r = rehearse(parent, input={"name": None}, subs={"greeter": GREETER.replace("required: [name]", "required: [name]\n  properties: {name: {type: string}}")})
    assert r.error["type"] == "InputInvalid" and r.error["step"] == "call"


def test_sub_chain_failure_is_retried_and_handled_like_any_step_failure(rehearse):
    r = rehearse(
        """
        chain: parent
        steps:
          call:
            run: chain:flaky
            with: {attempt: "{{ attempt }}"}
            retry: {count: 1, delay: 1s, jitter: false}
            next:
              - publish: {got: "{{ result }}"}
        output: "{{ ctx.got }}"
        """,
        subs={"flaky": """
            chain: flaky
            steps:
              check:
                run: core.util.echo
                with: {message: "{{ input.attempt }}"}
                next:
                  - when: result < 2
                    do: boom
              boom:
                run: core.util.fail
                with: {message: "too early"}
            output: {attempt: "{{ input.attempt }}"}
            """},
    )
    assert r.status == "succeeded"
    assert r.sequence == ["call", "call"]
    assert r.output == {"attempt": 2}
    assert r.elapsed == 1


def test_sub_chain_timeout_covers_the_whole_sub_run(rehearse):
    r = rehearse(
        """
        chain: parent
        steps:
          call:
            run: chain:slow
            timeout: 3s
        """,
        subs={"slow": """
            chain: slow
            steps:
              a:
                run: core.util.sleep
                with: {seconds: 2}
                next:
                  - do: b
              b:
                run: core.util.sleep
                with: {seconds: 2}
            """},
    )
    assert r.status == "failed"
    assert r.error["type"] == "Timeout" and r.error["step"] == "call"
    assert r.elapsed == 3


NEST = """
chain: nest
input:
  type: object
  required: [n, limit]
steps:
  go:
    run: core.util.noop
    next:
      - when: input.n < input.limit
        do: deeper
      - when: input.n >= input.limit
        publish: {deepest: "{{ input.n }}"}
  deeper:
    run: chain:nest
    with: {n: "{{ input.n + 1 }}", limit: "{{ input.limit }}"}
    next:
      - publish: {deepest: "{{ result.deepest }}"}
output: {deepest: "{{ ctx.deepest }}"}
"""


def test_sub_chains_nest_eight_deep(rehearse):
    r = rehearse(NEST, input={"n": 0, "limit": 8}, subs={"nest": NEST})
    assert r.status == "succeeded"
    assert r.output == {"deepest": 8}
    assert r.sequence == ["go", "deeper"]


def test_sub_chain_nesting_deeper_than_eight_fails_the_step(rehearse):
    r = rehearse(NEST, input={"n": 0, "limit": 9}, subs={"nest": NEST})
    assert r.status == "failed"
    assert r.error["type"] == "SubChainDepthExceeded"
    assert r.error["step"] == "deeper"
    assert "8" in r.error["message"]
    # the failed branch never published `deepest`: the output does not render, the error stays
    assert r.output is None


def test_mocking_a_sub_chain_step_replaces_the_whole_sub_run(rehearse):
    r = rehearse(
        """
        chain: parent
        steps:
          call:
            run: chain:slow
            with: {x: "{{ input.x }}"}
            next:
              - do: greet
          greet:
            run: core.util.echo
            with: {message: real}
        output: {sub: "{{ ctx.get('sub') }}", last: "{{ result }}"}
        """,
        input={"x": 1},
        mocks={"call": [{"result": "mocked"}], "greet": [{"result": "greet mocked"}]},
        subs={"slow": """
            chain: slow
            steps:
              greet:
                run: core.util.sleep
                with: {seconds: 100}
            """},
    )
    assert r.sequence == ["call", "greet"]
    assert r.elapsed == 0
    assert r.output == {"sub": None, "last": "greet mocked"}


def test_parent_mocks_do_not_apply_to_a_sub_chain_s_steps(rehearse):
    r = rehearse(
        """
        chain: parent
        steps:
          greet:
            run: core.util.echo
            with: {message: parent}
            next:
              - do: call
          call:
            run: chain:greeter
            with: {name: Bo}
        output: "{{ result.greeting }}"
        """,
        mocks={"greet": [{"result": "one"}, {"result": "two"}]},
        subs={"greeter": GREETER},
    )
    assert r.output == "Hello, Bo"


# ------------------------------------------------------------------------------ mocks


def test_mocks_are_consumed_per_step_run_across_split_instances(rehearse):
    r = rehearse(
        """
        chain: split-mocks
        steps:
          start:
            run: core.util.noop
            next:
              - publish: {who: one}
                do: shared
              - publish: {who: two}
                do: shared
              - publish: {who: three}
                do: shared
          shared:
            run: core.util.echo
            with: {message: "real {{ ctx.who }}"}
            next:
              - publish: {said: "{{ ctx.get('said', []) + [result] }}"}
        output: "{{ result }}"
        """,
        mocks={"shared": [{"result": "m1"}, {"status": "failed", "error": "m2", "result": "partial"}]},
    )
    # the failed second instance has no firing edge (default `succeeded`): fail-fast
    assert r.sequence == ["start", "shared", "shared"]
    assert r.status == "failed"
    assert r.output == "partial"


def test_used_up_mocks_run_the_real_function(rehearse):
    r = rehearse(
        """
        chain: used-up
        steps:
          call:
            run: core.util.echo
            with: {message: "real {{ attempt }}"}
            retry: {count: 3, delay: 1s, jitter: false}
        output: "{{ result }}"
        """,
        mocks={"call": [{"status": "failed", "error": "a"}, {"status": "failed", "error": "b"}]},
    )
    assert r.sequence == ["call"] * 3
    assert r.output == "real 3"


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ({"status": "failed"}, {"type": "StepFailed", "step": "s"}),
        ({"status": "failed", "error": "text"}, {"type": "StepFailed", "message": "text", "step": "s"}),
        ({"status": "failed", "error": {"message": "untyped"}}, {"type": "StepFailed", "message": "untyped", "step": "s"}),
        ({"status": "failed", "error": {"type": "Custom", "message": "typed"}}, {"type": "Custom", "message": "typed", "step": "s"}),
    ],
)
def test_mock_failure_types(rehearse, entry, error):
    r = rehearse("chain: m\nsteps:\n  s: {run: core.util.noop}\n", mocks={"s": [entry]})
    assert r.status == "failed"
    assert {k: r.error[k] for k in error} == error


def test_empty_mock_entry_succeeds_with_null_and_with_still_renders(rehearse):
    ok = rehearse(
        """
        chain: m
        steps:
          s:
            run: core.util.echo
            with: {message: real}
        output: {r: "{{ result }}"}
        """,
        mocks={"s": [{}]},
    )
    assert (ok.status, ok.output) == ("succeeded", {"r": None})
    bad = rehearse(
        """
        chain: m
        steps:
          s:
            run: core.util.echo
            with: {message: "{{ input.absent.x }}"}
        """,
        mocks={"s": [{"result": 1}]},
    )
    assert bad.error["type"] == "ExpressionError"
    assert bad.sequence == ["s"]


def test_a_rendered_argument_outside_its_literal_type_is_invalid_arguments(rehearse):
    r = rehearse(
        """
        chain: plain
        steps:
          s:
            run: core.util.log
            with: {message: x, level: "{{ 'nope' }}"}
        """
    )
    assert r.status == "failed"
    assert r.error["type"] == "InvalidArguments" and r.error["step"] == "s"
    assert "argument 'level' of core.util.log expects one of 'debug', 'info', 'warning', 'error', got a string" in r.error["message"]


# ------------------------------------------------------------------------------ results and rendered values must be JSON


def _probe_registry() -> Registry:
    module = types.ModuleType("probe")

    def not_json() -> object:
        """Return a set."""
        return {1, 2}

    def pair() -> object:
        """Return a tuple."""
        return ("a", 1)

    module.not_json = not_json
    module.pair = pair
    module.__all__ = ["not_json", "pair"]
    core = Registry.discover().extensions["core"]
    return Registry([core, Extension("probe", runners=[module])])


def test_a_result_that_is_not_json_fails_the_step_with_result_invalid():
    registry = _probe_registry()
    chain, _ = load_chain("rv", text=textwrap.dedent("""
        chain: rv
        steps:
          t:
            run: probe.probe.pair
            next:
              - do: s
          s:
            run: probe.probe.not_json
            next:
              - when: failed
                publish: {err: "{{ error.type }}", pair: "{{ result }}"}
        output: "{{ ctx }}"
        """), functions=registry.catalog())
    r = VirtualRun(ChainProgram(chain), registry).run({})
    assert r.status == "succeeded"
    assert r.output == {"err": "ResultInvalid", "pair": None}
    chain2, _ = load_chain("rv2", text="chain: rv2\nsteps:\n  t: {run: probe.probe.pair}\noutput: '{{ result }}'\n",
                           functions=registry.catalog())
    assert VirtualRun(ChainProgram(chain2), registry).run({}).output == ["a", 1]


def test_a_rendered_value_that_is_not_json_is_an_expression_error(rehearse):
    r = rehearse(
        """
        chain: not-json
        steps:
          a:
            run: core.util.noop
            next:
              - publish: {big: "{{ input.big * input.big }}"}
        output: "{{ ctx }}"
        """,
        input={"big": 1e308},
    )
    assert r.status == "failed"
    assert r.error["type"] == "ExpressionError" and "edge 0" in r.error["message"]
    json.dumps(r.output, allow_nan=False)


# ------------------------------------------------------------------------------ rehearsal files


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    _write(tmp_path / "chains" / "main.yaml", """
        chain: main
        steps:
          call:
            run: chain:helper
            with: {n: "{{ input.n }}"}
            next:
              - publish: {doubled: "{{ result.doubled }}"}
                do: after
          after:
            run: core.util.echo
            with: {message: "{{ ctx.doubled }}"}
        output: {doubled: "{{ ctx.doubled }}", text: "{{ result | string }}"}
        """)
    _write(tmp_path / "chains" / "helper.yaml", """
        chain: helper
        steps:
          calc:
            run: core.util.set
            with: {doubled: "{{ input.n * 2 }}"}
        output: {doubled: "{{ result.doubled }}"}
        """)
    return tmp_path


def test_rehearsal_file_resolves_sub_chains_in_the_chain_s_folder(suite, registry):
    path = _write(suite / "tests" / "main.yaml", """
        chain: ../chains/main.yaml
        input: {n: 21}
        expect:
          status: succeeded
          sequence: [call, after]
          output: {doubled: 42.0, text: "42"}
        """)
    report = run_rehearsal(path, registry)
    assert report.passed, report.failures
    assert report.name == "main"
    assert report.result.sequence == ["call", "after"]


def test_inline_chain_resolves_sub_chains_in_the_rehearsal_s_folder(suite, registry):
    path = _write(suite / "chains" / "inline.test.yaml", """
        rehearsal: inline
        chain:
          chain: inline-parent
          steps:
            call:
              run: chain:helper
              with: {n: 5}
          output: "{{ result.doubled }}"
        expect:
          status: succeeded
          sequence: [call]
          output: 10
        """)
    report = run_rehearsal(path, registry)
    assert report.passed, (report.failures, [str(i) for i in report.issues])
    assert report.name == "inline"


@pytest.mark.parametrize(
    ("expect", "fragment"),
    [
        ("status: failed", "status: expected failed"),
        ("status: succeeded\n  sequence: [call]", "sequence: expected ['call']"),
        ("status: succeeded\n  output: {doubled: '42', text: '42'}", "output:"),
        ("status: succeeded\n  output: {doubled: 42, text: 42}", "output:"),
        ("status: succeeded\n  output: {doubled: 42}", "output:"),
        ("status: succeeded\n  error: {type: X}", "error:"),
    ],
)
def test_rehearsal_expectations_that_do_not_hold_fail(suite, registry, expect, fragment):
    path = suite / "tests" / "bad.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"chain: ../chains/main.yaml\ninput: {{n: 21}}\nexpect:\n  {expect}\n")
    report = run_rehearsal(path, registry)
    assert not report.passed
    assert len(report.failures) == 1 and fragment in report.failures[0], report.failures


def test_rehearsal_whose_sub_chain_file_does_not_validate_fails_with_its_issues(suite, registry):
    _write(suite / "chains" / "helper.yaml", """
        chain: helper
        steps:
          calc:
            run: core.util.noop
            nxt: []
        """)
    path = _write(suite / "tests" / "sub-broken.yaml", """
        chain: ../chains/main.yaml
        input: {n: 1}
        expect:
          status: failed
          sequence: [call]
          error: {type: StepFailed, step: call}
        """)
    report = run_rehearsal(path, registry)
    assert not report.passed
    assert any("nxt" in str(i) for i in report.issues)


def test_rehearsal_error_is_a_subset_match(suite, registry):
    path = _write(suite / "tests" / "err.yaml", """
        chain: ../chains/main.yaml
        input: {n: 1}
        mocks:
          after: [{status: failed, error: {type: Nope, message: broke}}]
        expect:
          status: failed
          sequence: [call, after]
          output: {doubled: 2, text: "None"}
          error: {type: Nope, step: after}
        """)
    report = run_rehearsal(path, registry)
    assert report.passed, report.failures


def test_rehearsal_with_unknown_mock_step_or_invalid_chain_fails_with_issues(suite, registry):
    unknown = _write(suite / "tests" / "unknown.yaml", """
        chain: ../chains/main.yaml
        mocks: {nosuch: [{result: 1}]}
        expect: {status: succeeded}
        """)
    report = run_rehearsal(unknown, registry)
    assert not report.passed and "nosuch" in report.failures[0]
    assert report.issues
    broken = _write(suite / "tests" / "broken.yaml", """
        chain:
          chain: broken
          steps:
            a: {run: core.util.noop, nxt: []}
        expect: {status: succeeded}
        """)
    report = run_rehearsal(broken, registry)
    assert not report.passed
    assert any("nxt" in str(i) for i in report.issues)
    misspelt = _write(suite / "tests" / "misspelt.yaml", """
        chain: ../chains/main.yaml
        expect: {status: succeeded, sequnce: []}
        """)
    report = run_rehearsal(misspelt, registry)
    assert not report.passed and report.issues


def test_json_equality_of_outputs():
    assert json_equal(2, 2.0)
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert not json_equal("42", 42)
    assert not json_equal(True, 1)
    assert not json_equal(False, 0)
    assert not json_equal(None, {})
    assert not json_equal({"a": 1}, {"a": 1, "b": None})
    assert not json_equal([1, 2], [2, 1])


def test_chain_test_command_counts_passed_and_failed(suite, registry, capsys):
    from legion.engine.cli.main import main

    _write(suite / "tests" / "ok.yaml", """
        chain: ../chains/main.yaml
        input: {n: 1}
        expect: {status: succeeded, sequence: [call, after]}
        """)
    _write(suite / "tests" / "ko.yaml", """
        chain: ../chains/main.yaml
        input: {n: 1}
        expect: {status: failed}
        """)
    code = main(["chain", "test", str(suite / "tests")])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 1
    assert out[-1] == "1 passed, 1 failed"
    code = main(["chain", "test", str(suite / "tests" / "ok.yaml"), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (data["data"]["passed"], data["data"]["failed"]) == (1, 0)


def test_waits_ending_at_the_same_instant_all_join_the_queue_before_any_runs(rehearse):
    r = rehearse(
        """
        chain: same-instant
        steps:
          a: {run: core.util.noop, delay: 1s, next: [{do: a_next}]}
          b: {run: core.util.noop, delay: 1s, next: [{do: b_next}]}
          a_next: {run: core.util.noop}
          b_next: {run: core.util.noop}
        """
    )
    assert (r.sequence, r.elapsed) == (["a", "b", "a_next", "b_next"], 1)
