"""Chain semantics (spec sections 2-4) beyond the conformance suite.

Most tests run a chain written inline on the deterministic driver and assert the exact trace,
output and error; the last ones drive the conductor by hand (out of FIFO order, and through a
JSON round trip of its state) to show the semantics live in the conductor, not the driver.
"""

from __future__ import annotations

import json
import random
from collections import deque
from typing import Any

import pytest

from legion.dsl.model import MockEntry
from legion.engine.conductor import (
    Begin,
    ChainProgram,
    Conductor,
    Ended,
    Queue,
    RunState,
    Schedule,
)
from legion.engine.invoke import call
from legion.engine.rehearsal import VirtualRun

# ------------------------------------------------------------------------------ for_each


def test_for_each_error_is_the_lowest_index_failed_item_not_the_first_to_fail(rehearse):
    # Item 0 fails, is retried (retry.when matches its message) and fails again only after
    # item 1 has failed for good: the step's error is still item 0's.
    r = rehearse(
        """
        chain: fe-lowest
        steps:
          each:
            run: core.util.echo
            for_each: [a, b, c]
            concurrency: 3
            with: {message: "{{ item }}"}
            retry: {count: 1, delay: 1s, jitter: false, when: "error.message == 'again'"}
            next:
              - when: failed
                publish:
                  err: "{{ error }}"
                  results: "{{ result }}"
        output:
          err: "{{ ctx.err }}"
          results: "{{ ctx.results }}"
        """,
        mocks={"each": [
            {"status": "failed", "error": "again"},          # item 0, attempt 1
            {"status": "failed", "error": "item 1 broke"},   # item 1
            {"result": "C"},                                 # item 2
            {"status": "failed", "error": {"type": "Late", "message": "item 0 broke"}},  # item 0, attempt 2
        ]},
    )
    assert r.status == "succeeded"
    assert r.sequence == ["each", "each", "each", "each"]
    assert r.output == {
        "err": {"type": "Late", "message": "item 0 broke", "step": "each"},
        "results": [None, None, "C"],
    }


def test_for_each_failed_item_keeps_its_result_when_it_has_one(rehearse):
    r = rehearse(
        """
        chain: fe-failed-result
        steps:
          each:
            run: core.util.echo
            for_each: [1, 2, 3]
            concurrency: 1
            with: {message: "{{ item }}"}
        output:
          last: "{{ result }}"
        """,
        mocks={"each": [{"status": "failed", "error": "x", "result": {"partial": 1}}, {"result": 20}]},
    )
    # every item runs although the first failed; the unhandled failure then fails the run
    assert r.sequence == ["each", "each", "each"]
    assert r.status == "failed"
    assert r.error == {"type": "StepFailed", "message": "x", "step": "each"}
    assert r.output == {"last": [{"partial": 1}, 20, 3]}


def test_for_each_every_item_runs_then_the_step_fails(rehearse):
    r = rehearse(
        """
        chain: fe-all-run
        steps:
          each:
            run: core.util.fail
            for_each: "{{ ['p', 'q', 'r'] }}"
            concurrency: 2
            with: {message: "bad {{ index }} {{ item }}"}
          never:
            run: core.util.noop
            delay: 1s
        """
    )
    assert r.status == "failed"
    assert r.sequence == ["each", "each", "each"]
    assert r.error == {"type": "Failure", "message": "bad 0 p", "step": "each"}


def test_for_each_empty_list_finishes_at_once_before_the_next_target(rehearse):
    # `empty` is the first target of start's edge; its edges fire before `other` is queued.
    r = rehearse(
        """
        chain: fe-empty
        steps:
          start:
            run: core.util.noop
            next:
              - do: [empty, other]
          empty:
            run: core.util.echo
            for_each: "{{ [] }}"
            concurrency: 2
            with: {message: "{{ item }}"}
            next:
              - publish: {got: "{{ result }}"}
                do: after
          other:
            run: core.util.noop
          after:
            run: core.util.echo
            with: {message: "{{ result }}"}
        output:
          got: "{{ ctx.got }}"
        """
    )
    assert r.status == "succeeded"
    assert r.sequence == ["start", "after", "other"]
    assert r.output == {"got": []}
    assert r.step_runs == 3  # the empty step itself is no step run


def test_for_each_empty_list_as_a_start_step(rehearse):
    r = rehearse(
        """
        chain: fe-empty-start
        steps:
          empty:
            run: core.util.noop
            for_each: []
            concurrency: 1
            next:
              - do: after
          second:
            run: core.util.noop
          after:
            run: core.util.echo
            with: {message: "{{ result }}"}
        output:
          last: "{{ result }}"
        """
    )
    assert r.sequence == ["after", "second"]
    assert r.output == {"last": None}


@pytest.mark.parametrize("expr", ["{{ 5 }}", "{{ 'abc' }}", "{{ {'a': 1} }}", "{{ ctx.get('missing') }}"])
def test_for_each_that_is_not_a_list_is_an_expression_error(rehearse, expr):
    r = rehearse(
        f"""
        chain: fe-not-list
        steps:
          start:
            run: core.util.noop
            next:
              - do: [bad, other]
          bad:
            run: core.util.noop
            for_each: "{expr}"
            concurrency: 1
            next:
              - when: failed
                do: other
          other:
            run: core.util.noop
        """
    )
    assert r.status == "failed"
    assert r.sequence == ["start"]  # fail-fast: `other`, the next target, never starts
    assert r.error["type"] == "ExpressionError"
    assert r.error["step"] == "bad"
    assert "fe-not-list" in r.error["message"] and "bad" in r.error["message"]


def test_for_each_not_a_list_message_names_the_expression(rehearse):
    r = rehearse(
        """
        chain: fe-message
        steps:
          start:
            run: core.util.noop
            next:
              - do: bad
          bad:
            run: core.util.noop
            for_each: "{{ ctx.get('count', 5) }}"
            concurrency: 1
        """
    )
    assert r.error["type"] == "ExpressionError"
    assert "fe-message" in r.error["message"] and "bad" in r.error["message"]
    assert "ctx.get('count', 5)" in r.error["message"], r.error["message"]


def test_run_failing_before_its_first_step_run_has_null_output(rehearse):
    r = rehearse(
        """
        chain: fe-before-first
        steps:
          bad:
            run: core.util.noop
            for_each: "{{ input.items }}"
            concurrency: 1
        output: {constant: 1}
        """,
        input={"items": "not a list"},
    )
    assert r.status == "failed"
    assert r.error["type"] == "ExpressionError"
    assert r.sequence == []
    assert r.output is None


def test_for_each_items_are_queued_in_the_step_s_place(rehearse):
    r = rehearse(
        """
        chain: fe-place
        steps:
          s:
            run: core.util.noop
            next:
              - publish: {items: [x, y, z]}
                do: [before, each, after]
          before: {run: core.util.noop}
          each:
            run: core.util.echo
            for_each: "{{ ctx.items }}"
            with: {message: "{{ item }}"}
            next:
              - when: len(ctx.items) == 3 and result
                publish: {got: "{{ result }}"}
              - when: "[]"
                do: never
          after: {run: core.util.noop}
          never: {run: core.util.noop}
        output: "{{ ctx.got }}"
        """
    )
    # `ctx.items` reads the key `items`, not the mapping method, in templates and conditions
    assert r.sequence == ["s", "before", "each", "each", "each", "after"]
    assert r.output == ["x", "y", "z"]


def test_for_each_index_is_zero_based_and_items_consume_mocks_in_item_order(rehearse):
    r = rehearse(
        """
        chain: fe-index
        steps:
          each:
            run: core.util.echo
            for_each: "{{ input.xs }}"
            concurrency: 2
            with: {message: "{{ index }}={{ item }}"}
            next:
              - publish: {got: "{{ result }}"}
        output: "{{ ctx.got }}"
        """,
        input={"xs": ["a", "b", "c", "d"]},
        mocks={"each": [{"result": "m0"}, {"result": "m1"}]},
    )
    assert r.output == ["m0", "m1", "2=c", "3=d"]


def test_for_each_concurrency_one_waits_for_an_item_s_retries(rehearse):
    # With concurrency 1 the second item is queued only when the first has finished after its
    # retry; the side branch runs meanwhile.
    r = rehearse(
        """
        chain: fe-conc-retry
        steps:
          start:
            run: core.util.noop
            next:
              - do: [each, side]
          each:
            run: core.util.echo
            for_each: [x, y]
            concurrency: 1
            with: {message: "{{ item }}{{ attempt }}"}
            retry: {count: 1, delay: 2s, jitter: false}
            next:
              - publish: {got: "{{ result }}"}
          side:
            run: core.util.sleep
            with: {seconds: 5}
            next:
              - do: side2
          side2:
            run: core.util.noop
        output: "{{ ctx.got }}"
        """,
        mocks={"each": [{"status": "failed", "error": "once"}]},
    )
    # x fails at 0, retry due at 2 (during side's 5 s sleep) runs before side2; y after it
    assert r.sequence == ["start", "each", "side", "each", "side2", "each"]
    assert r.output == ["x2", "y1"]
    assert r.elapsed == 5


def test_for_each_items_render_at_readiness_with_the_predecessor_s_names(rehearse):
    r = rehearse(
        """
        chain: fe-names
        steps:
          make:
            run: core.util.echo
            with: {message: [3, 4]}
            next:
              - publish: {k: 10}
                do: each
          each:
            run: core.util.echo
            for_each: "{{ result }}"
            concurrency: 5
            with: {message: "{{ item * ctx.k + index }}:{{ status }}:{{ attempt }}"}
            next:
              - publish: {got: "{{ result }}"}
        output: "{{ ctx.got }}"
        """
    )
    assert r.output == ["30:succeeded:1", "41:succeeded:1"]


def test_for_each_on_a_delayed_step_renders_when_the_delay_ends(rehearse):
    # The bad for_each fails the run only when its delay is over: the other branch ran.
    r = rehearse(
        """
        chain: fe-delayed
        steps:
          start:
            run: core.util.noop
            next:
              - do: [bad, a]
          bad:
            run: core.util.noop
            delay: 3s
            for_each: "{{ 7 }}"
            concurrency: 1
          a:
            run: core.util.noop
            next:
              - do: b
          b:
            run: core.util.noop
        """
    )
    assert r.status == "failed"
    assert r.error["type"] == "ExpressionError" and r.error["step"] == "bad"
    assert r.sequence == ["start", "a", "b"]
    assert r.elapsed == 3


# ------------------------------------------------------------------------------ retries


def test_retry_count_is_retries_after_the_first_attempt(rehearse):
    r = rehearse(
        """
        chain: retry-count
        steps:
          call:
            run: core.util.fail
            with: {message: "attempt {{ attempt }}"}
            retry: {count: 3, delay: 1s, backoff: 1.0, jitter: false}
        """
    )
    assert r.sequence == ["call"] * 4
    assert r.error == {"type": "Failure", "message": "attempt 4", "step": "call"}


def test_retry_when_sees_the_failed_attempt(rehearse):
    # retry.when reads the failed attempt's result, error and attempt; it stops retrying as
    # soon as it does not hold, and the edges then see that last attempt.
    r = rehearse(
        """
        chain: retry-when
        steps:
          call:
            run: core.util.echo
            with: {message: hi}
            retry:
              count: 5
              delay: 1s
              jitter: false
              when: "error.type == 'Busy' and result.code == 503 and attempt < 3 and failed and status == 'failed'"
            next:
              - when: failed
                publish: {last: "{{ [attempt, error.type, result] }}"}
        output: "{{ ctx.last }}"
        """,
        mocks={"call": [
            {"status": "failed", "error": {"type": "Busy", "message": "b"}, "result": {"code": 503}},
            {"status": "failed", "error": {"type": "Busy", "message": "b"}, "result": {"code": 503}},
            {"status": "failed", "error": {"type": "Busy", "message": "b"}, "result": {"code": 503}},
        ]},
    )
    assert r.sequence == ["call", "call", "call"]
    assert r.status == "succeeded"
    assert r.output == [3, "Busy", {"code": 503}]


def test_retry_when_false_means_no_retry_and_edges_handle_it(rehearse):
    r = rehearse(
        """
        chain: retry-when-false
        steps:
          call:
            run: core.util.fail
            with: {message: fatal}
            retry: {count: 3, jitter: false, when: "error.type == 'Transient'"}
            next:
              - when: failed
                do: handler
          handler:
            run: core.util.echo
            with: {message: "{{ error.message }}/{{ attempt }}"}
        output: "{{ result }}"
        """
    )
    assert r.sequence == ["call", "handler"]
    assert r.output == "fatal/1"
    assert r.elapsed == 0


def test_retry_attempt_with_sees_the_predecessor_not_the_failed_attempt(rehearse):
    r = rehearse(
        """
        chain: retry-with-scope
        steps:
          first:
            run: core.util.echo
            with: {message: from-first}
            next:
              - do: call
          call:
            run: core.util.echo
            with: {message: "{{ result }}#{{ attempt }}#{{ status }}"}
            retry: {count: 1, delay: 1s, jitter: false}
        output: "{{ result }}"
        """,
        mocks={"call": [{"status": "failed", "error": "x", "result": "failed-attempt"}]},
    )
    assert r.output == "from-first#2#succeeded"


# ------------------------------------------------------------------------------ edges, context, output


def test_all_edges_are_evaluated_and_targets_queue_in_edge_then_do_order(rehearse):
    r = rehearse(
        """
        chain: edge-order
        steps:
          s:
            run: core.util.noop
            next:
              - do: [c, a]
              - when: true
                do: b
              - when: false
                do: d
              - when: succeeded and result == None
                do: [d, a]
          a: {run: core.util.noop}
          b: {run: core.util.noop}
          c: {run: core.util.noop}
          d: {run: core.util.noop}
        """
    )
    assert r.sequence == ["s", "c", "a", "b", "d", "a"]


def test_publish_renders_against_the_context_before_the_edge(rehearse):
    r = rehearse(
        """
        chain: publish-isolation
        vars: {n: 1}
        steps:
          s:
            run: core.util.noop
            next:
              - publish: {n: "{{ ctx.n + 1 }}", m: "{{ ctx.n }}", seen: "{{ ctx.get('x', 'unset') }}", x: 1}
                do: p
              - publish: {other: "{{ ctx.get('x', 'unset') }}:{{ ctx.n }}"}
                do: q
          p:
            run: core.util.set
            with: {ctx: "{{ ctx }}"}
          q:
            run: core.util.set
            with: {ctx: "{{ ctx }}"}
        output: "{{ result }}"
        """
    )
    assert r.sequence == ["s", "p", "q"]
    # q's context comes from the second edge alone: nothing of the first edge's publish
    assert r.output == {"ctx": {"n": 1, "other": "unset:1"}}


def test_publish_values_do_not_see_each_other(rehearse):
    r = rehearse(
        """
        chain: publish-siblings
        vars: {n: 1}
        steps:
          s:
            run: core.util.noop
            next:
              - publish: {n: "{{ ctx.n + 1 }}", m: "{{ ctx.n }}", x: 1, seen: "{{ ctx.get('x', 'unset') }}"}
        output: "{{ ctx }}"
        """
    )
    assert r.output == {"n": 2, "m": 1, "x": 1, "seen": "unset"}


def test_start_names_the_only_start_steps_in_order(rehearse):
    r = rehearse(
        """
        chain: start-list
        start: [b, a]
        steps:
          a: {run: core.util.noop}
          b:
            run: core.util.echo
            with: {message: "{{ [result, status, error, attempt, succeeded, failed] }}"}
          c: {run: core.util.noop}
        output: "{{ result }}"
        """
    )
    assert r.sequence == ["b", "a"]
    assert r.output is None  # a finished last, with null


def test_start_steps_see_null_names_and_attempt_one(rehearse):
    r = rehearse(
        """
        chain: start-names
        steps:
          a:
            run: core.util.echo
            with: {message: "{{ [result, status, error, attempt] }}"}
        output: "{{ result }}"
        """
    )
    assert r.output == [None, None, None, 1]


def test_templates_handle_undefined_only_through_default_defined_and_get(rehearse):
    r = rehearse(
        """
        chain: undefined
        steps:
          a:
            run: core.util.echo
            with:
              message: "{{ ctx.nope | default('d') }}/{{ ctx.nope is defined }}/{{ ctx.get('nope', 'g') }}/{{ null is None }}"
            next:
              - publish: {said: "{{ result }}"}
                do: b
          b:
            run: core.util.echo
            with: {message: "x{{ ctx.nope }}"}
        output: "{{ ctx.said }}"
        """
    )
    assert r.sequence == ["a", "b"]
    assert r.error["type"] == "ExpressionError" and r.error["step"] == "b"
    assert r.output == "d/False/g/True"


def test_edge_without_do_handles_a_failure_and_ends_the_branch(rehearse):
    r = rehearse(
        """
        chain: edge-no-do
        steps:
          s:
            run: core.util.fail
            with: {message: nope}
            next:
              - when: failed
                publish: {handled: "{{ error.type }}"}
        output: {handled: "{{ ctx.handled }}", status: "{{ status }}", error: "{{ error }}"}
        """
    )
    assert r.status == "succeeded"
    assert r.output == {"handled": "Failure", "status": "succeeded", "error": None}


def test_output_overlays_ended_branch_contexts_in_the_order_they_ended(rehearse):
    # Branch `a` ends first with k changed; branch b ends later carrying the vars' k: the
    # whole context of each ended branch (vars included) is laid over the previous ones.
    r = rehearse(
        """
        chain: output-order
        vars: {k: v0}
        steps:
          start:
            run: core.util.noop
            next:
              - do: [a, b]
          a:
            run: core.util.noop
            next:
              - publish: {k: changed, only_a: 1}
          b:
            run: core.util.noop
            next:
              - do: b2
          b2:
            run: core.util.echo
            with: {message: b2}
        output: {k: "{{ ctx.k }}", only_a: "{{ ctx.only_a }}", result: "{{ result }}"}
        """
    )
    assert r.sequence == ["start", "a", "b", "b2"]
    assert r.output == {"k": "v0", "only_a": 1, "result": "b2"}


def test_output_sees_the_run_and_the_run_names(rehearse):
    r = rehearse(
        """
        chain: run-names
        steps:
          a: {run: core.util.noop}
        output:
          chain: "{{ run.chain }}"
          version: "{{ run.version }}"
          started_at: "{{ run.started_at }}"
          status: "{{ status }}"
          flags: "{{ [succeeded, failed] }}"
        """
    )
    assert r.output == {"chain": "run-names", "version": 1, "started_at": "2000-01-01T00:00:00Z",
                        "status": "succeeded", "flags": [True, False]}


# ------------------------------------------------------------------------------ joins


def test_join_merges_contexts_in_arrival_order_top_level_only(rehearse):
    # b arrives first (a's branch is longer). Each arriving context, vars included, is laid
    # over the previous ones: a's vars-valued v wins over b's published v, a's nested dict
    # replaces b's, and b's own keys stay.
    r = rehearse(
        """
        chain: join-merge
        vars: {v: 0, nested: {x: 0, y: 0}}
        steps:
          start:
            run: core.util.noop
            next:
              - do: [a, b]
          a:
            run: core.util.noop
            next:
              - do: a2
          a2:
            run: core.util.noop
            next:
              - publish: {nested: {x: 1}, who: a}
                do: j
          b:
            run: core.util.echo
            with: {message: from-b}
            next:
              - publish: {v: 5, nested: {y: 2}, who: b, only_b: true}
                do: j
          j:
            join: all
            run: core.util.set
            with: {ctx: "{{ ctx }}", result: "{{ result }}"}
        output: "{{ result }}"
        """
    )
    assert r.sequence == ["start", "a", "b", "a2", "j"]
    assert r.output == {
        "ctx": {"v": 0, "nested": {"x": 1}, "who": "a", "only_b": True},
        "result": None,  # the arrival that satisfied the join is a2's (noop)
    }


def test_join_with_and_for_each_see_the_arrival_that_satisfied_it(rehearse):
    r = rehearse(
        """
        chain: join-satisfier
        steps:
          start:
            run: core.util.noop
            next:
              - do: [a, b]
          a:
            run: core.util.echo
            with: {message: [1]}
            next:
              - do: j
          b:
            run: core.util.echo
            with: {message: [2, 3]}
            next:
              - do: j
          j:
            join: all
            run: core.util.echo
            for_each: "{{ result }}"
            concurrency: 2
            with: {message: "{{ item }}/{{ result | length }}"}
        output: "{{ result }}"
        """
    )
    assert r.sequence == ["start", "a", "b", "j", "j"]
    assert r.output == ["2/2", "3/2"]


def test_join_repeated_arrival_of_a_predecessor_is_merged_not_counted(rehearse):
    # join: 2 over a, b2 and c (c never fires). a fires twice into the join: still one
    # predecessor; the join runs only when b2 arrives, with all three contexts merged.
    r = rehearse(
        """
        chain: join-repeat
        steps:
          start:
            run: core.util.noop
            next:
              - do: [a, b1]
              - when: false
                do: c
          a:
            run: core.util.noop
            next:
              - publish: {x: 1, first: yes}
                do: j
              - publish: {x: 2}
                do: j
          b1:
            run: core.util.noop
            next:
              - do: b2
          b2:
            run: core.util.noop
            next:
              - publish: {b: 1}
                do: j
          c:
            run: core.util.noop
            next:
              - do: j
          j:
            join: 2
            run: core.util.set
            with: {ctx: "{{ ctx }}"}
        output: "{{ result }}"
        """
    )
    assert r.sequence == ["start", "a", "b1", "b2", "j"]
    assert r.output == {"ctx": {"x": 2, "first": "yes", "b": 1}}


def test_join_ignores_an_arrival_after_it_ran_and_that_branch_ends_there(rehearse):
    r = rehearse(
        """
        chain: join-late
        steps:
          start:
            run: core.util.noop
            next:
              - do: [a, b, c1]
          a:
            run: core.util.noop
            next:
              - publish: {a: 1}
                do: j
          b:
            run: core.util.noop
            next:
              - publish: {b: 1}
                do: j
          c1:
            run: core.util.noop
            next:
              - do: c2
          c2:
            run: core.util.noop
            next:
              - publish: {late: 1}
                do: j
          j:
            join: 2
            run: core.util.noop
        output: {late: "{{ ctx.get('late') }}", a: "{{ ctx.a }}"}
        """
    )
    assert r.sequence == ["start", "a", "b", "c1", "j", "c2"]
    # the ignored arrival's branch ended at the join, after j's branch: its context counts
    assert r.output == {"late": 1, "a": 1}


def test_join_skipped_when_nothing_else_can_happen(rehearse):
    # c never fires, so the join can never run: it is skipped at the end, the branches that
    # arrived end then, in arrival order (after the side branch that ended later in time).
    r = rehearse(
        """
        chain: join-skip
        steps:
          start:
            run: core.util.noop
            next:
              - do: [a, b, side]
              - when: false
                do: c
          a:
            run: core.util.noop
            next:
              - publish: {who: a, a: 1}
                do: j
          b:
            run: core.util.noop
            next:
              - publish: {who: b}
                do: j
          side:
            run: core.util.noop
            next:
              - do: side2
          side2:
            run: core.util.echo
            with: {message: side}
            next:
              - publish: {who: side}
          c:
            run: core.util.noop
            next:
              - do: j
          j:
            join: all
            run: core.util.noop
        output: {who: "{{ ctx.who }}", a: "{{ ctx.a }}", last: "{{ result }}"}
        """
    )
    assert r.status == "succeeded"
    assert r.error is None
    assert r.sequence == ["start", "a", "b", "side", "side2"]
    assert r.output == {"who": "b", "a": 1, "last": "side"}


def test_join_opens_a_new_round_in_a_cycle(rehearse):
    r = rehearse(
        """
        chain: join-cycle
        start: top
        vars: {n: 0}
        steps:
          top:
            run: core.util.noop
            next:
              - do: [a, b]
          a:
            run: core.util.noop
            next:
              - publish: {a: "{{ ctx.n }}"}
                do: j
          b:
            run: core.util.noop
            next:
              - do: b2
          b2:
            run: core.util.noop
            next:
              - publish: {b: "{{ ctx.n }}"}
                do: j
          j:
            join: all
            run: core.util.echo
            with: {message: "{{ ctx.a }}{{ ctx.b }}"}
            next:
              - when: ctx.n < 2
                publish: {n: "{{ ctx.n + 1 }}"}
                do: top
              - publish: {rounds: "{{ result }}"}
        output: "{{ ctx.rounds }}"
        """
    )
    assert r.sequence == ["top", "a", "b", "b2", "j"] * 3
    # b2 arrives last in each round and its context wins key by key: its `a` is the one
    # merged into the previous round's context, its `b` is this round's.
    assert r.output == "02"


def test_join_new_round_waits_for_every_predecessor_again(rehearse):
    # After j ran, a counted predecessor (a) fires again: a new round opens and waits there;
    # since b never fires again, that round is skipped at the end.
    r = rehearse(
        """
        chain: join-round-skip
        vars: {n: 0}
        steps:
          start:
            run: core.util.noop
            next:
              - do: [a, b]
          a:
            run: core.util.noop
            next:
              - do: j
          b:
            run: core.util.noop
            next:
              - do: j
          j:
            join: all
            run: core.util.noop
            next:
              - when: ctx.n == 0
                publish: {n: 1}
                do: a
        """
    )
    assert r.status == "succeeded"
    assert r.sequence == ["start", "a", "b", "j", "a"]


def test_join_delay_applies_after_it_is_satisfied(rehearse):
    r = rehearse(
        """
        chain: join-delay
        steps:
          start:
            run: core.util.noop
            next:
              - do: [a, s]
          a:
            run: core.util.noop
            next:
              - do: j
          s:
            run: core.util.sleep
            with: {seconds: 2}
            next:
              - do: [j, t]
          t:
            run: core.util.noop
          j:
            join: all
            delay: 3s
            run: core.util.noop
        """
    )
    # satisfied at 2 s (s arrives), then 3 s of delay: j starts at 5 s, after t
    assert r.sequence == ["start", "a", "s", "t", "j"]
    assert r.elapsed == 5


# ------------------------------------------------------------------------------ cycles and max_steps


def test_max_steps_fails_the_run_naming_the_step_past_the_limit(rehearse):
    r = rehearse(
        """
        chain: runaway
        start: loop
        max_steps: 5
        steps:
          loop:
            run: core.util.noop
            next:
              - do: loop
        output: {status: "{{ status }}"}
        """
    )
    assert r.sequence == ["loop"] * 5
    assert r.status == "failed"
    assert r.error["type"] == "StepLimitExceeded"
    assert r.error["step"] == "loop"
    assert "max_steps" in r.error["message"]
    assert "retries" in r.error["message"] and "items" in r.error["message"]
    assert r.output == {"status": "failed"}


def test_max_steps_fails_when_the_step_run_is_due_not_when_queued(rehearse):
    # start #1, a #2, b #3, c #4: c is numbered 4 when queued, but a and b still run; c
    # fails the run when it is due, and nothing queued after it starts.
    r = rehearse(
        """
        chain: limit-due
        max_steps: 3
        steps:
          start:
            run: core.util.noop
            next:
              - do: [a, b, c]
          a:
            run: core.util.noop
            next:
              - do: a2
          b: {run: core.util.noop}
          c: {run: core.util.noop}
          a2: {run: core.util.noop}
        """
    )
    assert r.sequence == ["start", "a", "b"]
    assert r.error["type"] == "StepLimitExceeded"
    assert r.error["step"] == "c"


def test_max_steps_numbers_a_retry_when_it_is_queued_not_when_it_waits(rehearse):
    # start #1, r #2, a #3, a2 #4 (queued at 0 s); r's retry is queued at 1 s as #5.
    r = rehearse(
        """
        chain: limit-retry
        max_steps: 4
        steps:
          start:
            run: core.util.noop
            next:
              - do: [r, a]
          r:
            run: core.util.fail
            retry: {count: 1, delay: 1s, jitter: false}
          a:
            run: core.util.noop
            next:
              - do: a2
          a2: {run: core.util.noop}
        """
    )
    assert r.sequence == ["start", "r", "a", "a2"]
    assert r.error["type"] == "StepLimitExceeded"
    assert r.error["step"] == "r"


def test_max_steps_counts_items_and_retries(rehearse):
    items = rehearse(
        """
        chain: limit-items
        max_steps: 3
        steps:
          each:
            run: core.util.noop
            for_each: [1, 2, 3, 4, 5]
            concurrency: 5
        """
    )
    assert items.sequence == ["each"] * 3
    assert items.error["type"] == "StepLimitExceeded" and items.error["step"] == "each"
    retries = rehearse(
        """
        chain: limit-retries
        max_steps: 2
        steps:
          call:
            run: core.util.fail
            retry: {count: 5, delay: 1s, jitter: false}
        """
    )
    assert retries.sequence == ["call"] * 2
    assert retries.error["type"] == "StepLimitExceeded" and retries.error["step"] == "call"


# ------------------------------------------------------------------------------ fail


def test_fail_reached_from_a_succeeded_step_is_failreached_and_the_run_goes_on(rehearse):
    r = rehearse(
        """
        chain: fail-reached
        steps:
          start:
            run: core.util.noop
            next:
              - do: [x, y]
          x:
            run: core.util.noop
            next:
              - publish: {from_x: 1}
                do: [fail, x2]
          x2: {run: core.util.noop}
          y:
            run: core.util.noop
            next:
              - do: y2
          y2:
            run: core.util.echo
            with: {message: y2}
        output: {from_x: "{{ ctx.from_x }}", status: "{{ status }}", error: "{{ error }}", last: "{{ result }}"}
        """
    )
    assert r.status == "failed"
    assert r.sequence == ["start", "x", "y", "x2", "y2"]
    error = {"type": "FailReached", "message": "fail reached from x", "step": "x"}
    assert r.error == error
    assert r.output == {"from_x": 1, "status": "failed", "error": error, "last": "y2"}


def test_fail_reached_from_a_failed_step_keeps_that_step_s_error(rehearse):
    r = rehearse(
        """
        chain: fail-from-failed
        steps:
          s:
            run: core.util.fail
            with: {message: broken}
            next:
              - when: failed
                do: fail
              - when: failed
                do: after
          after: {run: core.util.noop}
        """
    )
    assert r.sequence == ["s", "after"]
    assert r.error == {"type": "Failure", "message": "broken", "step": "s"}


def test_the_first_error_is_kept_after_fail_reached(rehearse):
    # fail is reached first; a later unhandled failure stops the run at once but does not
    # replace the error.
    r = rehearse(
        """
        chain: first-error
        steps:
          start:
            run: core.util.noop
            next:
              - do: [x, y]
          x:
            run: core.util.noop
            next:
              - do: fail
          y:
            run: core.util.fail
            with: {message: later}
            next:
              - do: never
          never: {run: core.util.noop}
        """
    )
    assert r.sequence == ["start", "x", "y"]
    assert r.error == {"type": "FailReached", "message": "fail reached from x", "step": "x"}


# ------------------------------------------------------------------------------ fail-fast


def test_fail_fast_starts_no_retry_no_delayed_step_no_item(rehearse):
    r = rehearse(
        """
        chain: fail-fast-all
        steps:
          start:
            run: core.util.noop
            next:
              - publish: {r: 1}
                do: r
              - publish: {d: 1}
                do: d
              - publish: {f: 1}
                do: f
              - publish: {e: 1}
                do: each
          r:
            run: core.util.fail
            retry: {count: 3, delay: 1s, jitter: false}
          d:
            run: core.util.noop
            delay: 1s
          f:
            run: core.util.fail
            with: {message: stop}
          each:
            run: core.util.noop
            for_each: [1, 2]
            concurrency: 2
        output: "{{ [ctx.get('r'), ctx.get('d'), ctx.get('f'), ctx.get('e'), result] }}"
        """
    )
    assert r.sequence == ["start", "r", "f"]
    assert r.error == {"type": "Failure", "message": "stop", "step": "f"}
    assert r.elapsed == 0  # the run ended at once: no pending wait was waited for
    # step runs that never started ended no branch; the failed step's branch did
    assert r.output == [None, None, 1, None, None]


def test_fail_fast_inside_for_each_with_concurrency_stops_the_next_items(rehearse):
    r = rehearse(
        """
        chain: fail-fast-items
        steps:
          start:
            run: core.util.noop
            next:
              - do: [each, boom]
          each:
            run: core.util.noop
            for_each: [1, 2, 3]
            concurrency: 1
          boom:
            run: core.util.fail
        """
    )
    assert r.sequence == ["start", "each", "boom"]
    assert r.error["type"] == "Failure"


# ------------------------------------------------------------------------------ expression errors


def _expr_error(r, step, *parts):
    assert r.status == "failed"
    assert r.error["type"] == "ExpressionError"
    assert r.error["step"] == step
    for part in parts:
        assert part in r.error["message"], (part, r.error["message"])


def test_expression_error_in_with_is_in_the_trace_not_retried_not_handled(rehearse):
    r = rehearse(
        """
        chain: ee-with
        steps:
          a:
            run: core.util.noop
            next:
              - publish: {x: 1}
                do: b
          b:
            run: core.util.echo
            with: {message: "{{ ctx.nope.deeper }}"}
            retry: {count: 2, delay: 1s, jitter: false}
            next:
              - when: failed
                do: handler
          handler: {run: core.util.noop}
        output: "{{ ctx.get('x') }}"
        """,
        mocks={"b": [{"result": "mocked"}]},
    )
    assert r.sequence == ["a", "b"]
    _expr_error(r, "b", "ee-with", "'b'", "ctx.nope.deeper")
    assert r.output == 1  # the branch ended in b's step run (its context counts)
    assert r.elapsed == 0


def test_expression_error_in_when_names_the_edge_and_earlier_targets_do_not_start(rehearse):
    r = rehearse(
        """
        chain: ee-when
        steps:
          a:
            run: core.util.noop
            next:
              - do: early
              - when: "result.missing == 1"
                do: late
          early: {run: core.util.noop}
          late: {run: core.util.noop}
        """
    )
    assert r.sequence == ["a"]
    _expr_error(r, "a", "ee-when", "'a'", "edge 1", "result.missing == 1")


def test_expression_error_in_publish_names_the_edge(rehearse):
    r = rehearse(
        """
        chain: ee-publish
        steps:
          a:
            run: core.util.noop
            next:
              - do: early
              - when: true
                do: early
              - publish: {bad: "{{ ctx.absent + 1 }}"}
                do: late
          early: {run: core.util.noop}
          late: {run: core.util.noop}
        output: {status: "{{ status }}"}
        """
    )
    assert r.sequence == ["a"]
    _expr_error(r, "a", "ee-publish", "edge 2", "ctx.absent + 1")
    assert r.output == {"status": "failed"}


def test_condition_reading_a_missing_key_is_an_expression_error_on_a_failed_step(rehearse):
    # The failure would have been handled by edge 1, but edge 0's condition errors first:
    # no edge handles an expression error.
    r = rehearse(
        """
        chain: ee-failed-step
        steps:
          a:
            run: core.util.fail
            next:
              - when: "error.nothing"
                do: b
              - when: failed
                do: b
          b: {run: core.util.noop}
        """
    )
    assert r.sequence == ["a"]
    _expr_error(r, "a", "edge 0")


def test_expression_error_in_retry_when_is_not_retried_nor_handled(rehearse):
    r = rehearse(
        """
        chain: ee-retry-when
        steps:
          a:
            run: core.util.fail
            retry: {count: 3, delay: 1s, jitter: false, when: "result.code == 503"}
            next:
              - when: failed
                do: b
          b: {run: core.util.noop}
        """
    )
    assert r.sequence == ["a"]
    _expr_error(r, "a", "ee-retry-when", "retry.when", "result.code == 503")
    assert r.elapsed == 0


def test_expression_error_in_output_fails_a_succeeded_run_with_null_output(rehearse):
    r = rehearse(
        """
        chain: ee-output
        steps:
          a: {run: core.util.noop}
        output: {x: "{{ ctx.nope + 1 }}", ok: 1}
        """
    )
    assert r.sequence == ["a"]
    assert r.output is None
    _expr_error(r, None, "ee-output", "ctx.nope + 1")


def test_expression_error_in_output_of_a_failed_run_keeps_the_run_s_error(rehearse):
    r = rehearse(
        """
        chain: ee-output-failed
        steps:
          a:
            run: core.util.fail
            with: {message: original}
        output: "{{ ctx.nope + 1 }}"
        """
    )
    assert r.status == "failed"
    assert r.output is None
    assert r.error == {"type": "Failure", "message": "original", "step": "a"}


def test_expression_error_in_vars_fails_before_any_step_run(rehearse):
    r = rehearse(
        """
        chain: ee-vars
        vars: {x: "{{ input.missing.deeper }}"}
        steps:
          a: {run: core.util.noop}
        output: {constant: 1}
        """
    )
    assert r.sequence == []
    assert r.output is None
    _expr_error(r, None, "ee-vars", "input.missing.deeper")


def test_vars_render_once_over_input_and_run(rehearse):
    r = rehearse(
        """
        chain: vars-render
        vars:
          greeting: "hi {{ input.name }}"
          n: "{{ input.n * 2 }}"
          chain: "{{ run.chain }}"
          native: "{{ '42' }}"
        steps:
          a: {run: core.util.noop}
        output: "{{ ctx }}"
        """,
        input={"name": "Ada", "n": 21},
    )
    assert r.output == {"greeting": "hi Ada", "n": 42, "chain": "vars-render", "native": "42"}


# ------------------------------------------------------------------------------ input


def test_input_invalid_empty_trace_null_output(rehearse):
    text = """
        chain: typed
        input:
          type: object
          required: [n]
          properties: {n: {type: integer}}
        steps:
          a: {run: core.util.noop}
        output: {constant: 1}
        """
    for bad in ({}, {"n": "seven"}):
        r = rehearse(text, input=bad)
        assert r.status == "failed"
        assert r.sequence == []
        assert r.output is None
        assert r.error["type"] == "InputInvalid"
        assert r.error["step"] is None
    ok = rehearse(text, input={"n": 7})
    assert (ok.status, ok.output) == ("succeeded", {"constant": 1})


# ------------------------------------------------------------------------------ the conductor by hand

JOIN_CHAIN = """
chain: by-hand-join
steps:
  start:
    run: core.util.noop
    next:
      - do: [a, b]
  a:
    run: core.util.echo
    with: {message: A}
    next:
      - publish: {who: a, a: 1}
        do: j
  b:
    run: core.util.echo
    with: {message: B}
    next:
      - publish: {who: b, b: 1}
        do: j
  j:
    join: all
    run: core.util.set
    with: {who: "{{ ctx.who }}", prior: "{{ result }}", a: "{{ ctx.a }}", b: "{{ ctx.b }}"}
output: "{{ result }}"
"""

FOR_EACH_CHAIN = """
chain: by-hand-items
steps:
  each:
    run: core.util.echo
    for_each: [x, y, z]
    concurrency: 2
    with: {message: "{{ item }}"}
    next:
      - when: failed
        publish: {err: "{{ error.message }}", results: "{{ result }}"}
        do: after
  after:
    run: core.util.noop
output: {err: "{{ ctx.err }}", results: "{{ ctx.results }}"}
"""


def _conductor(program: ChainProgram, input: dict[str, Any] | None = None) -> Conductor:
    state = RunState(run={"id": "r1", "chain": program.name, "version": 1, "started_at": "2000-01-01T00:00:00Z"},
                     input=input or {})
    return Conductor(program, state, jitter=False)


def _queued(commands) -> list[tuple[int, str]]:
    return [(c.step_run.number, c.step_run.step) for c in commands if isinstance(c, Queue)]


def test_conductor_join_merges_in_finish_order_not_queue_order(compile_chain):
    c = _conductor(compile_chain(JOIN_CHAIN))
    assert _queued(c.start()) == [(1, "start")]
    assert c.begin(1).started
    assert _queued(c.finish(1, "succeeded")) == [(2, "a"), (3, "b")]
    assert c.begin(2).args == {"message": "A"}
    assert c.begin(3).args == {"message": "B"}
    assert c.finish(3, "succeeded", "B") == []  # b arrives first: the join waits
    (number, step), = _queued(c.finish(2, "succeeded", "A"))
    assert step == "j"
    begin = c.begin(number)
    # a arrived last: its context wins, and `result` is a's (the satisfying arrival)
    assert begin.args == {"who": "a", "prior": "A", "a": 1, "b": 1}
    commands = c.finish(number, "succeeded", begin.args)
    assert [x for x in commands if isinstance(x, Ended)] == [Ended("succeeded")]
    assert c.state.output == {"who": "a", "prior": "A", "a": 1, "b": 1}


def test_conductor_for_each_out_of_order_finishes(compile_chain):
    c = _conductor(compile_chain(FOR_EACH_CHAIN))
    first = _queued(c.start())
    assert [s for _, s in first] == ["each", "each"]  # concurrency 2
    (n0, _), (n1, _) = first
    assert c.begin(n1).args == {"message": "y"}
    assert c.begin(n0).args == {"message": "x"}
    # item 1 finishes first (failed): item 2 is queued at once
    (n2, step), = _queued(c.finish(n1, "failed", None, {"type": "E", "message": "y broke"}))
    assert step == "each"
    assert c.begin(n2).args == {"message": "z"}
    assert c.finish(n2, "succeeded", "Z") == []
    # item 0 fails last but has the lowest index
    (n3, step), = _queued(c.finish(n0, "failed", "partial-x", {"type": "E", "message": "x broke"}))
    assert step == "after"
    c.begin(n3)
    assert [x for x in c.finish(n3, "succeeded") if isinstance(x, Ended)] == [Ended("succeeded")]
    assert c.state.output == {"err": "x broke", "results": ["partial-x", None, "Z"]}


def test_conductor_in_flight_step_runs_after_fail_fast_change_nothing(compile_chain):
    c = _conductor(compile_chain(JOIN_CHAIN))
    c.start()
    c.begin(1)
    c.finish(1, "succeeded")
    c.begin(2)
    c.begin(3)  # a and b are both executing (two workers)
    commands = c.finish(2, "failed", "a-partial", "a broke")
    assert commands == [Ended("failed")]  # the run ends at once
    assert c.state.status == "failed"
    assert c.state.error == {"type": "StepFailed", "message": "a broke", "step": "a"}
    assert c.state.output == "a-partial"  # rendered at once: a finished last
    # b's invocation finishes and is recorded, but its edges are not followed
    assert c.finish(3, "succeeded", "B") == []
    assert (c.state.status, c.state.output, c.state.error["step"]) == ("failed", "a-partial", "a")
    assert "j" not in c.state.joins


def test_conductor_begin_after_halt_does_not_start(compile_chain):
    program = compile_chain(
        """
        chain: halt
        steps:
          s:
            run: core.util.noop
            next:
              - do: [f, g]
          f: {run: core.util.fail}
          g: {run: core.util.noop}
        """
    )
    c = _conductor(program)
    c.start()
    c.begin(1)
    queued = _queued(c.finish(1, "succeeded"))
    assert [s for _, s in queued] == ["f", "g"]
    c.begin(queued[0][0])
    c.finish(queued[0][0], "failed", None, {"type": "Failure", "message": "x"})
    begin = c.begin(queued[1][0])
    assert begin == Begin(False, None, [])


def test_conductor_retry_wait_uses_backoff_and_max_delay(compile_chain):
    program = compile_chain(
        """
        chain: backoff
        steps:
          call:
            run: core.util.fail
            retry: {count: 4, delay: 2s, backoff: 3.0, max_delay: 10s, jitter: false}
        """
    )
    c = _conductor(program)
    (number, _), = _queued(c.start(now=100.0))
    dues = []
    now = 100.0
    for _ in range(4):
        c.begin(number)
        schedule, = c.finish(number, "failed", None, "x", now=now)
        assert isinstance(schedule, Schedule)
        dues.append(schedule.due - now)
        now = schedule.due
        (number, _), = _queued(c.wake(schedule.wait_id, now=now))
    c.begin(number)
    assert c.finish(number, "failed", None, "x", now=now) == [Ended("failed")]
    assert dues == [2.0, 6.0, 10.0, 10.0]


def test_conductor_full_jitter_stays_within_the_computed_wait(compile_chain):
    program = compile_chain(
        """
        chain: jitter
        steps:
          call:
            run: core.util.fail
            retry: {count: 1, delay: 8s}
        """
    )
    waits = set()
    for seed in range(20):
        state = RunState(run={"id": "r", "chain": "jitter", "version": 1, "started_at": "x"}, input={})
        c = Conductor(program, state, jitter=True, rng=random.Random(seed))
        c.start()
        c.begin(1)
        schedule, = c.finish(1, "failed", None, "x", now=50.0)
        assert 50.0 <= schedule.due <= 58.0
        waits.add(schedule.due)
    assert len(waits) > 1  # jitter applied
    # `jitter: false` in the chain turns it off even when the driver allows it
    exact = compile_chain(
        """
        chain: no-jitter
        steps:
          call:
            run: core.util.fail
            retry: {count: 1, delay: 8s, jitter: false}
        """
    )
    state = RunState(run={"id": "r", "chain": "no-jitter", "version": 1, "started_at": "x"}, input={})
    c = Conductor(exact, state, jitter=True, rng=random.Random(0))
    c.start()
    c.begin(1)
    schedule, = c.finish(1, "failed", None, "x", now=50.0)
    assert schedule.due == 58.0


def test_conductor_cancel(compile_chain):
    c = _conductor(compile_chain(JOIN_CHAIN))
    c.start()
    assert c.cancel() == [Ended("canceled")]
    assert c.state.status == "canceled"
    assert c.begin(1).started is False
    assert c.cancel() == []


# ------------------------------------------------------------------------------ state round trip

ROUND_TRIP_CHAIN = """
chain: round-trip
start: start
vars: {n: 0}
steps:
  start:
    run: core.util.noop
    next:
      - do: [items, flaky, slow]
  items:
    run: core.util.echo
    for_each: "{{ [1, 2, 3] }}"
    concurrency: 2
    with: {message: "{{ item * 10 }}"}
    next:
      - publish: {items: "{{ result }}"}
        do: j
  flaky:
    run: core.util.echo
    with: {message: "try {{ attempt }}"}
    retry: {count: 2, delay: 1s, jitter: false}
    next:
      - publish: {flaky: "{{ result }}"}
        do: j
  slow:
    run: core.util.noop
    delay: 2s
    next:
      - publish: {slow: true}
        do: j
  j:
    join: all
    run: core.util.echo
    with: {message: "{{ ctx.items | sum }}/{{ ctx.flaky }}/{{ ctx.slow }}"}
    next:
      - when: ctx.n < 1
        publish: {n: "{{ ctx.n + 1 }}"}
        do: start
output: {last: "{{ result }}", n: "{{ ctx.n }}"}
"""


class PartStore:
    """What a database keeps of a run written in parts: its core and its parts, each with the
    revision that wrote it (deleted all at once when the run is quiet)."""

    def __init__(self) -> None:
        self.revision = 0
        self.core: dict[str, Any] | None = None
        self.parts: dict[str, tuple[int, int, Any]] = {}  # key -> (group, revision, data)

    def save(self, state: RunState) -> None:
        self.revision += 1
        self.core = json.loads(json.dumps(state.core()))
        for key, group, data in state.changes():
            self.parts[key] = (group, self.revision, json.loads(json.dumps(data)))
        if state.quiet:
            self.parts.clear()

    def read(self, since: int = -1) -> list[tuple[str, int, Any]]:
        return [(key, group, data) for key, (group, revision, data) in self.parts.items() if revision > since]


def canonical(state: RunState) -> dict[str, Any]:
    """`to_dict` with each context written where it is used, and step runs and waits in
    number order: two states that mean the same compare equal."""
    d = state.to_dict()
    ctx = d.pop("contexts")
    d["active"] = sorted([*a[:2], ctx[a[2]], *a[3:]] for a in d["active"])
    d["waits"] = sorted([*w[:4], ctx[w[4]], *w[5:]] for w in d["waits"])
    d["groups"] = {k: [g[0], ctx[g[1]], *g[2:]] for k, g in d["groups"].items()}
    d["joins"] = {k: [j[0], [[p, ctx[c]] for p, c in j[1]], j[2]] for k, j in d["joins"].items()}
    d["resume"] = [[r[0], ctx[r[1]], r[2]] for r in d["resume"]]
    return d


def _drive(program: ChainProgram, registry, outcomes: dict[str, list[tuple[str, Any, Any]]], *, round_trip: bool | str):
    """A FIFO driver on a virtual clock; with `round_trip`, the state goes through JSON text
    (and a fresh Conductor) after every event: written whole (True), or in parts and read
    back whole ("parts") or on top of the state before ("delta", every other event)."""
    state = RunState(run={"id": "rt", "chain": program.name, "version": 1, "started_at": "2000-01-01T00:00:00Z"}, input={})
    store = PartStore()
    if round_trip in ("parts", "delta"):
        state.track()
    conductor = Conductor(program, state, jitter=False)
    queue: deque[int] = deque()
    waits: list[tuple[float, int, int]] = []
    created = 0
    now = 0.0
    trace: list[str] = []
    pending = {k: deque(v) for k, v in outcomes.items()}
    trips = 0
    holders: dict[int, tuple[RunState, int]] = {}
    current = 0

    def apply(commands):
        nonlocal created
        for cmd in commands:
            if isinstance(cmd, Queue):
                queue.append(cmd.step_run.number)
            elif isinstance(cmd, Schedule):
                created += 1
                waits.append((cmd.due, created, cmd.wait_id))
                waits.sort()

    def reload():
        nonlocal conductor, trips, current
        if round_trip is True:
            text = json.dumps(conductor.state.to_dict())
            conductor = Conductor(program, RunState.from_dict(json.loads(text)), jitter=False)
        elif round_trip:
            # Two processes take turns, two events each: each brings its copy up to date
            # with the parts written since it last held the run ("delta"), or reads it all.
            expected = canonical(conductor.state)
            store.save(conductor.state)
            holders[current] = (conductor.state, store.revision)
            current = (trips // 2) % 2 if round_trip == "delta" else 0
            held, revision = holders.get(current, (None, 0))
            assert store.core is not None
            if round_trip == "parts" or held is None:
                state = RunState.from_parts(store.core, store.read())
            elif revision == store.revision:
                state = held
            else:
                state = RunState.from_parts(store.core, store.read(revision), held)
            assert canonical(state) == expected
            holders[current] = (state, store.revision)
            conductor = Conductor(program, state, jitter=False)
        else:
            return
        trips += 1

    apply(conductor.start(now))
    reload()
    while not conductor.state.ended and (queue or waits):
        if not queue:
            due, _, wait_id = waits.pop(0)
            now = max(now, due)
            apply(conductor.wake(wait_id, now))
            reload()
            continue
        number = queue.popleft()
        step = conductor.state.active[number].step
        begin = conductor.begin(number)
        reload()
        if begin.started:
            trace.append(step)
        apply(begin.commands)
        if begin.args is None:
            continue
        if pending.get(step):
            status, result, error = pending[step].popleft()
        else:
            outcome = call(registry.function(program.steps[step].run), begin.args)
            status, result, error = outcome.status, outcome.result, outcome.error
        apply(conductor.finish(number, status, result, error, now))
        reload()
    st = conductor.state
    return {"status": st.status, "output": st.output, "error": st.error, "trace": trace, "now": now}, trips


def test_run_state_round_trips_through_json_mid_run(compile_chain, registry):
    program = compile_chain(ROUND_TRIP_CHAIN)
    outcomes = {"flaky": [("failed", None, "no"), ("failed", None, "no")]}
    plain, none = _drive(program, registry, outcomes, round_trip=False)
    tripped, trips = _drive(program, registry, outcomes, round_trip=True)
    assert none == 0 and trips > 20
    assert tripped == plain
    assert plain["status"] == "succeeded"
    # round 2: `slow` arrives last, carrying round 1's `flaky` (its third attempt)
    assert plain["output"] == {"last": "60/try 3/True", "n": 1}
    assert plain["trace"].count("flaky") == 4
    assert plain["now"] == 5.0
    # and the deterministic driver agrees with this hand-written one
    mocks = {"flaky": [MockEntry(status="failed", error="no"), MockEntry(status="failed", error="no")]}
    virtual = VirtualRun(program, registry, mocks=mocks, start=0.0, run_id="rt").run({})
    assert (virtual.status, virtual.output, virtual.error, virtual.sequence, virtual.elapsed) == (
        plain["status"], plain["output"], plain["error"], plain["trace"], plain["now"])


HALTED_GROUP_CHAIN = """
chain: halted-group
steps:
  start:
    run: core.util.noop
    next:
      - do: [items, other]
  items:
    run: core.util.echo
    for_each: "{{ range(6) | list }}"
    concurrency: 3
    timeout: 30s
    retry: {count: 1, delay: 1s, jitter: false}
    with: {message: "{{ item }}"}
  other:
    run: core.util.echo
    delay: 1s
    with: {message: other}
output: {ctx: "{{ ctx }}"}
"""


@pytest.mark.parametrize("how", ["parts", "delta"])
@pytest.mark.parametrize("chain, outcomes, status", [
    (ROUND_TRIP_CHAIN, {"flaky": [("failed", None, "no"), ("failed", None, "no")]}, "succeeded"),
    # two items wait for their retries when `other` fails the run: queued items are cut short
    (HALTED_GROUP_CHAIN, {"items": [("failed", None, "x"), ("failed", None, "x")], "other": [("failed", None, "boom")]}, "failed"),
    (HALTED_GROUP_CHAIN, {"items": [("failed", None, "x")] * 4}, "failed"),  # item 0 fails twice
    (HALTED_GROUP_CHAIN, {}, "succeeded"),
])
def test_a_run_written_in_parts_reads_back_the_same_after_every_event(compile_chain, registry, how, chain, outcomes, status):
    program = compile_chain(chain)
    plain, _ = _drive(program, registry, outcomes, round_trip=False)
    tripped, trips = _drive(program, registry, outcomes, round_trip=how)
    assert trips > 8
    assert tripped == plain
    assert plain["status"] == status


def test_only_what_an_event_changed_is_written_as_parts(compile_chain):
    program = compile_chain(HALTED_GROUP_CHAIN)
    state = RunState.new("p", program.name, 1, 0.0, {})
    state.track()
    c = Conductor(program, state, jitter=False)
    c.start(0.0)
    assert state.changes() == []  # start and other's delay: all in the core
    c.begin(1)
    queued = _queued(c.finish(1, "succeeded", None, None, 0.0))
    assert [s for _, s in queued] == ["items"] * 3
    parts = state.changes()
    assert sorted(k for k, _, _ in parts) == ["g1", "s2", "s3", "s4"]
    g = next(d for k, _, d in parts if k == "g1")
    assert g[0] == "items" and g[3] == [0, 1, 2, 3, 4, 5]
    core = json.dumps(state.core())
    assert "items" not in json.loads(core)["active"] and len(json.loads(core)["active"]) == 0
    c.begin(2)
    assert [(k, d) for k, _, d in state.changes()] == [("s2", [1, 0, "running", 3, None]), ("w3", [30.0, "timeout", 1, 0, 2, False])]
    c.finish(2, "succeeded", "zero", None, 0.0)
    assert sorted((k, d) for k, _, d in state.changes()) == [
        ("r1.0", "zero"), ("s2", None), ("s5", [1, 3, "queued", None, None]), ("w3", None)]
    assert state.changes() == []


def test_run_state_round_trip_in_the_middle_keeps_groups_joins_and_waits(compile_chain, registry):
    program = compile_chain(ROUND_TRIP_CHAIN)
    c = _conductor(program)
    commands = c.start(0.0)
    c.begin(1)
    commands = c.finish(1, "succeeded", None, None, 0.0)
    queued = _queued(commands)
    assert [s for _, s in queued] == ["items", "items", "flaky"]
    assert any(isinstance(x, Schedule) for x in commands)  # slow's delay
    c.begin(queued[0][0])
    c.finish(queued[0][0], "succeeded", 10, None, 0.0)  # item 0 done; item 2 queued
    c.begin(queued[2][0])
    c.finish(queued[2][0], "failed", None, "no", 0.0)  # flaky waits for its retry
    data = json.loads(json.dumps(c.state.to_dict()))
    restored = RunState.from_dict(data)
    assert restored.to_dict() == c.state.to_dict()
    assert restored.groups and restored.waits and restored.active


def test_a_step_run_begins_once_however_often_it_is_delivered(compile_chain):
    c = _conductor(compile_chain(JOIN_CHAIN))
    assert _queued(c.start()) == [(1, "start")]
    first = c.begin(1)
    assert first.started and not first.duplicate
    again = c.begin(1)  # the same message, delivered a second time while the first runs
    assert again == Begin(False, None, [], duplicate=True)
    assert c.state.active[1].status == "running"  # untouched: its one execution goes on
    assert _queued(c.finish(1, "succeeded")) == [(2, "a"), (3, "b")]
    assert c.begin(1) == Begin(False, None, [])  # and once finished, it is gone
