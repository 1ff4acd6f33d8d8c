"""Rehearsals (spec sections 5 and 8): a chain run in-process on the virtual clock, with some
steps' results mocked, checked against what the rehearsal expects.

The driver here is the deterministic one: one FIFO queue of ready step runs, waits kept in
order of (due time, creation), no jitter. It drives the same conductor as the runtimes.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from legion.dsl.budget import step_binding
from legion.dsl.errors import Issue, LegionError, ValidationFailed
from legion.dsl.loader import Document
from legion.dsl.model import Chain, MockEntry, Rehearsal
from legion.dsl.validate import validate_chain_document, validate_rehearsal_document
from legion.engine.agentstate import AgentKeys, AgentStates
from legion.engine.conductor import ChainProgram, Conductor, Queue, Schedule, StartChild, child_outcome
from legion.engine.invoke import Outcome, call, checked_arguments, outcome_of_exception
from legion.engine.registry import Registry
from legion.engine.runstate import RunState, StepRun
from legion.engine.sdk import Context
from legion.engine.secrets import Resolver, SecretError
from legion.engine.yamlfiles import YamlFiles

EPOCH = datetime(2000, 1, 1, tzinfo=UTC).timestamp()  # the virtual clock's start
SLEEP = "core.util.sleep"


@dataclass
class RunResult:
    status: str
    output: Any
    error: dict[str, Any] | None
    sequence: list[str]
    elapsed: float  # virtual seconds
    step_runs: int = 0


class VirtualRun:
    """Runs one chain to its end on the virtual clock."""

    def __init__(
        self,
        program: ChainProgram,
        registry: Registry,
        *,
        resolve_chain: Callable[[str], ChainProgram] | None = None,
        mocks: Mapping[str, list[MockEntry]] | None = None,
        depth: int = 0,
        start: float = EPOCH,
        run_id: str = "rehearsal",
        secrets: Resolver | None = None,
        states: AgentStates | None = None,
        agent: str | None = None,
    ) -> None:
        self.program = program
        # Agent state of its own: a rehearsal starts from none, and what it keeps dies with it.
        self.states = states or AgentStates(_scratch_store, AgentKeys())
        self.agent = agent
        self.secrets = secrets or Resolver()  # the store is only opened when a real call needs a secret
        self.registry = registry
        self.resolve_chain = resolve_chain
        self.mocks = {step: deque(entries) for step, entries in (mocks or {}).items()}
        self.depth = depth
        self.start = start
        self.now = start
        self.run_id = run_id
        self.queue: deque[int] = deque()
        self.waits: list[tuple[float, int, int]] = []  # (due, order of creation, wait id)
        self.created = 0

    def run(self, input: dict[str, Any]) -> RunResult:
        state = RunState.new(self.run_id, self.program.name, self.program.version, self.now, input, depth=self.depth, agent=self.agent)
        conductor = Conductor(self.program, state, jitter=False)
        sequence: list[str] = []
        self._apply(conductor.start(self.now))
        while not state.ended and (self.queue or self._next_wait(state) is not None):
            if not self.queue:
                # Every wait that ends at the earliest instant joins the queue before any runs.
                self._advance(conductor, max(self.now, self._next_wait(state) or self.now))
                continue
            number = self.queue.popleft()
            step_run = state.active.get(number)
            begin = conductor.begin(number, None, self.now)
            if begin.started and step_run is not None:
                sequence.append(step_run.step)
            self._apply(begin.commands)
            if begin.args is None or step_run is None or number not in state.active:
                continue
            child = next((c for c in begin.commands if isinstance(c, StartChild)), None)
            outcome, duration = self._sub_chain(child) if child is not None else self._invoke(step_run, begin.args)
            if duration > 0:
                self._advance(conductor, self.now + duration, number)
            if number in state.active:  # not timed out meanwhile
                self._apply(conductor.finish(number, outcome.status, outcome.result, outcome.error, self.now))
        return RunResult(state.status, state.output, state.error, sequence, self.now - self.start, state.numbered)

    def _apply(self, commands: Iterable[Any]) -> None:
        for command in commands:
            if isinstance(command, Queue):
                self.queue.append(command.step_run.number)
            elif isinstance(command, Schedule):
                self.created += 1
                heapq.heappush(self.waits, (command.due, self.created, command.wait_id))

    def _next_wait(self, state: RunState) -> float | None:
        """When the earliest wait still pending ends (a step run's timeout is gone once it finished)."""
        while self.waits and self.waits[0][2] not in state.waits:
            heapq.heappop(self.waits)
        return self.waits[0][0] if self.waits else None

    def _advance(self, conductor: Conductor, until: float, running: int | None = None) -> None:
        """While a step takes time, waits that end meanwhile join the queue in the order they
        end; the step run `running` that times out meanwhile takes no longer than that."""
        while (due := self._next_wait(conductor.state)) is not None and due <= until:
            _, _, wait_id = heapq.heappop(self.waits)
            self.now = max(self.now, due)
            self._apply(conductor.wake(wait_id, self.now))
            if running is not None and running not in conductor.state.active:
                return
        self.now = until

    def _invoke(self, step_run: StepRun, args: dict[str, Any]) -> tuple[Outcome, float]:
        step, number, attempt = step_run.step, step_run.number, step_run.attempt
        prog = self.program.steps[step]
        pending = self.mocks.get(step)
        if pending:
            # A mock stands in for the function's result, not for the check of its arguments:
            # a chain that renders a wrong value fails its rehearsal as it would fail a run.
            function = self.registry.functions.get(prog.run)
            checked = checked_arguments(function, args, self.program.name, step) if function is not None else args
            return (checked if isinstance(checked, Outcome) else mock_outcome(pending.popleft())), 0.0
        if prog.run == SLEEP:  # the virtual clock's sleep: its arguments checked as the real one's
            sleep = self.registry.functions.get(SLEEP)
            checked = checked_arguments(sleep, args, self.program.name, step) if sleep is not None else args
            seconds = None if isinstance(checked, Outcome) else checked.get("seconds", 0)
            if isinstance(checked, Outcome):
                return checked, 0.0
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
                return Outcome("failed", None, {"type": "StepFailed", "message": f"sleep: seconds must be a number >= 0, not {seconds!r}"}), 0.0
            return Outcome("succeeded", None), float(seconds)
        try:
            function = self.registry.function(prog.run)
        except LegionError as exc:
            return Outcome("failed", None, {"type": "StepFailed", "message": exc.message}), 0.0
        try:
            args = self.secrets.resolve(args, step_binding(self.run_id, number))  # only real calls see values; mocks never do
        except SecretError as exc:
            return outcome_of_exception(exc), 0.0
        context = Context(run_id=self.run_id, chain=self.program.name, step=step, number=number, attempt=attempt,
                          function=prog.run, resolver=self.secrets, clock=lambda: self.now, states=self.states, agent=self.agent)
        return call(function, args, context=context), 0.0

    def _sub_chain(self, child: StartChild) -> tuple[Outcome, float]:
        """The sub-chain run to its end on this clock: its outcome, and how long it took."""
        if self.mocks.get(child.step_run.step):
            return self._invoke(child.step_run, child.input)
        if self.resolve_chain is None:
            return Outcome("failed", None, {"type": "StepFailed", "message": f"chain {child.chain!r} cannot be resolved here"}), 0.0
        try:
            program = self.resolve_chain(child.chain)
        except ValidationFailed:
            raise  # the rehearsal's files do not validate: it fails with their issues
        except LegionError as exc:
            return Outcome("failed", None, {"type": "StepFailed", "message": exc.message}), 0.0
        sub = VirtualRun(program, self.registry, resolve_chain=self.resolve_chain, depth=child.depth,
                         start=self.now, run_id=f"{self.run_id}/{child.step_run.step}", secrets=self.secrets, states=self.states,
                         agent=child.agent)
        result = sub.run(child.input)
        status, output, error = child_outcome(child.chain, result.status, result.output, result.error)
        return Outcome(status, output, error), result.elapsed


def _scratch_store() -> Any:
    """A SQLite store in a folder removed when the store is collected (opened only when a
    function of the rehearsal keeps agent state)."""
    import tempfile
    import weakref

    from legion.engine.data.store import Store

    folder = tempfile.TemporaryDirectory(prefix="legion-rehearsal-")
    store = Store(f"sqlite:///{folder.name}/state.db")
    weakref.finalize(store, folder.cleanup)
    return store


def mock_outcome(entry: MockEntry) -> Outcome:
    failed = entry.status == "failed" or (entry.status is None and entry.error is not None)
    if not failed:
        return Outcome("succeeded", entry.result)
    error = entry.error
    if isinstance(error, Mapping):  # other keys (exception, traceback, ...) are kept, as a function's would be
        return Outcome("failed", entry.result, dict(error, type=error.get("type") or "StepFailed", message=str(error.get("message") or "")))
    return Outcome("failed", entry.result, {"type": "StepFailed", "message": "" if error is None else str(error)})


# ---------------------------------------------------------------- rehearsal files


@dataclass
class RehearsalReport:
    file: str
    name: str
    passed: bool
    failures: list[str] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    result: RunResult | None = None

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "file": self.file, "name": self.name, "passed": self.passed, "failures": self.failures,
            "issues": [i.to_dict() for i in self.issues],
            "run": None if r is None else {"status": r.status, "sequence": r.sequence, "output": r.output, "error": r.error},
        }


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: 2 == 2.0, but "42" != 42 and true != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def subset_match(expected: Mapping[str, Any], actual: Mapping[str, Any] | None) -> bool:
    if actual is None:
        return False
    return all(k in actual and json_equal(v, actual[k]) for k, v in expected.items())


class ChainFolder:
    """Chains found by name among the chain files of one folder (for `chain:<name>`)."""

    def __init__(self, folder: Path, registry: Registry, files: YamlFiles | None = None) -> None:
        self.folder = folder
        self.registry = registry
        self.files = files if files is not None else YamlFiles()
        self._paths: dict[str, Path] | None = None
        self._programs: dict[str, ChainProgram] = {}

    def paths(self) -> dict[str, Path]:
        if self._paths is None:
            self._paths = {}
            for path in sorted(self.folder.glob("*.y*ml")):
                doc = self.files.get(path).doc
                if doc is None:
                    continue
                data = doc.data
                if isinstance(data, dict) and "steps" in data and isinstance(data.get("chain"), str):
                    self._paths.setdefault(data["chain"], path)
        return self._paths

    def resolve(self, name: str) -> ChainProgram:
        if name not in self._programs:
            path = self.paths().get(name)
            if path is None:
                raise LegionError(f"no chain named {name!r} among the chain files in {self.folder}")
            chain, _ = validate_or_raise(self.files.load(path), self.registry, self.paths().keys())
            self._programs[name] = ChainProgram(chain, functions=self.registry.catalog())
        return self._programs[name]


def validate_or_raise(doc: Document, registry: Registry, chains: Iterable[str] | None) -> tuple[Chain, list[Issue]]:
    chain, issues = validate_chain_document(doc, functions=registry.catalog(), chains=chains)
    if chain is None:
        raise ValidationFailed(issues)
    return chain, issues


def run_rehearsal(path: Path, registry: Registry, files: YamlFiles | None = None) -> RehearsalReport:
    """Load, validate, run and check one rehearsal file; problems become a failed report.
    `files`: the command's loaded files, so that a file several rehearsals use loads once."""
    name = path.stem
    files = files if files is not None else YamlFiles()
    try:
        doc = files.load(path)
        rehearsal, issues = validate_rehearsal_document(doc)
        if rehearsal is None:
            return RehearsalReport(str(path), name, False, ["the rehearsal file has errors"], issues)
        assert isinstance(rehearsal, Rehearsal)
        name = rehearsal.rehearsal or name
        if isinstance(rehearsal.chain, str):
            chain_path = (path.parent / rehearsal.chain).resolve()
            folder = ChainFolder(chain_path.parent, registry, files)
            chain_doc = files.load(chain_path)
        else:
            folder = ChainFolder(path.parent, registry, files)
            chain_doc = doc.sub("chain")
        known = set(folder.paths())
        if isinstance(chain_doc.data, dict) and isinstance(chain_doc.data.get("chain"), str):
            known.add(chain_doc.data["chain"])  # an inline chain may call itself
        chain, _ = validate_or_raise(chain_doc, registry, known)
        unknown = [s for s in rehearsal.mocks if s not in chain.steps]
        if unknown:
            return RehearsalReport(str(path), name, False, [f"mocks name steps the chain does not have: {', '.join(unknown)}"],
                                   [doc.issue(("mocks", unknown[0]), f"no step {unknown[0]!r} in chain {chain.chain!r}")])
        program = ChainProgram(chain, functions=registry.catalog())
        result = VirtualRun(program, registry, resolve_chain=folder.resolve, mocks=rehearsal.mocks).run(dict(rehearsal.input))
    except ValidationFailed as exc:
        return RehearsalReport(str(path), name, False, ["files do not load or validate"], exc.issues)
    failures = check_expectations(rehearsal, result)
    return RehearsalReport(str(path), name, not failures, failures, [], result)


def check_expectations(rehearsal: Rehearsal, result: RunResult) -> list[str]:
    expect = rehearsal.expect
    failures = []
    if result.status != expect.status:
        failures.append(f"status: expected {expect.status}, got {result.status}" + (f" ({result.error})" if result.error else ""))
    if expect.sequence is not None and result.sequence != expect.sequence:
        failures.append(f"sequence: expected {expect.sequence}, got {result.sequence}")
    if "output" in expect.model_fields_set and not json_equal(expect.output, result.output):
        failures.append(f"output: expected {expect.output!r}, got {result.output!r}")
    if expect.error is not None and not subset_match(expect.error, result.error):
        failures.append(f"error: expected {expect.error!r} (subset), got {result.error!r}")
    return failures
