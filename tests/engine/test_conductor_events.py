"""The conductor's events beyond start/begin/finish: timeouts, sub-chains, cancel, pause and
resume, retry of an ended run, a lost worker's step run queued again, and the size of a
stored state. Driven by hand, with the clock passed in, so each command is asserted as the
driver receives it.
"""

from __future__ import annotations

import json
from typing import Any

from legion.engine.conductor import (
    MAX_DEPTH,
    Begin,
    ChainProgram,
    Conductor,
    Ended,
    Interrupt,
    Queue,
    RunState,
    Schedule,
    StartChild,
    child_run_id,
)


def _conductor(program: ChainProgram, input: dict[str, Any] | None = None, *, depth: int = 0) -> Conductor:
    state = RunState(run={"id": "run-1", "chain": program.name, "version": 1, "started_at": "2000-01-01T00:00:00Z"},
                     input=input or {}, depth=depth)
    return Conductor(program, state, jitter=False)


def _queued(commands: list[Any]) -> list[tuple[int, str]]:
    return [(c.step_run.number, c.step_run.step) for c in commands if isinstance(c, Queue)]


def _scheduled(commands: list[Any]) -> list[Schedule]:
    return [c for c in commands if isinstance(c, Schedule)]


def _ended(commands: list[Any]) -> list[Ended]:
    return [c for c in commands if isinstance(c, Ended)]


def _round_trip(c: Conductor) -> Conductor:
    return Conductor(c.program, RunState.from_dict(json.loads(json.dumps(c.state.to_dict()))), jitter=False)


# ------------------------------------------------------------------------------ timeouts

TIMEOUT_CHAIN = """
chain: timed
steps:
  slow:
    run: core.util.sleep
    with: {seconds: 60}
    timeout: 5s
    next:
      - when: succeeded
        publish: {done: true}
        do: after
  after:
    run: core.util.noop
output: {done: "{{ ctx.get('done', false) }}"}
"""


def test_timeout_is_armed_at_begin_and_its_wake_ends_the_step_run_timed_out(compile_chain):
    c = _conductor(compile_chain(TIMEOUT_CHAIN))
    assert _queued(c.start(now=100.0)) == [(1, "slow")]
    begin = c.begin(1, now=100.0)
    assert begin.started and begin.args == {"seconds": 60}
    (timer,) = begin.commands
    assert isinstance(timer, Schedule) and timer.due == 105.0
    assert c.state.waits[timer.wait_id].kind == "timeout"
    assert c.state.active[1].timer == timer.wait_id

    commands = c.wake(timer.wait_id, now=105.0)
    interrupt = commands[0]
    assert isinstance(interrupt, Interrupt)
    assert interrupt.step_run.number == 1 and interrupt.status == "timed_out"
    assert interrupt.error["type"] == "Timeout" and interrupt.error["step"] == "slow"
    assert "5s" in interrupt.error["message"]
    # no edge handles the failure: the run fails with the Timeout error
    assert commands[1:] == [Ended("failed")]
    assert c.state.status == "failed" and c.state.error == interrupt.error
    assert 1 not in c.state.active and not c.state.waits


def test_a_finish_arriving_after_the_timeout_changes_nothing(compile_chain):
    c = _conductor(compile_chain(TIMEOUT_CHAIN))
    c.start(now=0.0)
    (timer,) = c.begin(1, now=0.0).commands
    c.wake(timer.wait_id, now=5.0)
    before = c.state.to_dict()
    assert c.decide(1, "succeeded", None) is None
    assert c.finish(1, "succeeded", None, None, now=6.0) == []
    assert c.state.to_dict() == before
    assert (c.state.status, c.state.error["type"]) == ("failed", "Timeout")


def test_a_timed_out_step_with_retry_is_attempted_again(compile_chain):
    c = _conductor(compile_chain("""
        chain: timed-retry
        steps:
          slow:
            run: core.util.sleep
            with: {seconds: "{{ 60 if attempt == 1 else 0 }}"}
            timeout: 5s
            retry: {count: 1, delay: 2s, jitter: false}
        output: {attempt: "{{ result }}"}
    """))
    c.start(now=0.0)
    (timer,) = c.begin(1, now=0.0).commands
    commands = c.wake(timer.wait_id, now=5.0)
    assert isinstance(commands[0], Interrupt) and commands[0].status == "timed_out"
    (retry,) = _scheduled(commands)
    assert retry.due == 7.0 and c.state.waits[retry.wait_id].kind == "retry"
    assert not _ended(commands) and c.state.status == "running"

    # a late outcome of the first attempt, while the retry waits, changes nothing
    assert c.finish(1, "succeeded", None, None, now=6.0) == []
    assert retry.wait_id in c.state.waits

    assert _queued(c.wake(retry.wait_id, now=7.0)) == [(2, "slow")]
    assert c.state.active[2].attempt == 2
    begin = c.begin(2, now=7.0)
    assert begin.args == {"seconds": 0}
    (timer2,) = _scheduled(begin.commands)
    assert timer2.due == 12.0
    assert c.finish(2, "succeeded", None, None, now=7.5) == [Ended("succeeded")]
    assert not c.state.waits  # the second attempt's timeout went with it


def test_the_timeout_wait_is_dropped_when_the_step_finishes_in_time(compile_chain):
    c = _conductor(compile_chain(TIMEOUT_CHAIN))
    c.start(now=0.0)
    (timer,) = c.begin(1, now=0.0).commands
    assert _queued(c.finish(1, "succeeded", None, None, now=1.0)) == [(2, "after")]
    assert timer.wait_id not in c.state.waits
    c.begin(2, now=1.0)
    # the run ends without the timeout ever waking
    assert c.finish(2, "succeeded", None, None, now=1.0) == [Ended("succeeded")]
    assert c.state.output == {"done": True}
    # and when its Schedule fires anyway, nothing happens
    assert c.wake(timer.wait_id, now=5.0) == []
    assert c.state.status == "succeeded"


def test_a_timeout_survives_a_json_round_trip_of_the_state(compile_chain):
    c = _conductor(compile_chain(TIMEOUT_CHAIN))
    c.start(now=0.0)
    (timer,) = c.begin(1, now=0.0).commands
    c = _round_trip(c)
    commands = c.wake(timer.wait_id, now=5.0)
    assert isinstance(commands[0], Interrupt) and commands[0].status == "timed_out"
    assert _ended(commands) == [Ended("failed")]


# ------------------------------------------------------------------------------ sub-chains

SUB_CHAIN = """
chain: parent
steps:
  prep:
    run: core.util.echo
    with: {message: prepared}
    next:
      - publish: {who: "{{ result }}"}
        do: sub
  sub:
    run: "chain:child"
    with: {name: "{{ ctx.who }}"}
output: {child: "{{ result }}"}
"""


def _at_sub(compile_chain, depth: int = 0) -> tuple[Conductor, int]:
    c = _conductor(compile_chain(SUB_CHAIN, chains=["child"]), depth=depth)
    c.start()
    c.begin(1)
    ((number, step),) = _queued(c.finish(1, "succeeded", "prepared"))
    assert step == "sub"
    return c, number


def test_a_sub_chain_step_starts_a_child_run_with_a_deterministic_id(compile_chain):
    c, number = _at_sub(compile_chain, depth=2)
    begin = c.begin(number)
    assert begin.started and begin.args == {"name": "prepared"}
    (start,) = begin.commands
    assert isinstance(start, StartChild)
    assert (start.chain, start.input, start.depth) == ("child", {"name": "prepared"}, 3)
    assert start.run_id == child_run_id("run-1", number) == c.state.active[number].child
    # the same parent run and step run number always give the same child: a driver that
    # starts the step again after a crash finds the run it started before
    again, _ = _at_sub(compile_chain, depth=2)
    assert again.begin(number).commands[0].run_id == start.run_id
    assert child_run_id("run-1", number + 1) != start.run_id and child_run_id("run-2", number) != start.run_id
    # its outcome arrives through finish, as any step's
    assert c.finish(number, "succeeded", {"greeting": "hi"}) == [Ended("succeeded")]
    assert c.state.output == {"child": {"greeting": "hi"}}


def test_a_sub_chain_at_the_deepest_level_still_starts(compile_chain):
    c, number = _at_sub(compile_chain, depth=MAX_DEPTH - 1)
    (start,) = c.begin(number).commands
    assert isinstance(start, StartChild) and start.depth == MAX_DEPTH


def test_a_sub_chain_past_max_depth_fails_the_step(compile_chain):
    c, number = _at_sub(compile_chain, depth=MAX_DEPTH)
    begin = c.begin(number)
    assert begin.started
    assert not any(isinstance(x, StartChild) for x in begin.commands)
    interrupt = next(x for x in begin.commands if isinstance(x, Interrupt))
    assert interrupt.status == "failed" and interrupt.error["type"] == "SubChainDepthExceeded"
    assert interrupt.step_run.child is None
    assert _ended(begin.commands) == [Ended("failed")]
    assert c.state.error["type"] == "SubChainDepthExceeded" and c.state.error["step"] == "sub"
    assert number not in c.state.active


def test_cancel_interrupts_a_running_sub_chain_step(compile_chain):
    c, number = _at_sub(compile_chain)
    (start,) = c.begin(number).commands
    commands = c.cancel("stop it")
    interrupt = commands[0]
    assert isinstance(interrupt, Interrupt) and interrupt.status is None
    assert interrupt.step_run.number == number and interrupt.step_run.child == start.run_id
    assert commands[1:] == [Ended("canceled")]
    assert c.state.error == {"type": "Canceled", "message": "stop it", "step": None}
    # the sub-chain step stays active until its outcome comes; then it changes nothing
    assert c.state.active[number].status == "running"
    assert c.finish(number, "failed", None, {"type": "Canceled", "message": "its parent run was canceled"}) == []
    assert c.state.status == "canceled" and not c.state.active


# ------------------------------------------------------------------------------ pause, resume

PAUSE_CHAIN = """
chain: pausing
steps:
  first:
    run: core.util.noop
    next:
      - do: [second, flaky]
  second:
    run: core.util.noop
  flaky:
    run: core.util.echo
    with: {message: "try {{ attempt }}"}
    retry: {count: 1, delay: 3s, jitter: false}
output: {last: "{{ result }}"}
"""


def test_pause_holds_delivered_step_runs_and_resume_queues_them_again(compile_chain):
    c = _conductor(compile_chain(PAUSE_CHAIN))
    c.start(now=0.0)
    c.begin(1, now=0.0)
    assert c.pause() == []
    assert c.state.status == "paused"
    # the step run that was running finishes as usual, and its edges queue the next ones
    assert _queued(c.finish(1, "succeeded", None, None, now=1.0)) == [(2, "second"), (3, "flaky")]
    assert c.state.status == "paused"
    assert c.begin(2, now=1.0) == Begin(False, None, [], held=True)
    assert c.state.active[2].status == "held"
    assert c.begin(2, now=1.0) == Begin(False, None, [], duplicate=True)  # a held step run is not begun twice
    c = _round_trip(c)  # held survives the stored state
    assert c.state.active[2].status == "held"
    assert _queued(c.resume(now=2.0)) == [(2, "second")]
    assert c.state.status == "running" and c.state.active[2].status == "queued"
    assert c.begin(2, now=2.0).started
    assert c.resume(now=2.0) == []  # not paused: nothing to resume


def test_a_wait_ending_while_paused_is_held_until_resume(compile_chain):
    c = _conductor(compile_chain(PAUSE_CHAIN))
    c.start(now=0.0)
    c.begin(1, now=0.0)
    c.finish(1, "succeeded", None, None, now=0.0)
    c.begin(2, now=0.0)
    c.begin(3, now=0.0)
    (retry,) = c.finish(3, "failed", None, "no", now=0.0)
    assert isinstance(retry, Schedule) and retry.due == 3.0
    c.pause()
    assert c.finish(2, "succeeded", None, None, now=1.0) == []  # running while paused: finishes, ends its branch
    assert c.wake(retry.wait_id, now=3.0) == []  # paused: the retry is held, not queued
    assert c.state.waits[retry.wait_id].held
    assert c.state.status == "paused"
    c = _round_trip(c)
    commands = c.resume(now=10.0)
    assert _queued(commands) == [(4, "flaky")] and not _ended(commands)
    assert not c.state.waits
    sr = c.state.active[4]
    assert sr.attempt == 2
    assert c.begin(4, now=10.0).args == {"message": "try 2"}
    assert c.finish(4, "succeeded", "try 2", None, now=10.0) == [Ended("succeeded")]
    assert c.state.output == {"last": "try 2"}


def test_a_run_paused_before_its_wait_is_due_wakes_as_usual_after_resume(compile_chain):
    c = _conductor(compile_chain(PAUSE_CHAIN))
    c.start(now=0.0)
    c.begin(1, now=0.0)
    c.finish(1, "succeeded", None, None, now=0.0)
    c.begin(2, now=0.0)
    c.finish(2, "succeeded", None, None, now=0.0)
    c.begin(3, now=0.0)
    (retry,) = c.finish(3, "failed", None, "no", now=0.0)
    c.pause()
    assert c.resume(now=1.0) == []  # the wait is not due yet: it stays armed
    assert _queued(c.wake(retry.wait_id, now=3.0)) == [(4, "flaky")]


# ------------------------------------------------------------------------------ retry of an ended run

RETRY_CHAIN = """
chain: again
steps:
  fetch:
    run: core.util.echo
    with: {message: fetched}
    next:
      - publish: {got: "{{ result }}"}
        do: store
  store:
    run: core.util.echo
    with: {message: "stored {{ ctx.got }} after {{ result }}"}
output: {last: "{{ result }}", got: "{{ ctx.got }}"}
"""


def test_retry_queues_the_failed_step_again_with_its_context_and_keeps_what_succeeded(compile_chain):
    c = _conductor(compile_chain(RETRY_CHAIN))
    c.start()
    c.begin(1)
    ((number, _),) = _queued(c.finish(1, "succeeded", "fetched"))
    failed_ctx = dict(c.state.active[number].ctx)
    assert c.begin(number).args == {"message": "stored fetched after fetched"}
    assert c.finish(number, "failed", None, {"type": "Down", "message": "disk full"}) == [Ended("failed")]
    assert c.state.error == {"type": "Down", "message": "disk full", "step": "store"}
    c = _round_trip(c)  # a retry comes later, from the stored state

    commands = c.retry(now=50.0)
    assert _queued(commands) == [(number + 1, "store")]  # fetch is not run again
    assert not _ended(commands)
    assert (c.state.status, c.state.error, c.state.output) == ("running", None, None)
    sr = c.state.active[number + 1]
    assert sr.ctx == failed_ctx == {"got": "fetched"}
    assert sr.attempt == 1
    # its `with` sees what it saw the first time: the predecessor's result
    assert c.begin(number + 1, now=50.0).args == {"message": "stored fetched after fetched"}
    assert c.finish(number + 1, "succeeded", "stored", None, now=51.0) == [Ended("succeeded")]
    assert (c.state.status, c.state.output) == ("succeeded", {"last": "stored", "got": "fetched"})
    assert c.retry() == []  # a succeeded run has nothing to retry


def test_retry_of_a_succeeded_run_returns_nothing(compile_chain):
    c = _conductor(compile_chain(RETRY_CHAIN))
    c.start()
    c.begin(1)
    c.finish(1, "succeeded", "fetched")
    c.begin(2)
    assert c.finish(2, "succeeded", "ok") == [Ended("succeeded")]
    assert c.retry() == []
    assert c.state.status == "succeeded" and c.state.output == {"last": "ok", "got": "fetched"}


def test_retry_after_fail_fast_resumes_the_queued_and_waiting_siblings(compile_chain):
    c = _conductor(compile_chain("""
        chain: siblings
        steps:
          start:
            run: core.util.noop
            next:
              - do: [bad, queued, later]
          bad:
            run: core.util.echo
            with: {message: bad}
          queued:
            run: core.util.echo
            with: {message: queued}
          later:
            run: core.util.echo
            delay: 5s
            with: {message: later}
        output: {last: "{{ result }}"}
    """))
    c.start(now=0.0)
    c.begin(1, now=0.0)
    commands = c.finish(1, "succeeded", None, None, now=0.0)
    assert _queued(commands) == [(2, "bad"), (3, "queued")]
    (delay,) = _scheduled(commands)
    c.begin(2, now=0.0)
    assert c.finish(2, "failed", None, "broke", now=0.0) == [Ended("failed")]
    assert not c.state.waits  # the delay was forgotten by the halt
    assert c.begin(3, now=0.0) == Begin(False, None, [])  # the halted run starts nothing
    c = _round_trip(c)

    commands = c.retry(now=1.0)
    resumed = sorted(s for _, s in _queued(commands)) + sorted(
        c.state.waits[s.wait_id].step for s in _scheduled(commands))
    assert sorted(resumed) == ["bad", "later", "queued"]
    assert "start" not in resumed
    # drive it to the end: every resumed step runs once, and the run succeeds
    ran = []
    pending = list(_queued(commands))
    waits = list(_scheduled(commands))
    final: list[Ended] = []
    while pending or waits:
        if not pending:
            w = waits.pop(0)
            out = c.wake(w.wait_id, now=w.due)
            pending += _queued(out)
            waits += _scheduled(out)
            final += _ended(out)
            continue
        number, step = pending.pop(0)
        assert c.begin(number, now=1.0).started
        ran.append(step)
        out = c.finish(number, "succeeded", step, None, now=1.0)
        pending += _queued(out)
        waits += _scheduled(out)
        final += _ended(out)
    assert sorted(ran) == ["bad", "later", "queued"]
    assert final == [Ended("succeeded")] and c.state.status == "succeeded"


def test_retry_after_fail_fast_does_not_start_the_step_run_the_halt_kept_from_starting(compile_chain):
    # `queued` was queued when `bad` failed, and its message had not been delivered yet when
    # the run was retried (the driver records it canceled when the run ends): the retry queues
    # it again as a new step run, and the old one must neither start when its message finally
    # comes nor keep the run from ending.
    c = _conductor(compile_chain("""
        chain: stale
        steps:
          start:
            run: core.util.noop
            next:
              - do: [bad, queued]
          bad: {run: core.util.noop}
          queued: {run: core.util.noop}
    """))
    c.start()
    c.begin(1)
    assert _queued(c.finish(1, "succeeded")) == [(2, "bad"), (3, "queued")]
    c.begin(2)
    assert c.finish(2, "failed", None, "broke") == [Ended("failed")]
    commands = c.retry()
    assert sorted(s for _, s in _queued(commands)) == ["bad", "queued"]
    assert all(n > 3 for n, _ in _queued(commands))
    assert c.begin(3) == Begin(False, None, [])  # the stale message of the old step run
    final = []
    for number, _ in _queued(commands):
        assert c.begin(number).started
        final += _ended(c.finish(number, "succeeded"))
    assert final == [Ended("succeeded")]


def test_retry_after_cancel_of_a_paused_run_with_a_held_step_run_ends(compile_chain):
    # A held step run was delivered already: nothing delivers it again. A retry of the
    # canceled run queues the step anew; the run then ends when that step run finishes.
    c = _conductor(compile_chain(PAUSE_CHAIN))
    c.start()
    c.begin(1)
    c.pause()
    c.finish(1, "succeeded")
    assert c.begin(2).held
    c.begin(3)
    assert c.state.active[3].status == "held"
    assert c.cancel() == [Ended("canceled")]
    commands = c.retry()
    assert sorted(s for _, s in _queued(commands)) == ["flaky", "second"]
    final = []
    for number, step in _queued(commands):
        assert c.begin(number).started
        final += _ended(c.finish(number, "succeeded", step))
    assert final == [Ended("succeeded")]
    assert not c.state.active


def test_a_run_failed_by_a_fail_target_has_nothing_to_resume(compile_chain):
    c = _conductor(compile_chain("""
        chain: explicit
        steps:
          check:
            run: core.util.echo
            with: {message: nope}
            next:
              - when: result != 'ok'
                do: fail
    """))
    c.start()
    c.begin(1)
    assert c.finish(1, "succeeded", "nope") == [Ended("failed")]
    assert c.state.error["type"] == "FailReached"
    assert c.state.resume == []
    assert c.retry() == []
    assert c.state.status == "failed"


# ------------------------------------------------------------------------------ a lost worker


def test_requeue_of_a_running_step_run_queues_the_same_number_and_it_finishes_once(compile_chain):
    c = _conductor(compile_chain(TIMEOUT_CHAIN))
    c.start(now=0.0)
    (timer,) = c.begin(1, now=0.0).commands
    commands = c.requeue(1)
    assert [type(x) for x in commands] == [Queue] and commands[0].step_run.number == 1
    assert c.state.active[1].status == "queued"
    assert timer.wait_id not in c.state.waits  # the lost worker's timeout goes with it
    assert c.requeue(1) == []  # queued, not running: nothing to do
    assert c.wake(timer.wait_id, now=5.0) == []  # and its Schedule, when it fires, times out nothing
    assert c.state.active[1].status == "queued"

    again = c.begin(1, now=10.0)
    assert again.started and again.args == {"seconds": 60}
    (timer2,) = again.commands
    assert isinstance(timer2, Schedule) and timer2.due == 15.0  # a fresh timeout for the new attempt
    assert c.begin(1, now=10.0).duplicate

    # the first outcome to arrive (the lost worker's late one, or the new worker's) counts;
    # whichever comes second finds the step run finished
    assert _queued(c.finish(1, "succeeded", None, None, now=11.0)) == [(2, "after")]
    assert c.finish(1, "succeeded", None, None, now=12.0) == []
    assert c.finish(1, "failed", None, "late", now=12.0) == []
    c.begin(2, now=12.0)
    assert c.finish(2, "succeeded", None, None, now=12.0) == [Ended("succeeded")]
    assert c.state.output == {"done": True}


def test_requeue_of_what_is_not_running_does_nothing(compile_chain):
    c = _conductor(compile_chain(TIMEOUT_CHAIN))
    c.start()
    assert c.requeue(1) == []  # queued
    assert c.requeue(99) == []  # unknown
    c.begin(1)
    c.cancel()
    assert c.requeue(1) == []  # the run ended


# ------------------------------------------------------------------------------ state size

BIG_CHAIN = """
chain: big
vars: {blob: "{{ input.blob }}"}
steps:
  each:
    run: core.util.echo
    for_each: "{{ range(500) | list }}"
    with: {message: "{{ item }}"}
    next:
      - publish: {count: "{{ result | length }}"}
output: {count: "{{ ctx.count }}"}
"""


def test_a_large_for_each_keeps_each_context_once_in_the_stored_state(compile_chain):
    blob = "x" * 20_000
    c = _conductor(compile_chain(BIG_CHAIN), {"blob": blob})
    queued = _queued(c.start())
    assert len(queued) == 500
    for number, _ in queued[:250]:
        c.begin(number)
        c.finish(number, "succeeded", number)
    for number, _ in queued[250:260]:
        c.begin(number)  # some running, the rest queued
    state = c.state.to_dict()
    text = json.dumps(state)
    assert len(text) < 2_000_000, len(text)  # 500 copies of the context would be over 10 MB
    restored = RunState.from_dict(json.loads(text))
    assert restored.to_dict() == state
    # the step runs share their context again, as they did before the state was stored
    contexts = {id(sr.ctx) for sr in restored.active.values()}
    assert len(restored.active) == 250 and len(contexts) == 1

    # and the restored run carries on to the same end
    c = Conductor(c.program, restored, jitter=False)
    running = {number for number, _ in queued[250:260]}
    for number, _ in queued[250:]:
        if number not in running:
            c.begin(number)
    final = []
    for number, _ in queued[250:]:
        final += _ended(c.finish(number, "succeeded", number))
    assert final == [Ended("succeeded")]
    assert c.state.output == {"count": 500}


def test_retry_while_for_each_items_still_run_starts_the_step_again_and_the_old_items_change_nothing(compile_chain):
    c = _conductor(compile_chain("""
        chain: items-in-flight
        steps:
          start:
            run: core.util.noop
            next:
              - do: [bad, each]
          bad: {run: core.util.noop}
          each:
            run: core.util.echo
            for_each: [1, 2]
            with: {message: "{{ item }}"}
        output: {last: "{{ result }}"}
    """))
    c.start()
    c.begin(1)
    assert _queued(c.finish(1, "succeeded")) == [(2, "bad"), (3, "each"), (4, "each")]
    for number in (2, 3, 4):
        c.begin(number)
    assert c.finish(2, "failed", None, "broke") == [Ended("failed")]
    commands = c.retry()
    assert sorted(s for _, s in _queued(commands)) == ["bad", "each", "each"]
    # the items that were running when the run failed finish now: the step is running again
    # as a whole, so they change nothing
    assert c.finish(3, "succeeded", "old 1") == []
    assert c.finish(4, "succeeded", "old 2") == []
    final = []
    for number, step in _queued(commands):
        args = c.begin(number).args
        final += _ended(c.finish(number, "succeeded", args.get("message", step) if args else step))
    assert final == [Ended("succeeded")]
    assert c.state.output == {"last": [1, 2]}
