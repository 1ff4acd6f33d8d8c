"""The conductor: chain semantics (spec sections 2-5) as a pure state machine.

A run's state goes in with an event (the run starts, a step run is about to start, a step
run finished, a wait ended), and the state comes out changed, together with commands for
whoever drives it: queue this step run, wake me at this time, the run ended. Rehearsals, the
embedded runtime and the RabbitMQ workers all drive this same code, so the semantics are
written and tested once. Nothing here sleeps, reads a clock, or does I/O; the state is plain
data (`RunState.to_dict`) so it can be stored between events.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from legion.dsl.budget import ValueProblem, check_value, evaluating, step_binding
from legion.dsl.catalog import Catalog, FunctionSpec
from legion.dsl.errors import ExpressionError, LegionError
from legion.dsl.expressions import Condition, Renderer, compile_value, has_templates
from legion.dsl.model import Chain, Retry, Step
from legion.engine.runstate import Group, Join, Prior, Resume, RunState, StepRun, Wait

# Run and step run (task) statuses, spec section 4.
RUN_STATUSES = ("pending", "running", "paused", "succeeded", "failed", "canceled")
MAX_DEPTH = 8  # sub-chains nest at most this deep
# Sub-chain run ids are made from the parent's run id and step run number, so that starting
# the same sub-chain step again (after a crash) finds the run it started before.
CHILD_RUNS = uuid.UUID("5f1c8a52-2b0e-4c3e-9a43-6f1d3c1f0b7e")
TASK_STATUSES = ("queued", "delayed", "running", "succeeded", "failed", "skipped", "canceled", "timed_out")


def make_error(type_: str, message: str, step: str | None = None) -> dict[str, Any]:
    return {"type": type_, "message": message, "step": step}


def normalize_error(error: Any, step: str | None) -> dict[str, Any]:
    """A step failure's error as `{type, message, step}` and whatever else it says of its
    origin (`exception`, `traceback`); untyped failures are `StepFailed`."""
    if isinstance(error, Mapping):
        extra = {k: v for k, v in error.items() if k not in ("type", "message", "step")}
        return dict(extra, **make_error(str(error.get("type") or "StepFailed"), str(error.get("message") or ""), step))
    if error is None:
        return make_error("StepFailed", "the step failed", step)
    return make_error("StepFailed", str(error), step)


# ---------------------------------------------------------------- compiled chain


# Failures that another attempt cannot mend: retried only when `retry.when` names them.
NOT_RETRIED = ("InvalidArguments",)


class StepProgram:
    """One step with its conditions and templates compiled once. `timeout` and `retry` are
    the step's own, else the defaults its function declares (`@function(timeout=, retry=)`)."""

    __slots__ = ("name", "step", "run", "with_", "static_with", "for_each", "edges", "retry", "retry_when", "retry_names", "timeout",
                 "join_need", "preds", "is_sub_chain", "agent")

    def __init__(self, name: str, step: Step, preds: list[str], function: FunctionSpec | None = None) -> None:
        self.name = name
        self.step = step
        self.run = step.run
        self.is_sub_chain = step.run.startswith("chain:")
        self.timeout = step.timeout if step.timeout is not None else (function.timeout if function else None)
        self.retry = step.retry if step.retry is not None else (
            Retry.model_validate(function.retry) if function is not None and function.retry else None)
        self.with_: Renderer = compile_value(step.with_)
        self.agent: Renderer | None = compile_value(step.agent) if step.agent is not None else None
        self.static_with = not has_templates(step.with_)  # renders to itself: no scope, no budget
        self.for_each: Renderer | None = compile_value(step.for_each) if step.for_each is not None else None
        self.edges: list[tuple[Condition, Renderer | None, list[str], int]] = [
            (Condition(e.when), compile_value(e.publish) if e.publish else None, list(e.do), i)
            for i, e in enumerate(step.next)
        ]
        self.retry_when = Condition(self.retry.when) if self.retry else None
        self.retry_names = str(self.retry.when) if self.retry else ""
        self.preds = preds
        if step.join == "all":
            self.join_need: int | None = len(preds)
        else:
            self.join_need = step.join if isinstance(step.join, int) else None


class ChainProgram:
    """A validated chain compiled for the conductor; shared by every run of that version."""

    def __init__(self, chain: Chain, version: int = 1, functions: Catalog | None = None) -> None:
        self.chain = chain
        self.name = chain.chain
        self.version = version
        preds = chain.predecessors()
        self.steps = {name: StepProgram(name, step, preds[name], _spec(functions, step.run)) for name, step in chain.steps.items()}
        self.starts = chain.start_steps()
        self.vars: Renderer = compile_value(chain.vars)
        self.output: Renderer | None = compile_value(chain.output) if chain.output is not None else None
        self.input_validator = jsonschema.Draft202012Validator(chain.input) if chain.input else None
        self.max_steps = chain.max_steps


def _spec(functions: Catalog | None, ref: str) -> FunctionSpec | None:
    if functions is None or ref.startswith("chain:"):
        return None
    try:
        return functions.get(ref)
    except LegionError:  # its signature cannot be read: the step fails when it runs
        return None


# ---------------------------------------------------------------- commands


@dataclass(slots=True)
class Queue:
    """Put this step run at the back of the queue (a broker message, or the rehearsal FIFO)."""

    step_run: StepRun


@dataclass(slots=True)
class Schedule:
    """Call `wake(wait_id)` when the clock reaches `due` (not before)."""

    wait_id: int
    due: float


@dataclass(slots=True)
class Ended:
    """The run reached a final status; its output and error are in the state."""

    status: str


@dataclass(slots=True)
class StartChild:
    """Start run `run_id` of chain `chain` with `input`, as the sub-chain of `step_run`; when it
    ends, hand its outcome (`child_outcome`) to `finish` of that step run."""

    step_run: StepRun
    chain: str
    input: dict[str, Any]
    run_id: str
    depth: int
    agent: str | None = None  # the agent the child run is for


@dataclass(slots=True)
class Interrupt:
    """Stop what `step_run` is doing: the function's `ctx.canceled` is set (an async one is
    cancelled), or the sub-chain run `step_run.child` is canceled. With `status`, the step run
    ended here (a timeout, say): record it so, with `error`; its function's own outcome, when
    it comes, changes nothing."""

    step_run: StepRun
    status: str | None = None
    error: dict[str, Any] | None = None


Command = Queue | Schedule | Ended | StartChild | Interrupt


def child_outcome(chain: str, status: str, output: Any, error: dict[str, Any] | None) -> tuple[str, Any, dict[str, Any] | None]:
    """What an ended run of sub-chain `chain` gives its step: (status, result, error)."""
    if status == "succeeded":
        return "succeeded", output, None
    err = error or {"type": "StepFailed", "message": f"sub-chain {chain} {status}"}
    return "failed", None, {"type": err["type"], "message": err["message"]}


def child_run_id(run_id: str, number: int) -> str:
    return str(uuid.uuid5(CHILD_RUNS, f"{run_id}/{number}"))


@dataclass(slots=True)
class Begin:
    """What `Conductor.begin` decided: `started` puts the step run in the trace; `args` (when
    not None) are its rendered arguments, to be passed to its function. `duplicate`: the step
    run had already begun (a message delivered twice): nothing to do, nothing to record.
    `held`: the run is paused; the step run waits for `resume`, which queues it again."""

    started: bool
    args: dict[str, Any] | None
    commands: list[Command]
    duplicate: bool = False
    held: bool = False

@dataclass(slots=True)
class Decided:
    """What a finished step run's conditions and templates gave, evaluated by `decide`
    before `finish` (so outside the driver's lock): whether `retry.when` holds (None when no
    retry is due), and the edges that fire with their contexts, or the error of the edge
    that could not be evaluated."""

    retry: bool | ExpressionError | None
    fired: list[tuple[dict[str, Any], list[str]]] | tuple[int, ExpressionError]


NO_PRIOR: Prior = (None, None, None, None)
NO_SCOPE: dict[str, Any] = {}


class Conductor:
    """Drives one run of one chain program. Methods return the commands the driver must carry out."""

    def __init__(self, program: ChainProgram, state: RunState, *, jitter: bool = True, rng: random.Random | None = None) -> None:
        self.program = program
        self.state = state
        self.jitter = jitter  # off in deterministic mode (rehearsals): spec section 5
        self.rng = rng or random.Random()
        self._out: list[Command] = []

    # -- events -----------------------------------------------------------------------------

    def start(self, now: float = 0.0) -> list[Command]:
        """Check the input, render `vars`, queue the start steps."""
        st = self.state
        st.status = "running"
        validator = self.program.input_validator
        if validator is not None:
            problems = sorted(validator.iter_errors(st.input), key=lambda e: list(e.path))
            if problems:
                where = "/".join(str(p) for p in problems[0].path) or "input"
                self._fail_run(make_error("InputInvalid", f"run input of chain {self.program.name!r} does not fit its `input` schema at {where}: {problems[0].message}"), render_output=False)
                return self._flush()
        try:
            st.vars = self.program.vars({"input": st.input, "run": st.run})
        except ExpressionError as exc:
            self._fail_run(make_error("ExpressionError", f"chain {self.program.name!r}, vars: {exc.message}"), render_output=False)
            return self._flush()
        st.merged = dict(st.vars)
        for name in self.program.starts:
            self._ready(name, dict(st.vars), NO_PRIOR, now)
        self._maybe_end()
        return self._flush()

    def render_with(self, number: int) -> dict[str, Any] | ExpressionError | None:
        """A queued step run's arguments, rendered from its `with` (None when there is no such
        queued step run). Reads only what does not change once the step run is queued, so a driver
        may call it without holding the run's lock and pass the result to `begin`: a slow
        template then never blocks the run's other events (a cancel among them)."""
        sr = self.state.active.get(number)
        if sr is None or sr.status != "queued":  # gone, or begun already: `begin` will not start it
            return None
        return self._render_with(sr)

    def _render_with(self, sr: StepRun) -> dict[str, Any] | ExpressionError:
        prog = self.program.steps[sr.step]
        try:
            if prog.static_with:
                args = prog.with_(NO_SCOPE)
            else:
                # `secret()` tokens made here are bound to this step run (spec section 7).
                with evaluating(step_binding(self.state.run["id"], sr.number)):
                    args = prog.with_(self.scope_for_start(sr))
            check_value(args)
        except ExpressionError as exc:
            return exc
        except ValueProblem as exc:
            return ExpressionError(f"the rendered arguments cannot be stored: {exc.message}")
        return args if isinstance(args, dict) else {}

    def _render_agent(self, sr: StepRun) -> str | None | ExpressionError:
        """The agent a sub-chain step names (`agent:`), rendered; None: the run's own."""
        prog = self.program.steps[sr.step]
        if prog.agent is None:
            return self.state.run.get("agent")
        try:
            agent = prog.agent(self.scope_for_start(sr))
        except ExpressionError as exc:
            return exc
        if not isinstance(agent, str) or not agent.strip() or len(agent) > 255:
            return ExpressionError(f"it must render to an agent's name (text of 1 to 255 characters), not {agent!r}")
        return agent

    def begin(self, number: int, rendered: dict[str, Any] | ExpressionError | None = None, now: float = 0.0) -> Begin:
        """A queued step run is due to start, with its arguments as `render_with` gave them
        (rendered here when not given).

        It does not start when the run has halted (it is dropped and ends no branch) or when
        it is the step run past `max_steps` (the run fails with `StepLimitExceeded`). It starts
        and fails the run when its `with` does not render (`ExpressionError`).
        """
        st = self.state
        sr = st.active.get(number)
        if sr is None or st.halted or st.ended:
            if sr is not None:
                sr.status = "canceled"
                del st.active[number]
            return Begin(False, None, [])
        if sr.status != "queued":  # it begins once, whatever delivers it again
            return Begin(False, None, [], duplicate=True)
        if st.status == "paused":
            sr.status = "held"
            return Begin(False, None, [], held=True)
        if number > self.program.max_steps:
            del st.active[number]
            self._fail_run(make_error(
                "StepLimitExceeded",
                f"chain {self.program.name!r} reached max_steps ({self.program.max_steps}) at step {sr.step!r}: "
                f"raise `max_steps` in the chain if this many step runs are expected (retries and for_each items count)",
                sr.step))
            return Begin(False, None, self._flush())
        sr.status = "running"
        st.began = True
        args = rendered if rendered is not None else self._render_with(sr)
        if isinstance(args, ExpressionError):
            del st.active[number]
            self._end_branch(sr.ctx)
            self._fail_run(make_error("ExpressionError", f"chain {self.program.name!r}, step {sr.step!r}, with: {args.message}", sr.step))
            return Begin(True, None, self._flush())
        args = args if isinstance(args, dict) else {}
        prog = self.program.steps[sr.step]
        if prog.timeout is not None:
            sr.timer = self._wait("timeout", prog.timeout, now, sr.step, sr.ctx, sr.prior, item=sr.item, index=sr.index,
                                  group=sr.group, number=number)
        if prog.is_sub_chain:
            if st.depth + 1 > MAX_DEPTH:
                self._stop(sr, "failed", make_error("SubChainDepthExceeded", f"sub-chains nest deeper than {MAX_DEPTH} at step {sr.step!r}"), now)
            else:
                agent = self._render_agent(sr)
                if isinstance(agent, ExpressionError):
                    del st.active[number]
                    self._end_branch(sr.ctx)
                    self._fail_run(make_error("ExpressionError", f"chain {self.program.name!r}, step {sr.step!r}, agent: {agent.message}", sr.step))
                    return Begin(True, None, self._flush())
                sr.child = child_run_id(st.run["id"], number)
                self._out.append(StartChild(sr, prog.run[len("chain:"):], args, sr.child, st.depth + 1, agent))
        return Begin(True, args, self._flush())

    def claimable(self, number: int, function: str) -> bool:
        """Whether a worker may begin queued step run `number` (of `function`) without the
        run's lock, by claiming its task row: a plain function step within `max_steps`, with
        no timeout to arm and no sub-chain to start, of a run that is running. For it `begin`
        would only mark it running, which `started` does once its outcome comes."""
        st = self.state
        sr = st.active.get(number)
        if sr is None or sr.status != "queued" or st.status != "running" or st.halted or number > self.program.max_steps:
            return False
        prog = self.program.steps[sr.step]
        return prog.run == function and prog.timeout is None and not prog.is_sub_chain

    def started(self, number: int) -> None:
        """A step run a worker claimed (see `claimable`) is running: its state catches up,
        under the run's lock, before its outcome is applied."""
        sr = self.state.active.get(number)
        if sr is not None and sr.status == "queued":
            sr.status = "running"
            self.state.began = True

    def decide(self, number: int, status: str, result: Any = None, error: Any = None) -> Decided | None:
        """Evaluate a finished step run's `retry.when` and edges, changing nothing: a driver
        may call it without holding the run's lock and pass the result to `finish`. None for
        a step run that is not active, or is a `for_each` item (whose step's edges are
        evaluated once all items are done, in `finish`)."""
        sr = self.state.active.get(number)
        if sr is None or sr.group is not None:
            return None
        prog = self.program.steps[sr.step]
        err = normalize_error(error, sr.step) if status != "succeeded" else None
        retry = self._retry_holds(sr, prog, result, err) if status != "succeeded" and self._retry_due(sr, prog, err) else None
        return Decided(retry, self._fire(prog, self._scope(sr.ctx, result, status, err, sr.attempt)))

    def finish(self, number: int, status: str, result: Any = None, error: Any = None, now: float = 0.0,
               decided: Decided | None = None) -> list[Command]:
        """A step run ended (`succeeded` or `failed`): retry, collect for_each items, follow
        edges (as `decided` evaluated them, when given)."""
        st = self.state
        sr = st.active.pop(number, None)
        if sr is None:
            return []
        if sr.timer is not None:
            st.waits.pop(sr.timer, None)
        sr.status = status
        if st.halted or st.ended:
            # Recorded by the driver; it changes neither status nor output. A retry of the
            # run starts the step again.
            self._resume_at(sr.step, sr.ctx, sr.prior, sr.group)
            return []
        if sr.group is not None and sr.group not in st.groups:
            # An item of a for_each cut short by a halt, ending after a retry started the
            # step again as a whole: it changes nothing.
            self._maybe_end()
            return self._flush()
        prog = self.program.steps[sr.step]
        err = normalize_error(error, sr.step) if status != "succeeded" else None
        if status != "succeeded" and self._retry(sr, prog, result, err, now, decided.retry if decided else None):
            return self._flush()
        if sr.group is not None:
            self._item_done(sr, status, result, err, now)
        else:
            self._step_done(prog, sr.ctx, result, status, err, sr.attempt, now, sr.number, decided.fired if decided else None, sr.prior)
        self._maybe_end()
        return self._flush()

    def wake(self, wait_id: int, now: float = 0.0) -> list[Command]:
        """A wait is over: a retry or delay queues its step run; a timeout ends its step run
        as `timed_out`, if it is still running."""
        st = self.state
        w = st.waits.get(wait_id)
        if w is not None and w.kind != "timeout" and st.status == "paused":
            w.held = True  # its step run is queued when the run resumes
            return []
        st.waits.pop(wait_id, None)
        if w is None or st.halted or st.ended:
            self._maybe_end()
            return self._flush()
        if w.kind == "timeout":
            sr = st.active.get(w.number) if w.number is not None else None
            if sr is not None and sr.status == "running":
                sr.timer = None
                what = "sub-chain" if sr.child else "step"
                error = make_error("Timeout", f"{what} {sr.step!r} ran past its timeout of {self.program.steps[sr.step].timeout:g}s", sr.step)
                self._stop(sr, "timed_out", error, now)
                return self._flush()
        else:
            self._carry_wait(w, now)
        self._maybe_end()
        return self._flush()

    def cancel(self, reason: str = "canceled") -> list[Command]:
        st = self.state
        if st.ended:
            return []
        self._halt()
        # Step runs not started yet never will; those executing are told to stop (their
        # sub-chains are canceled) and are recorded by the driver when they finish (their
        # results change nothing), so they stay in `active` until then.
        for sr in st.active.values():
            if sr.status == "running":
                self._out.append(Interrupt(sr))
            else:
                sr.status = "canceled"
        st.status = "canceled"
        st.error = st.error or make_error("Canceled", reason)
        self._out.append(Ended("canceled"))
        return self._flush()

    def requeue(self, number: int, *, claimed: bool = False) -> list[Command]:
        """A running step run whose worker was lost (its lease expired) is queued again: its
        function runs again, and it still finishes once. `claimed`: the lost worker had
        claimed it (see `claimable`), so it is still `queued` here; it is queued again too."""
        sr = self.state.active.get(number)
        if sr is None or sr.status not in (("running", "queued") if claimed else ("running",)) or self.state.ended:
            return []
        sr.status = "queued"
        if sr.timer is not None:
            self.state.waits.pop(sr.timer, None)
            sr.timer = None
        return [Queue(sr)]

    def pause(self) -> list[Command]:
        """Start no more step runs until `resume`; those running finish as usual."""
        if self.state.status == "running":
            self.state.status = "paused"
        return []

    def resume(self, now: float = 0.0) -> list[Command]:
        """Queue again the step runs delivered while paused, and carry out the waits that
        ended meanwhile."""
        st = self.state
        if st.status != "paused":
            return []
        st.status = "running"
        for sr in st.active.values():
            if sr.status == "held":
                sr.status = "queued"
                self._out.append(Queue(sr))
        for w in [w for w in st.waits.values() if w.held]:
            del st.waits[w.id]
            self._carry_wait(w, now)
        self._maybe_end()
        return self._flush()

    def retry(self, now: float = 0.0) -> list[Command]:
        """Run a failed or canceled run again from where its branches stopped: each step whose
        failure ended its branch, and each step that the run's halt kept from starting, starts
        again with the context it had; what succeeded is kept. Nothing happens (and nothing is
        returned) for a run that is not failed or canceled, or has nowhere to start again."""
        st = self.state
        if st.status not in ("failed", "canceled") or not st.resume:
            return []
        points, st.resume = st.resume, []
        # The step runs the halt kept from starting are among the points and start again as
        # new step runs; the old ones (recorded canceled, their message still on its way or,
        # held while paused, delivered already) never start, nor keep the run from ending.
        for number in [n for n, sr in st.active.items() if sr.status != "running"]:
            del st.active[number]
        st.status, st.halted, st.error, st.output = "running", False, None, None
        for join in st.joins.values():
            if join.state == "skipped":
                join.state = "open"
        for point in points:
            self._expand(point.step, point.ctx, point.prior, now)
        self._maybe_end()
        return self._flush()

    def abort(self, error: dict[str, Any]) -> list[Command]:
        """Fail the run at once with `error` (the driver could not keep its record, say): as
        fail-fast, nothing starts any more; a run already ended is left as it is."""
        self._fail_run(error, render_output=False)
        return self._flush()

    # -- scopes -----------------------------------------------------------------------------

    def scope_for_start(self, sr: StepRun) -> dict[str, Any]:
        """Names for `with`: the starting step's predecessor's result, status and error."""
        result, status, error, _ = sr.prior
        scope = {
            "input": self.state.input, "ctx": sr.ctx, "result": result, "status": status,
            "succeeded": status == "succeeded", "failed": status == "failed", "error": error,
            "attempt": sr.attempt, "run": self.state.run,
        }
        if sr.group is not None:
            scope["item"] = sr.item
            scope["index"] = sr.index
        return scope

    def _scope(self, ctx: dict[str, Any], result: Any, status: str | None, error: Any, attempt: int) -> dict[str, Any]:
        return {
            "input": self.state.input, "ctx": ctx, "result": result, "status": status,
            "succeeded": status == "succeeded", "failed": status == "failed", "error": error,
            "attempt": attempt, "run": self.state.run,
        }

    # -- internals --------------------------------------------------------------------------

    def _flush(self) -> list[Command]:
        out, self._out = self._out, []
        return out

    def _new_id(self) -> int:
        i = self.state.next_id
        self.state.next_id += 1
        return i

    def _queue(self, step: str, ctx: dict[str, Any], prior: Prior, attempt: int = 1,
               item: Any = None, index: int | None = None, group: int | None = None) -> None:
        st = self.state
        st.numbered += 1
        sr = StepRun(st.numbered, step, ctx, prior, attempt, item, index, group)
        st.active[sr.number] = sr
        self._out.append(Queue(sr))

    def _wait(self, kind: str, seconds: float, now: float, step: str, ctx: dict[str, Any], prior: Prior,
              attempt: int = 1, item: Any = None, index: int | None = None, group: int | None = None,
              number: int | None = None) -> int:
        w = Wait(self._new_id(), now + seconds, kind, step, ctx, prior, attempt, item, index, group, number)
        self.state.waits[w.id] = w
        self._out.append(Schedule(w.id, w.due))
        return w.id

    def _carry_wait(self, w: Wait, now: float) -> None:
        if w.kind == "retry":
            self._queue(w.step, w.ctx, w.prior, w.attempt, w.item, w.index, w.group)
        elif w.kind == "delay":
            self._expand(w.step, w.ctx, w.prior, now)

    def _stop(self, sr: StepRun, status: str, error: dict[str, Any], now: float) -> None:
        """End a step run here, without its function's outcome (which, when it comes, finds
        the step run gone): the driver records it and stops the function or sub-chain."""
        self._out.append(Interrupt(sr, status, error))
        done = self.finish(sr.number, "failed", None, error, now)  # flushes what is out, unless the run had halted
        self._out = done + self._out

    def _resume_at(self, step: str, ctx: dict[str, Any], prior: Prior, group: int | None = None) -> None:
        """Remember where a retry of this run starts again (a for_each step: all its items)."""
        if group is not None:
            g = self.state.groups.get(group)
            if g is None:
                return  # its group was remembered when the run halted
            ctx, prior = g.ctx, g.prior
        if not any(r.step == step and r.ctx is ctx for r in self.state.resume):
            self.state.resume.append(Resume(step, ctx, prior))

    def _halt(self) -> None:
        """No step run starts any more: remember, for a retry, the step runs queued, the waits
        and the for_each steps cut short; forget the waits and groups."""
        st = self.state
        st.halted = True
        for g in st.groups.values():
            self._resume_at(g.step, g.ctx, g.prior)
        for sr in st.active.values():
            if sr.status != "running":
                self._resume_at(sr.step, sr.ctx, sr.prior, sr.group)
        for w in st.waits.values():
            if w.kind != "timeout" and w.group is None:
                self._resume_at(w.step, w.ctx, w.prior)
        st.waits.clear()
        st.groups.clear()

    def _retry_due(self, sr: StepRun, prog: StepProgram, err: dict[str, Any] | None) -> bool:
        """Whether another attempt may be made, before `retry.when` is asked."""
        retry = prog.retry
        if retry is None or sr.attempt > retry.count:
            return False
        return not (err is not None and err["type"] in NOT_RETRIED and err["type"] not in prog.retry_names)

    def _retry_holds(self, sr: StepRun, prog: StepProgram, result: Any, err: dict[str, Any] | None) -> bool | ExpressionError:
        """Whether `retry.when` holds for a failed attempt, or the error evaluating it. Changes nothing."""
        assert prog.retry_when is not None
        try:
            return prog.retry_when(self._scope(sr.ctx, result, "failed", err, sr.attempt))
        except ExpressionError as exc:
            return exc

    def _retry(self, sr: StepRun, prog: StepProgram, result: Any, err: dict[str, Any] | None, now: float,
               holds: bool | ExpressionError | None = None) -> bool:
        if not self._retry_due(sr, prog, err):
            return False
        retry = prog.retry
        assert retry is not None
        if holds is None:
            holds = self._retry_holds(sr, prog, result, err)
        if isinstance(holds, ExpressionError):
            self._end_branch(sr.ctx)
            self._fail_run(make_error("ExpressionError", f"chain {self.program.name!r}, step {sr.step!r}, retry.when: {holds.message}", sr.step))
            return True
        if not holds:
            return False
        try:
            wait = min(retry.delay * retry.backoff ** (sr.attempt - 1), retry.max_delay)
        except OverflowError:  # the backoff grew past any float: it is long since capped
            wait = retry.max_delay
        if retry.jitter and self.jitter:
            wait = self.rng.uniform(0, wait)
        self._wait("retry", wait, now, sr.step, sr.ctx, sr.prior, sr.attempt + 1, sr.item, sr.index, sr.group)
        return True

    def _item_done(self, sr: StepRun, status: str, result: Any, err: dict[str, Any] | None, now: float) -> None:
        assert sr.group is not None and sr.index is not None
        g = self.state.groups[sr.group]
        g.finished += 1
        g.last_attempt = sr.attempt
        g.results[sr.index] = result
        self.state.result_set(sr.group, sr.index)
        if status != "succeeded":
            assert err is not None
            g.errors[sr.index] = err
        if g.next_index < len(g.items):
            self._queue_item(sr.group, g)
        if g.finished == len(g.items):
            del self.state.groups[sr.group]
            prog = self.program.steps[g.step]
            if g.errors:
                first = g.errors[min(g.errors)]
                self._step_done(prog, g.ctx, g.results, "failed", first, g.last_attempt, now, sr.number, prior=g.prior)
            else:
                self._step_done(prog, g.ctx, g.results, "succeeded", None, g.last_attempt, now, sr.number)

    def _queue_item(self, gid: int, g: Group) -> None:
        i = g.next_index
        g.next_index += 1
        self._queue(g.step, g.ctx, g.prior, 1, g.items[i], i, gid)

    def _step_done(self, prog: StepProgram, ctx: dict[str, Any], result: Any, status: str,
                   err: dict[str, Any] | None, attempt: int, now: float, number: int | None = None,
                   fired: list[tuple[dict[str, Any], list[str]]] | tuple[int, ExpressionError] | None = None,
                   prior: Prior = (None, None, None, None)) -> None:
        """The step finished (after retries, or all items): evaluate every edge (unless `fired`
        says what they gave), then start targets."""
        st = self.state
        st.last_result = result
        if not prog.edges:
            if status != "succeeded":
                self._end_branch(ctx)
                self._resume_at(prog.name, ctx, prior)
                self._fail_run(err or normalize_error(None, prog.name))
            else:
                self._end_branch(ctx)
            return
        if fired is None:
            fired = self._fire(prog, self._scope(ctx, result, status, err, attempt))
        if isinstance(fired, tuple):
            index, exc = fired
            self._end_branch(ctx)
            self._fail_run(make_error("ExpressionError", f"chain {self.program.name!r}, step {prog.name!r}, edge {index}: {exc.message}", prog.name))
            return
        if not fired:
            self._end_branch(ctx)
            if status != "succeeded":
                self._resume_at(prog.name, ctx, prior)
                self._fail_run(err or normalize_error(None, prog.name))
            return
        prior = (result, status, err, number)
        for new_ctx, targets in fired:
            if not targets:
                self._end_branch(new_ctx)
                continue
            ended = False
            for target in targets:
                if target == "fail":
                    if not ended:
                        self._end_branch(new_ctx)
                        ended = True
                    self._fail_reached(prog.name, err)
                    continue
                self._arrive(target, new_ctx if len(targets) == 1 else dict(new_ctx), prog.name, prior, now)
                if st.halted:
                    return

    def _fire(self, prog: StepProgram, scope: dict[str, Any]) -> list[tuple[dict[str, Any], list[str]]] | tuple[int, ExpressionError]:
        """Every edge of a finished step, in order: the context and targets of each that fires,
        or (edge index, error) for the first that cannot be evaluated. Changes nothing."""
        ctx = scope["ctx"]
        fired: list[tuple[dict[str, Any], list[str]]] = []
        for cond, publish, targets, index in prog.edges:
            try:
                if not cond(scope):
                    continue
                published = publish(scope) if publish is not None else None
            except ExpressionError as exc:
                return index, exc
            new_ctx = dict(ctx)
            if published:
                new_ctx.update(published)
            fired.append((new_ctx, targets))
        return fired

    def _arrive(self, target: str, ctx: dict[str, Any], pred: str, prior: Prior, now: float) -> None:
        prog = self.program.steps[target]
        if prog.join_need is None:
            self._ready(target, ctx, prior, now)
            return
        join = self.state.joins.get(target)
        if join is None:
            join = self.state.joins[target] = Join()
        if join.state != "open":
            if join.state == "ran" and pred in join.counted:
                join.state, join.arrivals = "open", []
            else:
                self._end_branch(ctx)  # a late or extra arrival ends its branch here
                return
        join.arrivals.append((pred, ctx))
        distinct = {p for p, _ in join.arrivals}
        if len(distinct) < prog.join_need:
            return
        merged: dict[str, Any] = {}
        for _, arrived in join.arrivals:
            merged.update(arrived)
        join.state, join.counted, join.arrivals = "ran", sorted(distinct), []
        self._ready(target, merged, prior, now)

    def _ready(self, step: str, ctx: dict[str, Any], prior: Prior, now: float) -> None:
        delay = self.program.steps[step].step.delay
        if delay > 0:
            self._wait("delay", delay, now, step, ctx, prior)
        else:
            self._expand(step, ctx, prior, now)

    def _expand(self, step: str, ctx: dict[str, Any], prior: Prior, now: float) -> None:
        prog = self.program.steps[step]
        if prog.for_each is None:
            self._queue(step, ctx, prior)
            return
        result, status, error, _ = prior
        try:
            items = prog.for_each({
                "input": self.state.input, "ctx": ctx, "result": result, "status": status,
                "succeeded": status == "succeeded", "failed": status == "failed", "error": error,
                "attempt": 1, "run": self.state.run,
            })
            if not isinstance(items, list):
                raise ExpressionError(f"{prog.step.for_each!r} gave {type(items).__name__}, not a list")
        except ExpressionError as exc:
            self._end_branch(ctx)
            self._fail_run(make_error("ExpressionError", f"chain {self.program.name!r}, step {step!r}, for_each: {exc.message}", step))
            return
        if not items:
            self._step_done(prog, ctx, [], "succeeded", None, 1, now, prior[3])
            return
        gid = self._new_id()
        limit = prog.step.concurrency or len(items)
        g = Group(step, ctx, prior, items, limit, results=[None] * len(items))
        self.state.groups[gid] = g
        for _ in range(min(limit, len(items))):
            self._queue_item(gid, g)

    def _end_branch(self, ctx: dict[str, Any]) -> None:
        self.state.merged.update(ctx)

    def _fail_reached(self, step: str, err: dict[str, Any] | None) -> None:
        if self.state.error is None:
            self.state.error = err if err is not None else make_error("FailReached", f"fail reached from {step}", step)

    def _fail_run(self, error: dict[str, Any], *, render_output: bool = True) -> None:
        """Fail-fast: the run is failed at once and its output rendered; nothing starts any more."""
        st = self.state
        if st.ended:
            return
        self._halt()
        if st.error is None:
            st.error = error
        st.status = "failed"
        st.output = self._render_output() if render_output and st.began else None
        self._out.append(Ended("failed"))

    def _busy(self) -> bool:
        st = self.state
        return bool(st.active or st.waits)

    def _maybe_end(self) -> None:
        st = self.state
        if st.ended or self._busy():
            return
        # Nothing is running, queued or waiting: joins still waiting are skipped, and the
        # branches that had arrived at them end, in arrival order.
        for join in st.joins.values():
            if join.state == "open" and join.arrivals:
                for _, ctx in join.arrivals:
                    self._end_branch(ctx)
                join.state, join.arrivals = "skipped", []
        st.status = "failed" if st.error is not None else "succeeded"
        st.output = self._render_output()
        self._out.append(Ended(st.status))

    def _render_output(self) -> Any:
        st = self.state
        if self.program.output is None:
            return None
        status = "failed" if st.error is not None else "succeeded"
        scope = {
            "input": st.input, "ctx": st.merged, "result": st.last_result, "status": status,
            "succeeded": status == "succeeded", "failed": status == "failed", "error": st.error, "run": st.run,
        }
        try:
            output = self.program.output(scope)
            check_value(output)
            return output
        except ExpressionError as exc:
            if st.error is None:
                st.error = make_error("ExpressionError", f"chain {self.program.name!r}, output: {exc.message}")
                st.status = "failed"
            return None
        except ValueProblem as exc:  # a run whose output cannot be stored fails, saying why
            if st.error is None:
                st.error = make_error(exc.kind, f"chain {self.program.name!r}, output: {exc.message}")
                st.status = "failed"
            return None

