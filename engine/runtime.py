"""The embedded runtime: runs, worker threads, timers, schedules and event triggers in one
process, over a transport (the memory transport by default).

Each run has its conductor and a lock. A worker takes a step message, asks the conductor
whether the step run may start and with which arguments, calls the function outside the
lock, then hands the outcome back and carries out the commands it gets: publish the next
step messages itself (one hop per step), arm a timer, or finish the run.
"""

from __future__ import annotations

import contextvars
import functools
import heapq
import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from legion.dsl.budget import ValueProblem, check_value, step_binding
from legion.dsl.catalog import Catalog
from legion.dsl.compile import runner_topology
from legion.dsl.model import Chain, Step
from legion.engine.conductor import Begin, ChainProgram, Command, Conductor, Ended, Queue, Schedule, StepProgram
from legion.engine.errors import BadInput, LegionError
from legion.engine.invoke import Outcome, call, outcome_of_exception
from legion.engine.recorder import Recorder
from legion.engine.registry import Registry
from legion.engine.runstate import RunState, StepRun
from legion.engine.sdk import Context
from legion.engine.secrets import MASKER, Resolver, SecretError
from legion.engine.transport import Message
from legion.engine.transport.memory import MemoryTransport

log = logging.getLogger("legion.runtime")

MAX_DEPTH = 8
CANCEL_POLL = 0.5  # seconds between checks for runs canceled from another process
EVENTS_POLL = 2.0  # seconds between reads of the applied chains' on.events triggers
Event = dict[str, Any]


def utcnow() -> datetime:
    return datetime.now(UTC)


class StepLogCapture(logging.Handler):
    """Log records emitted while a step's function runs become that task's log entries
    (`legion task logs ID`): the function's own logging (`ctx.log` included), and its
    libraries'. The entries list is a context variable, so records from an async function,
    which runs on the process's event loop in a task that inherits the worker's context,
    land in the right task too."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.entries: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar("legion_step_log", default=None)

    def emit(self, record: logging.LogRecord) -> None:
        entries = self.entries.get()
        if entries is not None:
            try:
                message = record.getMessage()
            except Exception:  # a malformed log call must not fail the step
                message = str(record.msg)
            entries.append({"at": datetime.fromtimestamp(record.created, UTC),
                            "level": record.levelname.lower(), "message": message, "data": {"logger": record.name}})

    def begin(self) -> contextvars.Token[list[dict[str, Any]] | None]:
        return self.entries.set([])

    def end(self, token: contextvars.Token[list[dict[str, Any]] | None]) -> list[dict[str, Any]]:
        entries = self.entries.get()
        self.entries.reset(token)
        return entries or []


@dataclass
class ActiveRun:
    id: str
    conductor: Conductor
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)
    parent: tuple[ActiveRun, int] | None = None  # the run and step run number of a sub-chain step
    children: dict[int, str] = field(default_factory=dict)  # step run number -> sub-chain run id
    depth: int = 0
    trigger: str = "manual"
    listeners: list[Callable[[Event], None]] = field(default_factory=list)

    @property
    def state(self) -> RunState:
        return self.conductor.state


def task_program(function: str, args: dict[str, Any], functions: Catalog | None = None) -> ChainProgram:
    """A one-step program for `legion task run`: the arguments are passed as they are, never
    rendered as templates."""
    name = "task." + function.lower().replace("_", "-")
    program = ChainProgram(Chain(chain=name[:128], steps={"task": Step(run=function)}), version=0, functions=functions)
    program.steps["task"].with_ = lambda scope, a=dict(args): dict(a)
    return program


class Engine:
    """Runs chains in this process. `start()` the workers; `submit()` runs; `wait()` for them."""

    def __init__(self, registry: Registry, store: Any, *, workers: int = 4, node: str = "local",
                 clock: Callable[[], float] = time.time, secrets: Resolver | None = None) -> None:
        self.registry = registry
        self.secrets = secrets or Resolver()
        self.store = store
        self.workers = workers
        self.node = node
        self.clock = clock
        self.transport = MemoryTransport()
        self.recorder = Recorder(store, on_lost=self._record_lost)
        self.runs: dict[str, ActiveRun] = {}
        self._runs_lock = threading.Lock()
        self._programs: dict[tuple[str, int], ChainProgram] = {}
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_order = itertools.count()
        self._timer_cv = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.event_chains: dict[str, list[str]] = {}  # function ref -> chains started when it succeeds
        self._executing: dict[tuple[str, int], tuple[dict[str, Any], Context | None]] = {}  # step runs inside a function now
        for runner in registry.runners.values():
            self.transport.declare(runner_topology(runner.extension, runner.name))
        self.capture = StepLogCapture()
        self.process = f"{socket.gethostname()}:{os.getpid()}"

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Engine:
        root = logging.getLogger()
        root.addHandler(self.capture)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)  # handlers keep their own levels; steps' INFO is kept
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"legion-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._timer_loop, name="legion-timers", daemon=True)
        t.start()
        self._threads.append(t)
        self._later(CANCEL_POLL, self._watch_cancels)
        self._later(EVENTS_POLL, self._watch_events)
        self.reap_interrupted()
        return self

    def stop(self, drain: float = 10.0) -> None:
        """Let running runs finish for up to `drain` seconds, cancel what is left, stop."""
        deadline = time.monotonic() + drain
        while self.active_runs() and time.monotonic() < deadline:
            time.sleep(0.02)
        for run_id in self.active_runs():
            self.cancel(run_id, "the engine stopped before the run ended")
        deadline = time.monotonic() + 2.0
        while self.active_runs() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._stopping.set()
        logging.getLogger().removeHandler(self.capture)
        self.transport.close()
        with self._timer_cv:
            self._timer_cv.notify_all()
        for t in self._threads:
            t.join(timeout=5)
        for row, context in list(self._executing.values()):  # still inside a function as the process stops
            if context is not None:
                context.cancel()
            self.recorder.task(dict(row, status="canceled", finished_at=utcnow(),
                                    error={"type": "Canceled", "message": "the engine stopped while the step ran", "step": row["step"]}))
        self.recorder.close()

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- programs ---------------------------------------------------------------------------

    def program(self, chain: str, version: int | None = None) -> ChainProgram:
        """The compiled program of an applied chain version (the current one by default)."""
        record: dict[str, Any] | None = None
        if version is None:
            record = self.store.get_chain(chain)
            version = int(record["version"])
        number = version
        if (chain, number) not in self._programs:
            record = record or self.store.get_chain_version(chain, number)
            self._programs[(chain, number)] = ChainProgram(Chain.model_validate(record["definition"]), number, self.registry.catalog())
        return self._programs[(chain, number)]

    def refresh_events(self) -> None:
        """Which chains listen to which functions' successes (on.events), from what is applied.

        Re-read every few seconds while the engine runs, so a chain applied meanwhile is
        heard: one query over the current versions' entry relationships, which the compiler
        makes one per `on.events` trigger."""
        self.event_chains = self.store.event_chains()

    # -- runs -------------------------------------------------------------------------------

    def submit(self, chain: str, input: dict[str, Any] | None = None, *, version: int | None = None,
               trigger: str = "manual", listener: Callable[[Event], None] | None = None,
               run_id: str | None = None) -> str:
        return self.start_program(self.program(chain, version), input or {}, trigger=trigger, listener=listener, run_id=run_id)

    def run_task(self, function: str, args: dict[str, Any], *, listener: Callable[[Event], None] | None = None) -> str:
        self.registry.function(function)  # NotFound with a helpful sentence
        spec = self.registry.functions[function].spec
        problems = spec.check_args(args)
        if problems:
            raise BadInput("; ".join(p for _, p in problems))
        return self.start_program(task_program(function, args, self.registry.catalog()), {}, trigger="task", listener=listener)

    def start_program(self, program: ChainProgram, input: dict[str, Any], *, trigger: str = "manual",
                      parent: tuple[ActiveRun, int] | None = None, depth: int = 0,
                      listener: Callable[[Event], None] | None = None, run_id: str | None = None) -> str:
        try:
            check_value(input)
        except ValueProblem as exc:
            raise BadInput(f"the run input of chain {program.name!r} cannot be stored: {exc.message}") from None
        run_id = run_id or str(uuid.uuid4())
        now = self.clock()
        state = RunState.new(run_id, program.name, program.version, now, input)
        active = ActiveRun(run_id, Conductor(program, state), parent=parent, depth=depth, trigger=trigger)
        if listener is not None:
            active.listeners.append(listener)
        row = {
            "id": run_id, "chain_name": program.name, "chain_version": program.version, "status": "running",
            "input": input, "trigger": trigger, "depth": depth, "created_at": utcnow(), "started_at": utcnow(),
            "parent_run_id": parent[0].id if parent else None, "parent_task_id": None, "node": self.process,
        }
        # A sub-chain's input is its step's arguments, which may carry values from results.
        self.store.create_run(MASKER.mask_fields(row, ("input",)))
        with self._runs_lock:
            self.runs[run_id] = active
        with active.lock:
            commands = active.conductor.start(now)
            self._carry_out(active, commands)
        return run_id

    def wait(self, run_id: str, timeout: float | None = None) -> dict[str, Any]:
        active = self.runs.get(run_id)
        if active is not None and not active.done.wait(timeout):
            raise TimeoutError(f"run {run_id} did not end within {timeout}s")
        return self.store.get_run(run_id)

    def cancel(self, run_id: str, reason: str = "canceled by request") -> bool:
        active = self.runs.get(run_id)
        if active is None:
            return False
        with active.lock:
            commands = active.conductor.cancel(reason)
            self._carry_out(active, commands)
            children = list(active.children.values())
        for (owner, _), (_, context) in list(self._executing.items()):
            if owner == run_id and context is not None:  # functions running now learn it through ctx.canceled
                context.cancel()
        for child in children:  # a canceled run's sub-chains are canceled too
            self.cancel(child, f"its parent run {run_id} was canceled")
        return True

    # -- the hot path -----------------------------------------------------------------------

    def _carry_out(self, active: ActiveRun, commands: list[Command]) -> None:
        """Carry out conductor commands; called with the run's lock held."""
        for command in commands:
            if isinstance(command, Queue):
                sr = command.step_run
                prog = active.conductor.program.steps[sr.step]
                self.recorder.task({
                    "run_id": active.id, "number": sr.number, "step": sr.step, "function": prog.run,
                    "status": "queued", "attempt": sr.attempt, "item_index": sr.index, "queued_at": utcnow(),
                    "parent_number": sr.prior[3],
                })
                if prog.is_sub_chain or prog.run not in self.registry.functions:
                    # No worker needed: a sub-chain waits without one, and a function that is
                    # not installed here fails at once (rather than wait on a queue for ever).
                    self._later(0, functools.partial(self._start_step, active, sr.number))
                else:
                    self.transport.publish([Message(active.id, sr.number, prog.run, prog.step.priority)])
            elif isinstance(command, Schedule):
                self._later(command.due - self.clock(), functools.partial(self._wake, active, command.wait_id))
            elif isinstance(command, Ended):
                self._ended(active)

    def _work(self) -> None:
        while not self._stopping.is_set():
            delivery = self.transport.get(timeout=0.5)
            if delivery is None:
                continue
            message = delivery.message
            active = self.runs.get(message.run_id)
            if active is None:
                continue
            try:
                self._start_step(active, message.number)
            except BaseException:  # nothing a step does may take the worker down with it
                log.exception("step run %s/%s", message.run_id, message.number)

    def _start_step(self, active: ActiveRun, number: int) -> None:
        conductor = active.conductor
        # The arguments are rendered outside the run's lock: a template that runs to the end
        # of its budget holds up this worker only, never a cancel or the run's other events.
        rendered = conductor.render_with(number)
        with active.lock:
            sr = conductor.state.active.get(number)
            begin = conductor.begin(number, rendered)
            if begin.duplicate:
                return
            if sr is not None:
                self._record_begin(active, sr, begin)
            self._carry_out(active, begin.commands)
        if begin.args is None or sr is None:
            return
        prog = conductor.program.steps[sr.step]
        if prog.is_sub_chain:
            self._start_sub_chain(active, number, prog, begin.args)
            return
        function = self.registry.functions.get(prog.run)
        # Only a function that can be reached by a cancel gets a context: one that declares
        # it, or an async one (cancelling its task). A plain sync function pays nothing.
        context = Context(run_id=active.id, chain=active.state.run["chain"], step=sr.step, number=number, attempt=sr.attempt,
                          function=prog.run, index=sr.index, resolver=self.secrets,
                          task_id=functools.partial(self._task_id, active.id, number)) if function and function.cancelable else None
        timeout = prog.timeout
        if timeout is not None:
            def expire() -> None:
                if context is not None:
                    context.cancel()  # a sync function that checks ctx.canceled stops; an async one is cancelled
                self._finish(active, number, Outcome(
                    "failed", None, {"type": "Timeout", "message": f"step {sr.step!r} ran past its timeout of {timeout:g}s"}), "timed_out")
            self._later(timeout, expire)
        key = (active.id, number)
        self._executing[key] = ({"run_id": active.id, "number": number, "step": sr.step, "function": prog.run}, context)
        token = self.capture.begin()
        try:
            outcome = self._call(prog, begin.args, timeout, context, active.state.run["chain"], step_binding(active.id, number))
        finally:
            entries = self.capture.end(token)
            self._executing.pop(key, None)
        for entry in entries:
            entry.update(run_id=active.id, number=number)
            self.recorder.log(entry)
        self._finish(active, number, outcome)

    def _task_id(self, run_id: str, number: int) -> int | None:
        """A step run's task id, for `Context.task_id`: rows are written behind the hot path,
        so wait for this one to be committed first."""
        self.recorder.flush()
        try:
            return int(self.store.get_task_by_number(run_id, number)["id"])
        except LegionError:
            return None

    def _record_begin(self, active: ActiveRun, sr: StepRun, begin: Begin) -> None:
        base = {"run_id": active.id, "number": sr.number, "step": sr.step, "function": _fn(active, sr.step)}
        now = utcnow()
        if not begin.started:
            # The step run past max_steps is skipped; any other that never starts is canceled.
            skipped = sr.number > active.conductor.program.max_steps
            self.recorder.task(dict(base, status="skipped" if skipped else "canceled", finished_at=now))
            return
        if begin.args is None:  # its `with` did not render: it started and failed the run
            self.recorder.task(dict(base, status="failed", started_at=now, finished_at=now, node=self.node,
                                    error=active.state.error))
            self._emit(active, {"event": "step.finished", "step": sr.step, "number": sr.number, "status": "failed",
                                "result": None, "error": active.state.error})
            return
        self.recorder.task(dict(base, status="running", started_at=now, node=self.node, args=begin.args))
        self._emit(active, {"event": "step.started", "step": sr.step, "number": sr.number, "attempt": sr.attempt, "index": sr.index})

    def _call(self, prog: StepProgram, args: dict[str, Any], timeout: float | None, context: Context | None, chain: str,
              binding: str) -> Outcome:
        function = self.registry.functions.get(prog.run)
        if function is None:
            return Outcome("failed", None, {"type": "StepFailed", "message": f"function {prog.run!r} is not installed on node {self.node}"})
        try:
            # Secrets go in here, on the worker, just before the call: what was queued and
            # recorded (begin.args) keeps the references.
            args = self.secrets.resolve(args, binding)
        except SecretError as exc:
            return outcome_of_exception(exc)
        return call(function, args, timeout, context, chain=chain, step=prog.name)

    def _finish(self, active: ActiveRun, number: int, outcome: Outcome, status: str | None = None) -> None:
        # Its edges and retry.when are evaluated before the lock is taken, as its `with` was.
        decided = active.conductor.decide(number, outcome.status, outcome.result, outcome.error)
        with active.lock:
            if number not in active.conductor.state.active:
                return  # already finished (a late result after a timeout is discarded)
            sr = active.conductor.state.active[number]
            self.recorder.task({
                "run_id": active.id, "number": number, "step": sr.step, "function": _fn(active, sr.step),
                "status": status or outcome.status, "finished_at": utcnow(),
                "result": outcome.result, "error": dict(outcome.error, step=sr.step) if outcome.error else None,
            })
            self._emit(active, {"event": "step.finished", "step": sr.step, "number": number, "status": status or outcome.status,
                                "result": outcome.result, "error": outcome.error})
            if outcome.error:
                self._task_log(active, number, "error", f"attempt {sr.attempt} failed: {outcome.error['type']}: {outcome.error['message']}")
            commands = active.conductor.finish(number, outcome.status, outcome.result, outcome.error, self.clock(), decided)
            for command in commands:
                wait = active.state.waits.get(command.wait_id) if isinstance(command, Schedule) else None
                if wait is not None and wait.kind == "retry":
                    self._task_log(active, number, "info", f"attempt {wait.attempt} in {max(0.0, wait.due - self.clock()):.3g}s")
            self._carry_out(active, commands)
        if outcome.status == "succeeded" and self.event_chains:
            self.fire_event(_fn(active, sr.step), outcome.result, source_chain=active.state.run["chain"])

    def _record_lost(self, run_id: str, reason: str) -> None:
        """The recorder could not write some of a run's rows: the run stops, failed with the
        reason (rather than end `succeeded` with a hole in its trace)."""
        active = self.runs.get(run_id)
        if active is None:
            return
        error = {"type": "RecordLost", "step": None,
                 "message": f"the engine could not record part of this run ({reason}); it was stopped"}
        with active.lock:
            self._carry_out(active, active.conductor.abort(error))

    def reap_interrupted(self) -> list[str]:
        """Runs of this host whose process is gone can never end, nor can their tasks: a run
        still pending or running fails with `Interrupted`; a run that ended (canceled from
        another process, say, while its process died before stopping its tasks) keeps its
        status. Either way its tasks still queued, delayed or running are canceled with an
        `Interrupted` error. Runs of other hosts are left to those hosts."""
        host = socket.gethostname()
        reaped = []
        for run in self.store.unfinished_runs(f"{host}:"):
            pid = run["node"].rsplit(":", 1)[1]
            if pid.isdigit() and not _alive(int(pid)):
                stopped = f"the process running it ({run['node']}) stopped before the"
                error = {"type": "Interrupted", "step": None, "message": f"{stopped} run ended; run the chain again"}
                task_error = {"type": "Interrupted", "step": None, "message": f"{stopped} step ended"}
                if self.store.interrupt_run(run["id"], error, task_error):
                    reaped.append(run["id"])
                    if run["status"] in ("pending", "running"):
                        log.warning("run %s of chain %s was interrupted (process %s is gone)", run["id"], run["chain_name"], run["node"])
                    else:
                        log.warning("run %s of chain %s (%s) had tasks left unfinished by process %s, which is gone; "
                                    "they are canceled", run["id"], run["chain_name"], run["status"], run["node"])
        return reaped

    def _watch_cancels(self) -> None:
        """`legion run cancel` in another process marks the run canceled in the database; the
        process running it notices here and stops it."""
        for run_id in self.active_runs():
            try:
                if self.store.get_run(run_id)["status"] == "canceled":
                    self.cancel(run_id)
            except LegionError:
                continue
        if not self._stopping.is_set():
            self._later(CANCEL_POLL, self._watch_cancels)

    def _watch_events(self) -> None:
        try:
            self.refresh_events()
        except LegionError as exc:
            log.warning("reading on.events triggers failed: %s", exc.message)
        if not self._stopping.is_set():
            self._later(EVENTS_POLL, self._watch_events)

    def _task_log(self, active: ActiveRun, number: int, level: str, message: str) -> None:
        self.recorder.log({"run_id": active.id, "number": number, "at": utcnow(), "level": level, "message": message,
                           "data": {"logger": "legion.runtime"}})

    def _wake(self, active: ActiveRun, wait_id: int) -> None:
        with active.lock:
            self._carry_out(active, active.conductor.wake(wait_id, self.clock()))

    def _start_sub_chain(self, active: ActiveRun, number: int, prog: StepProgram, args: dict[str, Any]) -> None:
        name = prog.run[len("chain:"):]
        if active.depth + 1 > MAX_DEPTH:
            self._finish(active, number, Outcome("failed", None, {"type": "SubChainDepthExceeded", "message": f"sub-chains nest deeper than {MAX_DEPTH}"}))
            return
        try:
            program = self.program(name)
        except LegionError as exc:
            self._finish(active, number, Outcome("failed", None, {"type": "StepFailed", "message": exc.message}))
            return
        child = self.start_program(program, args, trigger="sub-chain", parent=(active, number), depth=active.depth + 1)
        with active.lock:
            active.children[number] = child
        timeout = prog.timeout
        if timeout is not None:
            def expire() -> None:
                sub = self.runs.get(child)
                if sub is not None and not sub.done.is_set():
                    self.cancel(child)
                    self._finish(active, number, Outcome("failed", None, {"type": "Timeout", "message": f"sub-chain {name!r} ran past its timeout of {timeout:g}s"}), "timed_out")
            self._later(timeout, expire)

    def _ended(self, active: ActiveRun) -> None:
        st = active.state
        for number, sr in list(st.active.items()):
            if sr.status != "running":  # never started; running ones are recorded when they finish
                self.recorder.task({"run_id": active.id, "number": number, "step": sr.step, "function": _fn(active, sr.step),
                                    "status": "canceled", "finished_at": utcnow()})
        # The run row last: a reader never sees an ended run with tasks still queued.
        self.recorder.run({"id": active.id, "status": st.status, "output": st.output, "error": st.error, "ended_at": utcnow()})
        self._emit(active, {"event": "run.ended", "status": st.status, "output": st.output, "error": st.error})

        def finalize() -> None:
            self.recorder.flush()
            active.done.set()
            with self._runs_lock:
                self.runs.pop(active.id, None)
            if active.parent is not None:
                parent, number = active.parent
                with parent.lock:
                    parent.children.pop(number, None)
                if st.status == "succeeded":
                    outcome = Outcome("succeeded", st.output)
                else:
                    err = st.error or {"type": "StepFailed", "message": f"sub-chain {st.run['chain']} {st.status}"}
                    outcome = Outcome("failed", None, {"type": err["type"], "message": err["message"]})
                self._finish(parent, number, outcome)

        self._later(0, finalize)

    def _emit(self, active: ActiveRun, event: Event) -> None:
        for listener in active.listeners:
            try:
                listener(dict(event, run_id=active.id))
            except Exception:
                log.exception("progress listener failed")

    def fire_event(self, function: str, result: Any, *, source_chain: str | None = None) -> list[str]:
        """Start the chains whose `on.events` name `function`, with its result as input."""
        started = []
        for chain in self.event_chains.get(function, ()):
            if chain == source_chain:
                continue  # a chain does not trigger itself: that would loop forever
            try:
                program = self.program(chain)
            except LegionError:
                continue
            payload = result if isinstance(result, dict) else {"result": result}
            if program.input_validator is not None and not program.input_validator.is_valid(payload):
                log.warning("on.events: result of %s does not fit the input of chain %s; dropped", function, chain)
                continue
            started.append(self.start_program(program, payload, trigger="event"))
        return started

    # -- timers -----------------------------------------------------------------------------

    def _later(self, delay: float, action: Callable[[], None]) -> None:
        with self._timer_cv:
            heapq.heappush(self._timers, (self.clock() + max(0.0, delay), next(self._timer_order), action))
            self._timer_cv.notify()

    def _timer_loop(self) -> None:
        while not self._stopping.is_set():
            with self._timer_cv:
                now = self.clock()
                if not self._timers or self._timers[0][0] > now:
                    wait = min(1.0, self._timers[0][0] - now) if self._timers else 1.0
                    self._timer_cv.wait(max(wait, 0.0))
                    continue
                _, _, action = heapq.heappop(self._timers)
            try:
                action()
            except Exception:
                log.exception("timer action failed")

    def active_runs(self) -> list[str]:
        with self._runs_lock:
            return list(self.runs)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # OverflowError: a number no process id can be
        return False
    except PermissionError:
        return True
    return True


def _fn(active: ActiveRun, step: str) -> str:
    return active.conductor.program.steps[step].run
