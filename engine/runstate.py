"""A run's state, as plain serialisable data: what the conductor keeps between events.

`RunState.to_dict()` is JSON; `RunState.from_dict()` restores it, so a run can be stored
between events and continued by another process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

FINAL_RUN_STATUSES = frozenset({"succeeded", "failed", "canceled"})

# (result, status, error, number) of the step run whose edge started a step run: what its
# `with` sees as result/status/error, and its parent in the task records.
Prior = tuple[Any, Any, Any, int | None]


@dataclass(slots=True)
class StepRun:
    """One scheduled execution of a step: an attempt, or one item of a for_each. `timer`: the
    wait that times it out; `child`: the run of its sub-chain, once started."""

    number: int
    step: str
    ctx: dict[str, Any]
    prior: Prior  # number: for a for_each predecessor, its last item's; None for start steps
    attempt: int = 1
    item: Any = None
    index: int | None = None
    group: int | None = None
    status: str = "queued"  # queued, running, held (delivered while the run was paused)
    timer: int | None = None
    child: str | None = None


@dataclass(slots=True)
class Group:
    """The items of one for_each step becoming ready."""

    step: str
    ctx: dict[str, Any]
    prior: Prior
    items: list[Any]
    limit: int
    next_index: int = 0
    finished: int = 0
    results: list[Any] = field(default_factory=list)
    errors: dict[int, dict[str, Any]] = field(default_factory=dict)
    last_attempt: int = 1


@dataclass(slots=True)
class Join:
    state: str = "open"  # open (collecting a round), ran, skipped
    arrivals: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    counted: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Wait:
    """A retry, a delay or a step run's timeout, waiting outside any worker. `number`: the
    step run a timeout is for. `held`: it ended while the run was paused."""

    id: int
    due: float
    kind: str  # "retry" | "delay" | "timeout"
    step: str
    ctx: dict[str, Any]
    prior: Prior
    attempt: int = 1
    item: Any = None
    index: int | None = None
    group: int | None = None
    number: int | None = None
    held: bool = False


@dataclass(slots=True)
class Resume:
    """Where `legion run retry` starts again: a step whose failure (or halt) ended its branch."""

    step: str
    ctx: dict[str, Any]
    prior: Prior


@dataclass(slots=True)
class RunState:
    run: dict[str, Any]  # {id, chain, version, started_at}
    input: dict[str, Any]
    status: str = "pending"
    error: dict[str, Any] | None = None
    output: Any = None
    halted: bool = False  # fail-fast (or cancel): no step run starts any more
    began: bool = False  # a step run has started (a run failing before that has a null output)
    numbered: int = 0
    active: dict[int, StepRun] = field(default_factory=dict)
    groups: dict[int, Group] = field(default_factory=dict)
    joins: dict[str, Join] = field(default_factory=dict)
    waits: dict[int, Wait] = field(default_factory=dict)
    next_id: int = 1
    merged: dict[str, Any] = field(default_factory=dict)
    last_result: Any = None
    vars: dict[str, Any] = field(default_factory=dict)
    depth: int = 0  # 0 for a top-level run, 1 for its sub-chains' runs, ...
    parent: tuple[str, int] | None = None  # (run id, step run number) of the sub-chain step that started it
    resume: list[Resume] = field(default_factory=list)
    task: str | None = None  # the function of a one-function run (`legion task run`)

    @classmethod
    def new(cls, run_id: str, chain: str, version: int, started: float, input: dict[str, Any], *,
            depth: int = 0, parent: tuple[str, int] | None = None) -> RunState:
        """A run about to start: `run` is what templates see as `run` (spec section 3)."""
        started_at = datetime.fromtimestamp(started, UTC).isoformat().replace("+00:00", "Z")
        return cls(run={"id": run_id, "chain": chain, "version": version, "started_at": started_at}, input=input,
                   depth=depth, parent=parent)

    @property
    def ended(self) -> bool:
        return self.status in FINAL_RUN_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """JSON. Each context is written once, however many step runs, waits and arrivals
        share it (they refer to it by index), and comes back shared."""
        contexts: list[dict[str, Any]] = []
        index: dict[int, int] = {}

        def ref(ctx: dict[str, Any]) -> int:
            i = index.get(id(ctx))
            if i is None:
                i = index[id(ctx)] = len(contexts)
                contexts.append(ctx)
            return i

        return {
            "run": self.run, "input": self.input, "status": self.status, "error": self.error,
            "output": self.output, "halted": self.halted, "began": self.began, "numbered": self.numbered,
            "active": [[s.number, s.step, ref(s.ctx), list(s.prior), s.attempt, s.item, s.index, s.group, s.status, s.timer, s.child]
                       for s in self.active.values()],
            "groups": {str(k): [g.step, ref(g.ctx), list(g.prior), g.items, g.limit, g.next_index, g.finished, g.results,
                                {str(i): e for i, e in g.errors.items()}, g.last_attempt]
                       for k, g in self.groups.items()},
            "joins": {k: [j.state, [[p, ref(c)] for p, c in j.arrivals], j.counted] for k, j in self.joins.items()},
            "waits": [[w.id, w.due, w.kind, w.step, ref(w.ctx), list(w.prior), w.attempt, w.item, w.index, w.group, w.number, w.held]
                      for w in self.waits.values()],
            "resume": [[r.step, ref(r.ctx), list(r.prior)] for r in self.resume],
            "next_id": self.next_id, "merged": self.merged, "last_result": self.last_result, "vars": self.vars,
            "depth": self.depth, "parent": list(self.parent) if self.parent else None, "task": self.task,
            "contexts": contexts,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunState:
        contexts = d["contexts"]
        state = cls(run=d["run"], input=d["input"], status=d["status"], error=d["error"], output=d["output"],
                    halted=d["halted"], began=d["began"], numbered=d["numbered"], next_id=d["next_id"], merged=d["merged"],
                    last_result=d["last_result"], vars=d["vars"], depth=d["depth"],
                    parent=(d["parent"][0], d["parent"][1]) if d["parent"] else None, task=d.get("task"))
        state.active = {s[0]: StepRun(s[0], s[1], contexts[s[2]], _prior(s[3]), *s[4:]) for s in d["active"]}
        state.groups = {int(k): Group(g[0], contexts[g[1]], _prior(g[2]), g[3], g[4], g[5], g[6], g[7],
                                      {int(i): e for i, e in g[8].items()}, g[9])
                        for k, g in d["groups"].items()}
        state.joins = {k: Join(j[0], [(p, contexts[c]) for p, c in j[1]], j[2]) for k, j in d["joins"].items()}
        state.waits = {w[0]: Wait(w[0], w[1], w[2], w[3], contexts[w[4]], _prior(w[5]), *w[6:]) for w in d["waits"]}
        state.resume = [Resume(r[0], contexts[r[1]], _prior(r[2])) for r in d["resume"]]
        return state


def _prior(p: list[Any]) -> Prior:
    return (p[0], p[1], p[2], p[3])
