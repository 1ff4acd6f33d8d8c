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
    """One scheduled execution of a step: an attempt, or one item of a for_each."""

    number: int
    step: str
    ctx: dict[str, Any]
    prior: Prior  # number: for a for_each predecessor, its last item's; None for start steps
    attempt: int = 1
    item: Any = None
    index: int | None = None
    group: int | None = None
    status: str = "queued"

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number, "step": self.step, "ctx": self.ctx, "prior": list(self.prior),
            "attempt": self.attempt, "item": self.item, "index": self.index, "group": self.group,
            "status": self.status,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StepRun:
        return cls(d["number"], d["step"], d["ctx"], tuple(d["prior"]), d["attempt"], d["item"], d["index"], d["group"], d["status"])  # type: ignore[arg-type]


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
    """A retry or a delay waiting outside any worker."""

    id: int
    due: float
    kind: str  # "retry" | "delay"
    step: str
    ctx: dict[str, Any]
    prior: Prior
    attempt: int = 1
    item: Any = None
    index: int | None = None
    group: int | None = None


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

    @classmethod
    def new(cls, run_id: str, chain: str, version: int, started: float, input: dict[str, Any]) -> RunState:
        """A run about to start: `run` is what templates see as `run` (spec section 3)."""
        started_at = datetime.fromtimestamp(started, UTC).isoformat().replace("+00:00", "Z")
        return cls(run={"id": run_id, "chain": chain, "version": version, "started_at": started_at}, input=input)

    @property
    def ended(self) -> bool:
        return self.status in FINAL_RUN_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run, "input": self.input, "status": self.status, "error": self.error,
            "output": self.output, "halted": self.halted, "began": self.began, "numbered": self.numbered,
            "active": [s.to_dict() for s in self.active.values()],
            "groups": {str(k): {"step": g.step, "ctx": g.ctx, "prior": list(g.prior), "items": g.items, "limit": g.limit,
                                "next_index": g.next_index, "finished": g.finished, "results": g.results,
                                "errors": {str(i): e for i, e in g.errors.items()}, "last_attempt": g.last_attempt}
                       for k, g in self.groups.items()},
            "joins": {k: {"state": j.state, "arrivals": [list(a) for a in j.arrivals], "counted": j.counted} for k, j in self.joins.items()},
            "waits": [{"id": w.id, "due": w.due, "kind": w.kind, "step": w.step, "ctx": w.ctx, "prior": list(w.prior),
                       "attempt": w.attempt, "item": w.item, "index": w.index, "group": w.group} for w in self.waits.values()],
            "next_id": self.next_id, "merged": self.merged, "last_result": self.last_result, "vars": self.vars,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunState:
        state = cls(run=d["run"], input=d["input"], status=d["status"], error=d["error"], output=d["output"],
                    halted=d["halted"], began=d.get("began", False), numbered=d["numbered"], next_id=d["next_id"], merged=d["merged"],
                    last_result=d["last_result"], vars=d["vars"])
        state.active = {s["number"]: StepRun.from_dict(s) for s in d["active"]}
        state.groups = {int(k): Group(g["step"], g["ctx"], tuple(g["prior"]), g["items"], g["limit"], g["next_index"],  # type: ignore[arg-type]
                                      g["finished"], g["results"], {int(i): e for i, e in g["errors"].items()}, g["last_attempt"])
                        for k, g in d["groups"].items()}
        state.joins = {k: Join(j["state"], [(a[0], a[1]) for a in j["arrivals"]], j["counted"]) for k, j in d["joins"].items()}
        state.waits = {w["id"]: Wait(w["id"], w["due"], w["kind"], w["step"], w["ctx"], tuple(w["prior"]), w["attempt"],  # type: ignore[arg-type]
                                     w["item"], w["index"], w["group"]) for w in d["waits"]}
        return state
