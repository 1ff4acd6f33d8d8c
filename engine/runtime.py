"""The runtime: worker threads that take messages from a transport and advance runs.

Every event of a run (it starts, a step run begins or finishes, a wait ends, a sub-chain
ends, a cancel, pause, resume or retry arrives) goes through one path, `_event`: take the
run, apply the event to its conductor, and keep what changed together (the run's state, its
task rows, the messages to send); then send the messages. How "take" and "keep" are done is
the one thing that differs between the two ways Legion runs:

- embedded (the memory transport, the default): this process owns its runs, so a run is
  taken by its in-memory lock and kept write-behind: the recorder writes the state with the
  rows in its next batch. After `kill -9`, `recover` continues the runs of the dead process
  from their last written state (step runs it had begun run again).
- shared (RabbitMQ): any worker may take any event of any run, so a run is taken by its row
  lock in the database and kept in that transaction, with the messages in the outbox;
  they are published after the commit. A worker holds a lease on each step run it executes,
  renewed while it runs; a step run whose lease expired is queued again.

The function of a step runs outside any lock, on the worker thread that took its message.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from legion.dsl.budget import ValueProblem, check_value, step_binding
from legion.dsl.catalog import Catalog
from legion.dsl.compile import runner_topology
from legion.dsl.model import Chain, Step
from legion.engine import transport as t
from legion.engine.agentstate import AgentKeys, AgentStates
from legion.engine.conductor import (
    ChainProgram,
    Command,
    Conductor,
    Ended,
    Interrupt,
    Queue,
    Schedule,
    StartChild,
    StepProgram,
    child_outcome,
)
from legion.engine.errors import BadInput, LegionError, NotFound, ServiceUnavailable
from legion.engine.invoke import Outcome, call, failure, outcome_of_exception
from legion.engine.recorder import RUN_MASKED, TASK_MASKED, Recorder
from legion.engine.registry import Registry
from legion.engine.runstate import FINAL_RUN_STATUSES, Part, RunState
from legion.engine.sdk import Context
from legion.engine.secrets import MASKER, Resolver, SecretError
from legion.engine.signals import Signals, TransportSignals
from legion.engine.steplog import StepLogCapture
from legion.engine.transport import Delivery, Message
from legion.engine.transport.memory import MemoryTransport

log = logging.getLogger("legion.runtime")

CONTROL_POLL = 0.5  # embedded: seconds between reads of requests (cancel, pause...) from other processes
EVENTS_POLL = 2.0  # seconds between reads of the applied chains' on.events triggers
LEASE_TTL = 30.0  # shared: a step run's lease (LEGION_STEP_LEASE); renewed every third of it while its function runs
SWEEP_EVERY = 5.0  # shared: seconds between looks for expired leases and outbox rows left behind (at most half a lease)
OUTBOX_STALE = 10.0  # shared: an outbox row this old was left by a process that died before publishing
MAX_CLAIMS = 3  # a step run taken this many times (its workers died) fails instead, dead-lettered
STALE = -1  # the revision of a run's copy that must be read whole again
SHARED_CACHE = 2_000  # shared: runs whose state a worker keeps between events (a cache: the database has them)
Event = dict[str, Any]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ActiveRun:
    """A run this process holds: its conductor (for a shared run, a cache of the state at
    `revision`), and what waits on it here."""

    id: str
    conductor: Conductor
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)
    trigger: str = "manual"
    listeners: list[Callable[[Event], None]] = field(default_factory=list)
    revision: int = 0
    recovered: bool = False  # embedded: taken up from a dead process (its steps' begins are written at once)

    @property
    def state(self) -> RunState:
        return self.conductor.state

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return self.conductor.state.to_dict()


@dataclass
class Batch:
    """What one event changed, kept together: the run's row fields, its task rows and log
    entries, runs it created (sub-chains), messages to send, and what to do here after."""

    run: dict[str, Any] = field(default_factory=dict)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    new_runs: list[dict[str, Any]] = field(default_factory=list)
    messages: list[tuple[Message, float | None]] = field(default_factory=list)
    after: list[Callable[[], None]] = field(default_factory=list)
    locked: Any = None  # shared: the run's locked row (LockedRun), for reads in the event's transaction

    def task(self, row: dict[str, Any]) -> None:
        self.tasks.append(row)


def task_program(function: str, functions: Catalog | None = None) -> ChainProgram:
    """A one-step program for `legion task run`: the run's input is the function's
    arguments, passed as they are, never rendered as templates."""
    name = "task." + function.lower().replace("_", "-")
    program = ChainProgram(Chain(chain=name[:128], steps={"task": Step(run=function)}), version=0, functions=functions)
    program.steps["task"].with_ = lambda scope: dict(scope["input"])
    program.steps["task"].static_with = False
    return program


class Engine:
    """Runs chains: `start()` the workers; `submit()` runs; `wait()` for them.

    `transport`: the memory transport (the default: embedded) or the AMQP one (shared).
    `consume`: take messages (a worker); a shared process that only starts runs (a `chain
    run`, a scheduler) does not. `lease`: seconds a step run's lease lasts (shared).
    `signals`: how interrupts reach the process running a step run (the transport's by
    default; Redis's when configured).
    """

    def __init__(self, registry: Registry, store: Any, *, workers: int = 4, node: str = "local",
                 clock: Callable[[], float] = time.time, secrets: Resolver | None = None,
                 transport: Any = None, consume: bool = True, lease: float = LEASE_TTL,
                 signals: Signals | None = None) -> None:
        self.registry = registry
        self.secrets = secrets or Resolver()
        self.store = store
        self.workers = workers
        self.node = node
        self.clock = clock
        self.transport = transport if transport is not None else MemoryTransport()
        self.shared = not isinstance(self.transport, MemoryTransport)
        self.signals = signals or TransportSignals(self.transport)
        self.consume = consume
        self.lease = lease
        self.recorder = Recorder(store, on_lost=self._record_lost)
        # What extensions keep for agents (ctx.state): in this store, sealed with keys kept in
        # the secret store.
        self.agent_states = AgentStates(store, AgentKeys(lambda: self.secrets.store))
        self.runs: dict[str, ActiveRun] = {}
        self._runs_lock = threading.Lock()
        self._programs: dict[tuple[str, int], ChainProgram] = {}
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_order = itertools.count()
        self._timer_cv = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._draining = threading.Event()
        self.event_chains: dict[str, list[str]] = {}  # function ref -> chains started when it succeeds
        # Told every event of every run this process carries (`legion start` prints them).
        self.watchers: list[Callable[[Event], None]] = []
        self._executing: dict[tuple[str, int], tuple[dict[str, Any], Context | None]] = {}  # step runs inside a function now
        self._published: list[int] = []  # shared: outbox rows published since, deleted every SWEEP_EVERY
        self._published_lock = threading.Lock()
        self.queues = [f"lex.{r.extension}.{r.name}" for r in registry.runners.values()] + [t.CONTROL_QUEUE]
        self.transport.declare(t.control_topology())
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
        if self.consume:
            self.signals.listen(self._interrupted)
            self.transport.consume(self.queues, prefetch=max(1, self.workers))
            for i in range(self.workers):
                self._thread(self._work, f"legion-worker-{i}")
            # Waits that end, sub-chains, cancels: never stuck behind steps that take long.
            self._thread(functools.partial(self._work, control=True), "legion-control")
        self._thread(self._timer_loop, "legion-timers")
        self._later(EVENTS_POLL, self._watch_events)
        if self.shared:
            self._later(SWEEP_EVERY, self._clear_outbox)
            if self.consume:  # a process that only starts runs (a `chain run`) leaves these to the workers
                self._later(self.lease / 3, self._renew_leases)
                self._later(0, self._sweep)
        else:
            self._later(CONTROL_POLL, self._watch_control)
            self.recover()
        return self

    def _thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, drain: float = 10.0) -> None:
        """Take no more messages; let what runs here finish for up to `drain` seconds. An
        embedded engine cancels its runs still going (nothing else would carry them on until
        the next start); a shared one leaves them to the other workers."""
        self._draining.set()
        if self.shared and hasattr(self.transport, "stop_consuming"):
            self.transport.stop_consuming()
        deadline = time.monotonic() + drain
        while (self._executing if self.shared else self.active_runs()) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.shared:
            for run_id in self.active_runs():
                self.cancel(run_id, "the engine stopped before the run ended")
            deadline = time.monotonic() + 2.0
            while self.active_runs() and time.monotonic() < deadline:
                time.sleep(0.02)
        self._stopping.set()
        logging.getLogger().removeHandler(self.capture)
        with self._timer_cv:
            self._timer_cv.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)
        for row, context in list(self._executing.values()):  # still inside a function as the process stops
            if context is not None:
                context.cancel()
            if not self.shared:
                self.recorder.task(dict(row, status="canceled", finished_at=utcnow(),
                                        error={"type": "Canceled", "message": "the engine stopped while the step ran", "step": row["step"]}))
        self.recorder.close()
        self.signals.close()
        self.transport.close()  # waits for what is still to be confirmed
        if self.shared:
            self._clear_outbox()

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- programs ---------------------------------------------------------------------------

    def program(self, chain: str, version: int | None = None) -> ChainProgram:
        """The compiled program of an applied chain version (the current one by default)."""
        if version is None:
            version = self.store.current_version(chain)
        if (chain, version) not in self._programs:
            record = self.store.get_chain_version(chain, version)
            self._programs[(chain, version)] = ChainProgram(Chain.model_validate(record["definition"]), version, self.registry.catalog())
        return self._programs[(chain, version)]

    def _program_of(self, state: RunState) -> ChainProgram:
        if state.task is not None:
            return task_program(state.task, self.registry.catalog())
        return self.program(state.run["chain"], int(state.run["version"]))

    def refresh_events(self) -> None:
        """Which chains listen to which functions' successes (on.events), from what is applied.

        Re-read every few seconds while the engine runs, so a chain applied meanwhile is
        heard: one query over the current versions' entry relationships, which the compiler
        makes one per `on.events` trigger."""
        self.event_chains = self.store.event_chains()

    # -- runs -------------------------------------------------------------------------------

    def submit(self, chain: str, input: dict[str, Any] | None = None, *, version: int | None = None,
               trigger: str = "manual", listener: Callable[[Event], None] | None = None,
               run_id: str | None = None, agent: str | None = None) -> str:
        """Start a run of `chain`: its id. `agent`: whose state its functions keep (`ctx.agent`,
        `run.agent` in templates; the default agent when None)."""
        return self.start_program(self.program(chain, version), input or {}, trigger=trigger, listener=listener, run_id=run_id,
                                  agent=agent)

    def run_task(self, function: str, args: dict[str, Any], *, listener: Callable[[Event], None] | None = None) -> str:
        self.registry.function(function)  # NotFound with a helpful sentence
        spec = self.registry.functions[function].spec
        problems = spec.check_args(args)
        if problems:
            raise BadInput("; ".join(p for _, p in problems))
        return self.start_program(task_program(function, self.registry.catalog()), args, trigger="task", listener=listener,
                                  task=function)

    def start_program(self, program: ChainProgram, input: dict[str, Any], *, trigger: str = "manual",
                      listener: Callable[[Event], None] | None = None, run_id: str | None = None,
                      task: str | None = None, agent: str | None = None) -> str:
        try:
            check_value(input)
        except ValueProblem as exc:
            raise BadInput(f"the run input of chain {program.name!r} cannot be stored: {exc.message}") from None
        run_id = run_id or str(uuid.uuid4())
        state = RunState.new(run_id, program.name, program.version, self.clock(), input, agent=agent)
        state.task = task
        if self.shared:
            state.track()
        row = self._run_row(state, trigger)
        active = self._hold(ActiveRun(run_id, Conductor(program, state), trigger=trigger))
        if listener is not None:
            active.listeners.append(listener)
        if self.shared:
            # The run's row is written with its start, in one transaction; once that is
            # committed the run will happen (its messages wait in the outbox), so the
            # publish is not waited for.
            self._event(run_id, lambda a, b: self._start(a, b), create=row,
                        then=functools.partial(_unconfirmed, run_id))
        else:
            # With its state: a process dying before the start's batch is written leaves a run
            # the next process can start (see `recover`).
            self.store.create_run(MASKER.mask_fields(dict(row, state=state.to_dict()), ("state",)))
            self._event(run_id, lambda a, b: self._start(a, b))
        return run_id

    def _run_row(self, state: RunState, trigger: str) -> dict[str, Any]:
        now = utcnow()
        row = {
            "id": state.run["id"], "chain_name": state.run["chain"], "chain_version": state.run["version"],
            "status": "pending", "input": state.input, "trigger": trigger, "depth": state.depth, "created_at": now,
            "parent_run_id": state.parent[0] if state.parent else None, "parent_task_id": None, "node": self.process,
            "agent": state.run.get("agent"),
        }
        # A sub-chain's input is its step's arguments, which may carry values from results.
        return MASKER.mask_fields(row, ("input",))

    def _start(self, active: ActiveRun, batch: Batch) -> list[Command]:
        if active.state.status != "pending":
            return []  # started already (a start message delivered twice)
        batch.run.update(status="running", started_at=utcnow(), node=self.process)
        # Said before its first steps are sent: watchers hear of a run's start before its end.
        self._emit(active, {"event": "run.started", "chain": active.state.run["chain"], "trigger": active.trigger})
        return active.conductor.start(self.clock())

    def wait(self, run_id: str, timeout: float | None = None) -> dict[str, Any]:
        """The run's row once it ended. TimeoutError after `timeout` seconds."""
        active = self.runs.get(run_id)
        if active is not None and not self.shared:
            if not active.done.wait(timeout):
                raise TimeoutError(f"run {run_id} did not end within {timeout}s")
            return self.store.get_run(run_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.005
        while True:
            row = self.store.get_run(run_id)
            if row["status"] in ("succeeded", "failed", "canceled"):
                return row
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {run_id} did not end within {timeout}s")
            if active is not None:
                active.done.wait(pause)
            else:
                time.sleep(pause)
            pause = min(pause * 2, 0.25)

    def cancel(self, run_id: str, reason: str = "canceled by request") -> bool:
        """Cancel a run (and its sub-chains); False when this process cannot reach it."""
        return self._control(run_id, lambda a, b: a.conductor.cancel(reason))

    def pause(self, run_id: str) -> bool:
        return self._control(run_id, lambda a, b: self._status_change(a, b, a.conductor.pause()))

    def resume(self, run_id: str) -> bool:
        return self._control(run_id, lambda a, b: self._status_change(a, b, a.conductor.resume(self.clock())))

    def retry(self, run_id: str) -> bool:
        """Run a failed or canceled run again from its failed step runs. False when there is
        nothing to start again."""
        started: list[bool] = []

        def apply(a: ActiveRun, b: Batch) -> list[Command]:
            commands = a.conductor.retry(self.clock())
            if commands or a.state.status == "running":
                started.append(True)
                a.done.clear()
                b.run.update(status=a.state.status, error=None, output=None, ended_at=None, node=self.process)
                with self._runs_lock:
                    self.runs.setdefault(a.id, a)
            return commands

        self._control(run_id, apply)
        return bool(started)

    def _status_change(self, active: ActiveRun, batch: Batch, commands: list[Command]) -> list[Command]:
        batch.run["status"] = active.state.status
        return commands

    def _control(self, run_id: str, apply: Callable[[ActiveRun, Batch], list[Command]]) -> bool:
        if not self.shared and run_id not in self.runs and self._adopt(run_id) is None:
            return False
        try:
            self._event(run_id, apply)
        except NotFound:
            return False
        return True

    # -- the one path -------------------------------------------------------------------------

    def _event(self, run_id: str, apply: Callable[[ActiveRun, Batch], list[Command] | None],
               create: dict[str, Any] | None = None, claim: int | None = None,
               then: Callable[[str | None], None] | None = None) -> ActiveRun | None:
        """Apply one event to a run and keep what it changed (see the module's docstring).
        None when this process does not hold the run (embedded) or it does not exist.
        `create` (shared): the run's row, inserted in the event's transaction. `claim`
        (shared): a step run whose claim the event reads (`batch.locked.claimed_by`).
        `then`: do not wait for the messages to be confirmed; `then(error or None)` once they
        are (on the transport's thread)."""
        batch = Batch()
        active: ActiveRun | None
        if self.shared:
            active = self._shared_event(run_id, apply, batch, create, claim, then)
        else:
            active = self.runs.get(run_id) or self._adopt(run_id, ended=False)
            if active is None:
                return None
            with active.lock:
                self._carry_out(active, apply(active, batch) or [], batch)
                self._keep(active, batch)
            self._publish(batch.messages, then)
            if active.state.ended:
                self._release(active)
        for action in batch.after:
            try:
                action()
            except Exception:
                log.exception("after an event of run %s", run_id)
        return active

    def _keep(self, active: ActiveRun, batch: Batch) -> None:
        """Embedded: hand what changed to the recorder, which writes the state with it."""
        if batch.new_runs:
            self.store.create_runs(batch.new_runs)
        for row in batch.tasks:
            self.recorder.task(row)
        for entry in batch.logs:
            self.recorder.log(entry)
        if batch.run:
            self.recorder.run(dict(batch.run, id=active.id))
        self.recorder.state(active.id, active.snapshot)

    def _shared_event(self, run_id: str, apply: Callable[[ActiveRun, Batch], list[Command] | None], batch: Batch,
                      create: dict[str, Any] | None, claim: int | None,
                      then: Callable[[str | None], None] | None) -> ActiveRun:
        held = self.runs.get(run_id)  # its state comes with the lock when this copy is behind
        with self.store.lock_run(run_id, create=create, claim=claim, known=held.revision if held is not None else STALE) as locked:
            batch.locked = locked
            active = self._copy(run_id, locked.revision, locked.state)
            with active.lock:
                try:
                    if active.revision != locked.revision:  # another thread read it again meanwhile
                        self._bring_up(active, locked.revision, locked.state)
                    self._carry_out(active, apply(active, batch) or [], batch)
                    state = active.state
                    fields = dict(batch.run, state=state.core())
                    tasks, parts = batch.tasks, state.changes()
                    if MASKER.active:  # as the recorder masks what it writes (the state included)
                        tasks = [MASKER.mask_fields(r, TASK_MASKED) for r in tasks]
                        fields = MASKER.mask_fields(fields, RUN_MASKED)
                        parts = [(key, group, MASKER.mask(data)) for key, group, data in parts]
                    ids = locked.save(fields, tasks, batch.logs, [(m.to_dict(), due) for m, due in batch.messages],
                                      new_runs=batch.new_runs, parts=parts, quiet=state.quiet)
                    active.revision = locked.revision
                except BaseException:
                    active.revision = STALE  # its state changed without being kept: read it again next time
                    with self._runs_lock:
                        self.runs.pop(run_id, None)
                    raise
        if active.state.ended or not self.consume:  # a process that only starts runs keeps none of them
            with self._runs_lock:
                self.runs.pop(run_id, None)

        def confirmed(error: str | None) -> None:
            if error is None:  # deleted soon (`_clear_outbox`); left for the sweeper otherwise
                with self._published_lock:
                    self._published.extend(ids)
            if then is not None:
                then(error)

        if then is None:
            self._publish(batch.messages)
            confirmed(None)
        else:
            self._publish(batch.messages, confirmed)
        return active

    def _copy(self, run_id: str, revision: int, read: Callable[[int | None], tuple[dict[str, Any] | None, list[Part]]]) -> ActiveRun:
        """Shared: this process's copy of a run (a cache: the database has it), read whole
        (`read(None)`: its core and every part) when there is none; the caller brings it up
        to `revision` under its lock (`_bring_up`). A bounded number of runs are kept."""
        active = self.runs.get(run_id)
        if active is not None:
            return active
        core, parts = read(None)
        if core is None:
            raise NotFound(f"run {run_id} has no state to continue from")
        state = RunState.from_parts(core, parts)
        fresh = ActiveRun(run_id, Conductor(self._program_of(state), state), revision=revision)
        with self._runs_lock:
            active = self.runs.setdefault(run_id, fresh)
            while len(self.runs) > SHARED_CACHE:  # the least recently read first
                del self.runs[next(iter(self.runs))]
        return active

    def _bring_up(self, active: ActiveRun, revision: int,
                  read: Callable[[int | None], tuple[dict[str, Any] | None, list[Part]]]) -> None:
        """Shared, with `active.lock` held: bring this process's copy of a run up to
        `revision`, from the parts written since its own (all of them when it is stale)."""
        since = None if active.revision == STALE else active.revision
        core, parts = read(since)
        if core is None:
            raise NotFound(f"run {active.id} has no state to continue from")
        try:
            state = RunState.from_parts(core, parts, None if since is None else active.state)
        except BaseException:
            active.revision = STALE  # taken apart: read whole next time
            raise
        active.conductor.state = state
        active.revision = revision

    def _publish(self, messages: Sequence[tuple[Message, float | None]],
                 then: Callable[[str | None], None] | None = None) -> None:
        """Publish now or when due; with `then`, without waiting (see `Transport.publish`):
        called once for all of them, with the first error."""
        calls: list[tuple[list[Message], float | None]] = []
        now_ = [m for m, due in messages if due is None]
        if now_:
            calls.append((now_, None))
        calls.extend(([m], due) for m, due in messages if due is not None)
        if then is None:
            for batch, due in calls:
                self.transport.publish(batch, due=due)
            return
        if not calls:
            then(None)
            return
        left = [len(calls)]
        errors: list[str] = []
        lock = threading.Lock()

        def one(error: str | None) -> None:
            with lock:
                left[0] -= 1
                if error:
                    errors.append(error)
                last = left[0] == 0
            if last:
                then(errors[0] if errors else None)

        for batch, due in calls:
            self.transport.publish(batch, due=due, then=one)

    def _release(self, active: ActiveRun) -> None:
        """Embedded: forget an ended run once nothing of it runs here any more (a step run
        still executing is recorded when it finishes)."""
        with self._runs_lock:
            if (self.runs.get(active.id) is active and active.state.ended and active.done.is_set()
                    and not any(sr.status == "running" for sr in active.state.active.values())):
                del self.runs[active.id]

    def _hold(self, active: ActiveRun, *, replace: bool = False) -> ActiveRun:
        with self._runs_lock:
            if replace or active.id not in self.runs:
                self.runs[active.id] = active
            return self.runs[active.id]

    # -- carrying out the conductor's commands ---------------------------------------------

    def _carry_out(self, active: ActiveRun, commands: list[Command], batch: Batch) -> None:
        """Carry out conductor commands; called with the run taken."""
        for command in commands:
            if isinstance(command, Queue):
                sr = command.step_run
                prog = active.conductor.program.steps[sr.step]
                batch.task(self._queued_row(active, sr))
                # A sub-chain needs no worker of its own; embedded, neither does a function not
                # installed here (it fails at once rather than wait on a queue for ever).
                control = prog.is_sub_chain or (not self.shared and prog.run not in self.registry.functions)
                batch.messages.append((Message(active.id, sr.number, prog.run, prog.step.priority, control=control), None))
            elif isinstance(command, Schedule):
                batch.messages.append((Message(active.id, command.wait_id, kind=t.WAKE), command.due))
            elif isinstance(command, StartChild):
                self._start_child(active, command, batch)
            elif isinstance(command, Interrupt):
                self._interrupt(active, command, batch)
            elif isinstance(command, Ended):
                self._ended(active, batch)

    def _queued_row(self, active: ActiveRun, sr: Any) -> dict[str, Any]:
        return {"run_id": active.id, "number": sr.number, "step": sr.step, "function": _fn(active, sr.step),
                "status": "queued", "attempt": sr.attempt, "item_index": sr.index, "queued_at": utcnow(),
                "parent_number": sr.prior[3]}

    def _start_child(self, active: ActiveRun, command: StartChild, batch: Batch) -> None:
        sr = command.step_run
        try:
            program = self.program(command.chain)
        except LegionError as exc:
            self._fail_now(active, sr.number, {"type": "StepFailed", "message": exc.message}, batch)
            return
        state = RunState.new(command.run_id, program.name, program.version, self.clock(), command.input, agent=command.agent,
                             depth=command.depth, parent=(active.id, sr.number))
        batch.new_runs.append(dict(self._run_row(state, "sub-chain"), state=state.core()))
        batch.messages.append((Message(command.run_id, kind=t.START), None))

    def _fail_now(self, active: ActiveRun, number: int, error: dict[str, Any], batch: Batch) -> None:
        """A step run that began fails here, before any function ran."""
        sr = active.state.active[number]
        batch.task({"run_id": active.id, "number": number, "step": sr.step, "function": _fn(active, sr.step),
                    "status": "failed", "finished_at": utcnow(), "error": dict(error, step=sr.step)})
        self._carry_out(active, active.conductor.finish(number, "failed", None, error, self.clock()), batch)

    def _interrupt(self, active: ActiveRun, command: Interrupt, batch: Batch) -> None:
        sr = command.step_run
        if command.status is not None:
            batch.task({"run_id": active.id, "number": sr.number, "step": sr.step, "function": _fn(active, sr.step),
                        "status": command.status, "finished_at": utcnow(), "error": command.error})
            batch.after.append(functools.partial(self._emit, active, {
                "event": "step.finished", "step": sr.step, "number": sr.number, "status": command.status,
                "result": None, "error": command.error}))
        # Where the step run executes (here or on another worker), a sync function that checks
        # ctx.canceled stops; an async one is cancelled.
        batch.after.append(functools.partial(self.signals.interrupt, active.id, sr.number))
        if sr.child is not None:
            batch.messages.append((Message(sr.child, kind=t.CANCEL), None))

    def _ended(self, active: ActiveRun, batch: Batch) -> None:
        st = active.state
        for number, sr in list(st.active.items()):
            if sr.status != "running":  # never started; running ones are recorded when they finish
                batch.task({"run_id": active.id, "number": number, "step": sr.step, "function": _fn(active, sr.step),
                            "status": "canceled", "finished_at": utcnow()})
        batch.run.update(status=st.status, output=st.output, error=st.error, ended_at=utcnow())
        if self.shared and st.status != "succeeded":
            # Step runs claimed by workers were still `queued` here (see `_claim`), so no
            # Interrupt named them: stop whatever of the run still executes.
            batch.after.append(functools.partial(self.signals.interrupt, active.id, None))
        if st.parent is not None and self.shared:
            batch.messages.append((Message(st.parent[0], st.parent[1], kind=t.CHILD), None))
        batch.after.append(functools.partial(self._finalize, active))

    def _interrupted(self, run_id: str, number: int | None) -> None:
        """An interrupt (see legion.engine.signals): cancel the step runs of `run_id` executing
        here (step run `number`, or all of them)."""
        for (rid, n), (_, context) in list(self._executing.items()):
            if rid == run_id and (number is None or n == number) and context is not None:
                context.cancel()

    def _finalize(self, active: ActiveRun) -> None:
        st = active.state
        self._emit(active, {"event": "run.ended", "chain": st.run["chain"], "status": st.status, "output": st.output,
                            "error": st.error, "started_at": st.run.get("started_at")})
        if self.shared:
            active.done.set()
            return
        # The run row last: a reader never sees an ended run with tasks still queued.
        self.recorder.flush()
        active.done.set()
        self._release(active)
        if st.parent is not None:  # the parent reads the outcome from the state just written
            self._publish([(Message(st.parent[0], st.parent[1], kind=t.CHILD), None)])

    # -- workers ------------------------------------------------------------------------------

    def _work(self, control: bool = False) -> None:
        while not self._stopping.is_set():
            delivery = self.transport.get(0.5, control=control)
            if delivery is None:
                continue
            try:
                self._handle(delivery)
            except BaseException:  # nothing a message does may take the worker down with it
                log.exception("message %s", delivery.message)
                _settle(delivery.requeue)

    def _handle(self, delivery: Delivery) -> None:
        m = delivery.message
        try:
            if m.kind == t.STEP:
                self._step(m, delivery)
                return
            if m.kind == t.WAKE:
                self._event(m.run_id, lambda a, b: a.conductor.wake(m.number, self.clock()))
            elif m.kind == t.START:
                self._event(m.run_id, lambda a, b: self._start(a, b))
            elif m.kind == t.CHILD:
                self._child_ended(m.run_id, m.number)
            elif m.kind == t.CANCEL:
                self.cancel(m.run_id, "its parent run was canceled")
            elif m.kind == t.PAUSE:
                self.pause(m.run_id)
            elif m.kind == t.RESUME:
                self.resume(m.run_id)
            elif m.kind == t.RETRY:
                self.retry(m.run_id)
        except NotFound as exc:
            _settle(functools.partial(delivery.dead_letter, exc.message))
            return
        except ServiceUnavailable:
            _settle(delivery.requeue)
            return
        delivery.ack()

    def _child_ended(self, parent_id: str, number: int) -> None:
        def apply(active: ActiveRun, batch: Batch) -> list[Command]:
            sr = active.state.active.get(number)
            if sr is None or sr.child is None or sr.status != "running":
                return []
            child = self.store.get_run(sr.child).get("state")  # its outcome is in its core
            if child is None or child["status"] not in FINAL_RUN_STATUSES:
                return []
            status, result, error = child_outcome(child["run"]["chain"], child["status"], child["output"], child["error"])
            return self._finished(active, batch, number, Outcome(status, result, error))

        self._event(parent_id, apply)

    # -- a step run ---------------------------------------------------------------------------

    def _step(self, m: Message, delivery: Delivery) -> None:
        number = m.number
        began = (self._claim(m) if self.shared else None) or self._begin(m)
        if "poison" in began:
            _settle(functools.partial(delivery.dead_letter, began["poison"]))
            return
        if "args" not in began:
            delivery.ack()
            return
        active, sr, program = began["active"], began["sr"], began["program"]
        if active.recovered:
            # Its process died before: the begin is kept before the function runs, so a step
            # that kills its process is counted when the next process takes the run up.
            self.recorder.flush()
        prog = program.steps[sr.step]
        function = self.registry.functions.get(prog.run)
        # Only a function that can be reached by a cancel gets a context: one that declares
        # it, or an async one (cancelling its task). A plain sync function pays nothing.
        context = Context(run_id=m.run_id, chain=began["chain"], step=sr.step, number=number, attempt=sr.attempt,
                          function=prog.run, index=sr.index, resolver=self.secrets,
                          task_id=functools.partial(self._task_id, m.run_id, number),
                          caller=self._called, registry=self.registry, agent=active.state.run.get("agent"), clock=self.clock,
                          states=self.agent_states) if function and function.cancelable else None
        key = (m.run_id, number)
        self._executing[key] = ({"run_id": m.run_id, "number": number, "step": sr.step, "function": prog.run}, context)
        token = self.capture.begin()
        try:
            outcome = self._call(prog, began["args"], prog.timeout, context, began["chain"], step_binding(m.run_id, number))
        finally:
            entries = self.capture.end(token)
            self._executing.pop(key, None)
        logs = [dict(entry, run_id=m.run_id, number=number) for entry in entries]
        # Its edges and retry.when are evaluated before the run is taken, as its `with` was.
        decided = active.conductor.decide(number, outcome.status, outcome.result, outcome.error) if not self.shared else None

        def finish(active_: ActiveRun, batch: Batch) -> list[Command]:
            batch.logs.extend(logs)
            if batch.locked is not None and batch.locked.claimed_by == self.process:
                active_.conductor.started(number)  # claimed without the lock: the state catches up
            return self._finished(active_, batch, number, outcome, decided if active_ is active else None)

        def settle(error: str | None) -> None:
            # The outcome is committed; the message goes once its successors are confirmed.
            # Not confirmed: it comes back (a duplicate, dropped) and the sweeper publishes
            # the successors from the outbox.
            if error is None:
                delivery.ack()
            else:
                log.warning("the successors of step run %d of run %s were not confirmed: %s", number, m.run_id, error)
                _settle(delivery.requeue)

        self._event(m.run_id, finish, claim=number if self.shared else None, then=settle)
        if outcome.status == "succeeded" and self.event_chains:
            self.fire_event(prog.run, outcome.result, source_chain=began["chain"], agent=active.state.run.get("agent"))

    def _claim(self, m: Message) -> dict[str, Any] | None:
        """Shared: begin a queued step run without taking its run, when the conductor says it
        may be (`Conductor.claimable`): its arguments are rendered from the state cached here
        (brought up to date without a lock when needed), and its task row is claimed in one
        statement. None when that does not apply or the claim fails: the locked way
        (`_begin`) then decides."""
        number = m.number
        try:
            active = self.runs.get(m.run_id)
            if active is None or not active.conductor.claimable(number, m.function):
                if active is None:
                    core, parts, revision = self.store.run_state(m.run_id)
                    active = self._copy(m.run_id, revision, lambda _: (core, parts))
                with active.lock:
                    if not active.conductor.claimable(number, m.function):
                        since = None if active.revision == STALE else active.revision
                        core, parts, revision = self.store.run_state(m.run_id, since)
                        if since is None or revision > since:  # (an event of this process may not be committed yet)
                            self._bring_up(active, revision, lambda _: (core, parts))
                if not active.conductor.claimable(number, m.function):
                    return None
        except LegionError:  # gone, or read while it changed: the locked way sorts it out
            return None
        rendered = active.conductor.render_with(number)
        sr = active.state.active.get(number)
        if not isinstance(rendered, dict) or sr is None:
            return None  # its `with` failed: the locked way fails the run with the error
        now = utcnow()
        fields = {"node": self.process, "started_at": now, "args": rendered, "lease_until": now + timedelta(seconds=self.lease)}
        if not self.store.claim_step(m.run_id, number, MASKER.mask_fields(fields, TASK_MASKED), MAX_CLAIMS):
            return None
        self._emit(active, {"event": "step.started", "step": sr.step, "number": number, "attempt": sr.attempt, "index": sr.index})
        return {"args": rendered, "sr": sr, "program": active.conductor.program, "chain": active.state.run["chain"], "active": active}

    def _begin(self, m: Message) -> dict[str, Any]:
        """Begin a step run as an event of its run: what `_step` runs, or why not."""
        number = m.number
        began: dict[str, Any] = {}
        # Embedded, the arguments are rendered before the run is taken: a template that runs
        # to the end of its budget holds up this worker only, never a cancel or the run's
        # other events. (Shared, the state is read under the lock first.)
        held = None if self.shared else self.runs.get(m.run_id)
        rendered = held.conductor.render_with(number) if held is not None else None

        def begin(active: ActiveRun, batch: Batch) -> list[Command]:
            conductor = active.conductor
            sr = conductor.state.active.get(number)
            if sr is None:
                return []
            claims = 0
            if self.shared:
                if sr.status == "queued" and m.function != conductor.program.steps[sr.step].run:
                    return []  # a message for what this step run number was before a lost event: stale
                row = batch.locked.task(number) or {}
                if sr.status == "queued" and row.get("status") == "running":
                    return []  # a worker claimed it (`_claim`): this message is a duplicate
                claims = row.get("claims") or 0
                if sr.status == "queued" and claims >= MAX_CLAIMS:
                    began["poison"] = f"step run {number} ({sr.step}) of run {active.id} was taken {claims} times and its worker stopped each time"
                    self._fail_now(active, number, {"type": "WorkerLost", "message": began["poison"]}, batch)
                    return []
            result = conductor.begin(number, rendered if active is held else None, self.clock())
            if result.duplicate or result.held:
                return result.commands
            self._record_begin(active, sr, result, batch, claims)
            if result.args is not None and number in conductor.state.active and not sr.child:
                began.update(args=result.args, sr=sr, program=conductor.program, chain=active.state.run["chain"], active=active)
            return result.commands

        self._event(m.run_id, begin)
        return began

    def _record_begin(self, active: ActiveRun, sr: Any, begin: Any, batch: Batch, claims: int) -> None:
        base = {"run_id": active.id, "number": sr.number, "step": sr.step, "function": _fn(active, sr.step)}
        now = utcnow()
        if not begin.started:
            # The step run past max_steps is skipped; any other that never starts is canceled.
            skipped = sr.number > active.conductor.program.max_steps
            batch.task(dict(base, status="skipped" if skipped else "canceled", finished_at=now))
            return
        if begin.args is None:  # its `with` did not render: it started and failed the run
            batch.task(dict(base, status="failed", started_at=now, finished_at=now, node=self.node, error=active.state.error))
            batch.after.append(functools.partial(self._emit, active, {
                "event": "step.finished", "step": sr.step, "number": sr.number, "status": "failed", "result": None,
                "error": active.state.error}))
            return
        row = dict(base, status="running", started_at=now, node=self.node, args=begin.args)
        if self.shared:
            row.update(node=self.process, lease_until=now + timedelta(seconds=self.lease), claims=claims + 1)
        batch.task(row)
        batch.after.append(functools.partial(self._emit, active, {
            "event": "step.started", "step": sr.step, "number": sr.number, "attempt": sr.attempt, "index": sr.index}))

    def _finished(self, active: ActiveRun, batch: Batch, number: int, outcome: Outcome, decided: Any = None) -> list[Command]:
        """A step run's function (or sub-chain) ended with `outcome`."""
        sr = active.state.active.get(number)
        if sr is None or sr.status != "running":
            return []  # already finished (a late result after a timeout is discarded)
        error = dict(outcome.error, step=sr.step) if outcome.error else None
        batch.task({"run_id": active.id, "number": number, "step": sr.step, "function": _fn(active, sr.step),
                    "status": outcome.status, "finished_at": utcnow(), "result": outcome.result, "error": error,
                    **({"lease_until": None} if self.shared else {})})
        batch.after.append(functools.partial(self._emit, active, {
            "event": "step.finished", "step": sr.step, "number": number, "status": outcome.status,
            "result": outcome.result, "error": outcome.error}))
        if outcome.error:
            self._task_log(batch, active.id, number, "error", f"attempt {sr.attempt} failed: {outcome.error['type']}: {outcome.error['message']}")
        commands = active.conductor.finish(number, outcome.status, outcome.result, outcome.error, self.clock(), decided)
        for command in commands:
            wait = active.state.waits.get(command.wait_id) if isinstance(command, Schedule) else None
            if wait is not None and wait.kind == "retry":
                self._task_log(batch, active.id, number, "info", f"attempt {wait.attempt} in {max(0.0, wait.due - self.clock()):.3g}s")
        return commands

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

    def _called(self, parent: Context, ref: str, args: dict[str, Any]) -> Outcome:
        """A function that a running step calls (`Context.call`, e.g. a model's tool call): a
        task of the run with a number of its own, recorded under the calling step run
        (`caller`). It runs here, in the caller's thread: a step waiting for a free worker
        while it holds one could wait for ever (embedded, there may be only one)."""
        function = self.registry.functions.get(ref)
        if function is None:
            return failure("UnknownFunction", f"step {parent.step!r} called {ref!r}, which is not installed on node {self.node}: "
                                              "`legion function list` shows what is")
        base = {"run_id": parent.run_id, "step": parent.step, "function": ref}
        opened: list[int] = []

        def open_(active: ActiveRun, batch: Batch) -> list[Command]:
            st = active.state
            if st.ended:
                return []
            st.numbered += 1  # numbered by the run, so it never takes a step run's number
            number, now = st.numbered, utcnow()
            opened.append(number)
            batch.task(dict(base, number=number, status="running", attempt=1, caller=parent.number, parent_number=parent.number,
                            queued_at=now, started_at=now, node=self.process if self.shared else self.node, args=args))
            batch.after.append(functools.partial(self._emit, active, {
                "event": "step.started", "step": parent.step, "number": number, "attempt": 1, "index": None, "caller": parent.number}))
            return []

        self._event(parent.run_id, open_)
        if not opened:
            return failure("Canceled", f"run {parent.run_id} ended before step {parent.step!r} could call {ref}")
        number = opened[0]
        child = Context(run_id=parent.run_id, chain=parent.chain, step=parent.step, number=number, attempt=1, function=ref,
                        resolver=self.secrets, task_id=functools.partial(self._task_id, parent.run_id, number), caller=self._called,
                        registry=self.registry, agent=parent.agent, clock=self.clock, states=self.agent_states)
        parent.on_cancel(child.cancel)
        key = (parent.run_id, number)
        self._executing[key] = (dict(base, number=number), child)
        token = self.capture.begin()
        try:
            outcome = call(function, args, function.spec.timeout, child, chain=parent.chain, step=parent.step)
        finally:
            entries = self.capture.end(token)
            self._executing.pop(key, None)

        def close(active: ActiveRun, batch: Batch) -> list[Command]:
            batch.logs.extend(dict(entry, run_id=parent.run_id, number=number) for entry in entries)
            error = dict(outcome.error, step=parent.step) if outcome.error else None
            batch.task(dict(base, number=number, status=outcome.status, result=outcome.result, error=error, finished_at=utcnow()))
            batch.after.append(functools.partial(self._emit, active, {
                "event": "step.finished", "step": parent.step, "number": number, "status": outcome.status,
                "result": outcome.result, "error": error, "caller": parent.number}))
            return []

        self._event(parent.run_id, close)
        return outcome

    def _task_id(self, run_id: str, number: int) -> int | None:
        """A step run's task id, for `Context.task_id`: rows are written behind the hot path,
        so wait for this one to be committed first."""
        self.recorder.flush()
        try:
            return int(self.store.get_task_by_number(run_id, number)["id"])
        except NotFound:
            return None

    def _task_log(self, batch: Batch, run_id: str, number: int, level: str, message: str) -> None:
        batch.logs.append({"run_id": run_id, "number": number, "at": utcnow(), "level": level, "message": message,
                           "data": {"logger": "legion.runtime"}})

    def _record_lost(self, run_id: str, reason: str) -> None:
        """The recorder could not write some of a run's rows: the run stops, failed with the
        reason (rather than end `succeeded` with a hole in its trace)."""
        error = {"type": "RecordLost", "step": None,
                 "message": f"the engine could not record part of this run ({reason}); it was stopped"}
        self._event(run_id, lambda a, b: a.conductor.abort(error))

    # -- recovery -----------------------------------------------------------------------------

    def _adopt(self, run_id: str, *, ended: bool = True) -> ActiveRun | None:
        """Embedded: hold a run that no live process holds, from its stored state (one that
        ended only when `ended`)."""
        try:
            row = self.store.get_run(run_id)
        except NotFound:
            return None
        if row.get("state") is None or (row["node"] and row["node"] != self.process and _node_alive(row["node"])):
            return None
        state = RunState.from_dict(row["state"])
        if state.ended and not ended:
            return None
        try:
            program = self._program_of(state)
        except LegionError:
            return None
        active = self._hold(ActiveRun(run_id, Conductor(program, state), trigger=row.get("trigger") or "manual", recovered=True))
        if not state.ended:
            self.recorder.run({"id": run_id, "node": self.process})
        return active

    def recover(self) -> list[str]:
        """Embedded: continue the runs of processes of this host that are gone, from their
        last written state: their queued step runs are queued again, those that had begun
        run again, their waits are armed again. A run that cannot be continued (written
        before states were kept, or its chain version is not applied here) fails with
        `Interrupted`, and its unfinished tasks are canceled."""
        host = socket.gethostname()
        continued, handled = [], []
        for run in self.store.unfinished_runs(f"{host}:"):
            if _node_alive(run["node"]):
                continue
            if run["status"] in ("pending", "running", "paused") and self._adopt(run["id"]) is not None:
                continued.append(run["id"])
            elif self._interrupt_run(run):
                handled.append(run["id"])
        for run_id in continued:
            self._event(run_id, functools.partial(self._continue, claims=self._count_losses(self.runs[run_id])))
            log.warning("run %s continues here: the process that ran it is gone", run_id)
        return continued + handled

    def _count_losses(self, active: ActiveRun) -> dict[int, int]:
        """Embedded: each step run of `active` that was in flight (queued or running) when its
        process died counts one claim more, written at once (a step that kills its process as
        soon as it starts must not escape the count); their claims by number."""
        known = {t["number"]: t.get("claims") or 0 for t in self.store.run_tasks(active.id)}
        claims: dict[int, int] = {}
        rows = []
        for sr in active.state.active.values():
            if sr.child is None and sr.status in ("queued", "running"):
                claims[sr.number] = known.get(sr.number, 0) + 1
                rows.append(dict(self._queued_row(active, sr), claims=claims[sr.number]))
        if rows:
            self.store.record(None, rows)
        return claims

    def _continue(self, active: ActiveRun, batch: Batch, claims: dict[int, int]) -> list[Command]:
        st = active.state
        if st.status == "pending":
            batch.messages.append((Message(active.id, kind=t.START), None))
            return []
        commands: list[Command] = []
        for sr in list(st.active.values()):
            if sr.status == "running" and sr.child is not None:
                batch.messages.append((Message(sr.child, kind=t.START), None))  # started already: nothing happens
                batch.messages.append((Message(active.id, sr.number, kind=t.CHILD), None))  # ended already: its outcome
            elif claims.get(sr.number, 0) >= MAX_CLAIMS:
                sr.status = "running"  # fails as a step run that began
                self._fail_now(active, sr.number, {"type": "WorkerLost", "message": (
                    f"step run {sr.number} ({sr.step}) of run {active.id} was in flight each of the {claims[sr.number]} "
                    f"times its process stopped")}, batch)
            elif sr.status == "running":
                commands.extend(active.conductor.requeue(sr.number))
            elif sr.status == "queued":
                commands.append(Queue(sr))
        for w in st.waits.values():
            commands.append(Schedule(w.id, w.due))
        return commands

    def _interrupt_run(self, run: dict[str, Any]) -> bool:
        stopped = f"the process running it ({run['node']}) stopped before the"
        error = {"type": "Interrupted", "step": None, "message": f"{stopped} run ended; run the chain again"}
        task_error = {"type": "Interrupted", "step": None, "message": f"{stopped} step ended"}
        if not self.store.interrupt_run(run["id"], error, task_error):
            return False
        log.warning("run %s of chain %s: its process %s is gone; what it left unfinished is stopped", run["id"], run["chain_name"], run["node"])
        return True

    def reap_interrupted(self) -> list[str]:
        """The runs of this host's dead processes, continued or stopped (see `recover`)."""
        return self.recover()

    # -- background duties --------------------------------------------------------------------

    def _watch_control(self) -> None:
        """Embedded: requests another process made for runs held here (`legion run cancel`,
        `pause`, `resume`) wait in the outbox; carry them out."""
        try:
            for row in self.store.control_requests(self.active_runs()):
                message = Message.from_dict(row["message"])
                if message.kind == t.CANCEL:
                    self.cancel(message.run_id)
                elif message.kind == t.PAUSE:
                    self.pause(message.run_id)
                elif message.kind == t.RESUME:
                    self.resume(message.run_id)
                self.store.outbox_done([row["id"]])
        except (LegionError, ValueError) as exc:
            log.warning("reading requests for this process's runs failed: %s", exc)
        if not self._stopping.is_set():
            self._later(CONTROL_POLL, self._watch_control)

    def _renew_leases(self) -> None:
        """Shared: the heartbeat of the step runs this worker executes."""
        try:
            self.store.renew_leases(self.process, list(self._executing), utcnow() + timedelta(seconds=self.lease))
        except LegionError as exc:
            log.warning("renewing step-run leases failed: %s", exc.message)
        if not self._stopping.is_set():
            self._later(self.lease / 3, self._renew_leases)

    def _sweep(self) -> None:
        """Shared: queue again the step runs whose worker was lost; publish what a process
        committed but died before publishing."""
        try:
            for row in self.store.expired_leases():
                self._event(row["run_id"], functools.partial(self._requeue, number=int(row["number"])))
            rows = self.store.stale_outbox(OUTBOX_STALE)
            if rows:
                self.transport.publish([Message.from_dict(r["message"]) for r in rows if r["due"] is None])
                for r in rows:
                    if r["due"] is not None:
                        self.transport.publish([Message.from_dict(r["message"])], due=r["due"])
                self.store.outbox_done([r["id"] for r in rows])
        except (LegionError, ValueError) as exc:
            log.warning("sweeping leases and the outbox failed: %s", exc)
        if not self._stopping.is_set():
            self._later(min(SWEEP_EVERY, self.lease / 2), self._sweep)

    def _clear_outbox(self) -> None:
        """Shared: delete the outbox rows of messages the broker confirmed (in one statement
        every SWEEP_EVERY seconds rather than one per event)."""
        with self._published_lock:
            published, self._published = self._published, []
        try:
            self.store.outbox_done(published)
        except LegionError as exc:  # kept for the next time; a sweeper may publish them again meanwhile (duplicates, dropped)
            log.warning("clearing the outbox failed: %s", exc.message)
            with self._published_lock:
                self._published.extend(published)
        if not self._stopping.is_set():
            self._later(min(SWEEP_EVERY, OUTBOX_STALE / 2), self._clear_outbox)

    def _requeue(self, active: ActiveRun, batch: Batch, number: int) -> list[Command]:
        sr = active.state.active.get(number)
        if sr is not None:
            self._task_log(batch, active.id, number, "warning", "its worker stopped renewing its lease; the step run is queued again")
        return active.conductor.requeue(number, claimed=True)  # its task row says `running`: taken, by claim or by event

    def _watch_events(self) -> None:
        try:
            self.refresh_events()
        except LegionError as exc:
            log.warning("reading on.events triggers failed: %s", exc.message)
        if not self._stopping.is_set():
            self._later(EVENTS_POLL, self._watch_events)

    def _emit(self, active: ActiveRun, event: Event) -> None:
        for listener in (*active.listeners, *self.watchers):
            try:
                listener(dict(event, run_id=active.id))
            except Exception:
                log.exception("progress listener failed")

    def fire_event(self, function: str, result: Any, *, source_chain: str | None = None, agent: str | None = None) -> list[str]:
        """Start the chains whose `on.events` name `function`, with its result as input, for
        the agent whose run it was."""
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
            started.append(self.start_program(program, payload, trigger="event", agent=agent))
        return started

    # -- timers -------------------------------------------------------------------------------

    def _later(self, delay: float, action: Callable[[], None]) -> None:
        with self._timer_cv:
            heapq.heappush(self._timers, (time.monotonic() + max(0.0, delay), next(self._timer_order), action))
            self._timer_cv.notify()

    def _timer_loop(self) -> None:
        while not self._stopping.is_set():
            with self._timer_cv:
                now = time.monotonic()
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
            return [run_id for run_id, a in self.runs.items() if not a.state.ended]


def _unconfirmed(run_id: str, error: str | None) -> None:
    if error is not None:
        log.warning("the first messages of run %s were not confirmed (%s); they are sent again from the outbox", run_id, error)


def _settle(action: Callable[[], None]) -> None:
    try:
        action()
    except Exception:
        log.exception("settling a message failed; the broker delivers it again")


def _node_alive(node: str | None) -> bool:
    """Whether the process `host:pid` of this host still runs (another host's: assumed so)."""
    if not node or ":" not in node:
        return False
    host, pid = node.rsplit(":", 1)
    if host != socket.gethostname():
        return True
    return pid.isdigit() and _alive(int(pid))


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

