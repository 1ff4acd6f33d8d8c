"""A run's state, as plain serialisable data: what the conductor keeps between events.

`RunState.to_dict()` is JSON; `RunState.from_dict()` restores it, so a run can be stored
between events and continued by another process.

A `for_each` step holds state that grows with its items: the items, their results, and a step
run (and maybe a wait) per item in flight. Rewritten whole by every event, that makes a run's
cost grow with the square of its items. So a stored run is written in parts (`RunState.core`
and `RunState.changes`): the core (everything but those) is small and rewritten per event;
each item's step run, wait and result, and each group's items, is a part of its own,
written when it changes and deleted with its group. `RunState.from_parts` reads a run back,
from all its parts or, on top of the state a process already holds, from the parts that
changed since.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from legion.dsl.errors import LegionError

FINAL_RUN_STATUSES = frozenset({"succeeded", "failed", "canceled"})

# (result, status, error, number) of the step run whose edge started a step run: what its
# `with` sees as result/status/error, and its parent in the task records.
Prior = tuple[Any, Any, Any, int | None]

# A part of a stored run: (key, its for_each group, its data; None for a step run or wait gone).
Part = tuple[str, int, Any]


class Tracked(dict[int, Any]):
    """A dict of step runs, waits or groups that, once `touched` is a set, remembers every key
    an event read, wrote or removed (reads count: the caller may change what it looked up),
    and what it removed. `loose`: the keys of entries that belong to no for_each group (of
    step runs and waits: what a run's core holds)."""

    __slots__ = ("touched", "removed", "loose")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.touched: set[int] | None = None
        self.removed: dict[int, Any] = {}
        self.loose = {k for k, v in dict.items(self) if getattr(v, "group", 0) is None}

    def __getitem__(self, key: int) -> Any:
        if self.touched is not None:
            self.touched.add(key)
        return super().__getitem__(key)

    def get(self, key: int, default: Any = None) -> Any:
        if self.touched is not None:
            self.touched.add(key)
        return super().get(key, default)

    def __setitem__(self, key: int, value: Any) -> None:
        if self.touched is not None:
            self.touched.add(key)
        if getattr(value, "group", 0) is None:
            self.loose.add(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: int) -> None:
        self.pop(key)

    def pop(self, key: int, *default: Any) -> Any:
        if key in self:
            if self.touched is not None:
                self.touched.add(key)
                self.removed[key] = dict.__getitem__(self, key)
            self.loose.discard(key)
        elif not default:
            raise KeyError(key)
        return super().pop(key, *default)

    def clear(self) -> None:
        if self.touched is not None:
            self.touched.update(dict.keys(self))
            self.removed.update(dict.items(self))
        self.loose.clear()
        super().clear()

    def values(self) -> Any:
        self._touch_all()
        return super().values()

    def items(self) -> Any:
        self._touch_all()
        return super().items()

    def __iter__(self) -> Iterator[int]:
        self._touch_all()
        return super().__iter__()

    def _touch_all(self) -> None:
        if self.touched is not None:
            self.touched.update(dict.keys(self))

    def track(self) -> None:
        """Remember from now on what events touch (again from nothing)."""
        self.touched = set()
        self.removed.clear()

    def peek(self) -> Iterable[Any]:
        """The values, read without counting as touched."""
        return dict.values(self)


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
    # Plain dicts until `track` (a run written in parts) makes them Tracked ones: a rehearsal or
    # an embedded run pays nothing for what only the shared runtime needs.
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
    # Written in parts (see the module's docstring): each for_each group's step, context, prior
    # and items, by group id, as they were written once; and the groups whose results changed.
    statics: dict[int, tuple[str, dict[str, Any], Prior, list[Any]]] | None = field(default=None, compare=False, repr=False)
    new_results: list[tuple[int, int]] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def new(cls, run_id: str, chain: str, version: int, started: float, input: dict[str, Any], *,
            depth: int = 0, parent: tuple[str, int] | None = None, agent: str | None = None) -> RunState:
        """A run about to start: `run` is what templates see as `run` (spec section 3), with
        `agent` when the run is an agent's (a sub-chain's is its parent's)."""
        started_at = datetime.fromtimestamp(started, UTC).isoformat().replace("+00:00", "Z")
        run = {"id": run_id, "chain": chain, "version": version, "started_at": started_at}
        if agent is not None:
            run["agent"] = agent
        return cls(run=run, input=input, depth=depth, parent=parent)

    @property
    def ended(self) -> bool:
        return self.status in FINAL_RUN_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """JSON, whole. Each context is written once, however many step runs, waits and
        arrivals share it (they refer to it by index), and comes back shared."""
        return self._dump(whole=True)

    def core(self) -> dict[str, Any]:
        """JSON: the run's core, without what its for_each groups hold (see `changes`)."""
        return self._dump(whole=False)

    def _dump(self, *, whole: bool) -> dict[str, Any]:
        contexts: list[dict[str, Any]] = []
        index: dict[int, int] = {}

        def ref(ctx: dict[str, Any]) -> int:
            i = index.get(id(ctx))
            if i is None:
                i = index[id(ctx)] = len(contexts)
                contexts.append(ctx)
            return i

        active, waits = _peek(self.active, whole), _peek(self.waits, whole)
        if whole:
            groups = {str(k): [g.step, ref(g.ctx), list(g.prior), g.items, g.limit, g.next_index, g.finished, g.results,
                               {str(i): e for i, e in g.errors.items()}, g.last_attempt]
                      for k, g in dict.items(self.groups)}
        else:
            groups = {str(k): [g.limit, g.next_index, g.finished, {str(i): e for i, e in g.errors.items()}, g.last_attempt]
                      for k, g in dict.items(self.groups)}
        return {
            "run": self.run, "input": self.input, "status": self.status, "error": self.error,
            "output": self.output, "halted": self.halted, "began": self.began, "numbered": self.numbered,
            "active": [[s.number, s.step, ref(s.ctx), list(s.prior), s.attempt, s.item, s.index, s.group, s.status, s.timer, s.child]
                       for s in active],
            "groups": groups,
            "joins": {k: [j.state, [[p, ref(c)] for p, c in j.arrivals], j.counted] for k, j in self.joins.items()},
            "waits": [[w.id, w.due, w.kind, w.step, ref(w.ctx), list(w.prior), w.attempt, w.item, w.index, w.group, w.number, w.held]
                      for w in waits],
            "resume": [[r.step, ref(r.ctx), list(r.prior)] for r in self.resume],
            "next_id": self.next_id, "merged": self.merged, "last_result": self.last_result, "vars": self.vars,
            "depth": self.depth, "parent": list(self.parent) if self.parent else None, "task": self.task,
            "contexts": contexts, "parts": not whole,
            # how many step runs and waits are parts: what a reader checks its parts against
            "grouped": [len(self.active) - len(_loose(self.active)), len(self.waits) - len(_loose(self.waits))],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunState:
        """The state `to_dict` wrote (or a core with no groups, such as a run's before it started)."""
        if d.get("parts"):
            return cls.from_parts(d, ())
        state = cls._restore(d)
        contexts = d["contexts"]
        state.groups = {int(k): Group(g[0], contexts[g[1]], _prior(g[2]), g[3], g[4], g[5], g[6], g[7],
                                      {int(i): e for i, e in g[8].items()}, g[9])
                        for k, g in d["groups"].items()}
        return state

    @classmethod
    def _restore(cls, d: Mapping[str, Any]) -> RunState:
        """The state's fields but its groups; step runs and waits as the data lists them."""
        contexts = d["contexts"]
        state = cls(run=d["run"], input=d["input"], status=d["status"], error=d["error"], output=d["output"],
                    halted=d["halted"], began=d["began"], numbered=d["numbered"], next_id=d["next_id"], merged=d["merged"],
                    last_result=d["last_result"], vars=d["vars"], depth=d["depth"],
                    parent=(d["parent"][0], d["parent"][1]) if d["parent"] else None, task=d.get("task"))
        state.active = {s[0]: StepRun(s[0], s[1], contexts[s[2]], _prior(s[3]), *s[4:]) for s in d["active"]}
        state.joins = {k: Join(j[0], [(p, contexts[c]) for p, c in j[1]], j[2]) for k, j in d["joins"].items()}
        state.waits = {w[0]: Wait(w[0], w[1], w[2], w[3], contexts[w[4]], _prior(w[5]), *w[6:]) for w in d["waits"]}
        state.resume = [Resume(r[0], contexts[r[1]], _prior(r[2])) for r in d["resume"]]
        return state

    # -- written in parts ---------------------------------------------------------------------

    def track(self) -> None:
        """From now on, remember what events change, for `changes`: the state is written in
        parts, and what it holds now has not been written in parts yet."""
        if self.statics is None:
            self.statics = {}
        self.active, self.waits, self.groups = _tracked(self.active), _tracked(self.waits), _tracked(self.groups)
        for entries in (self.active, self.waits, self.groups):
            assert isinstance(entries, Tracked)
            entries.track()
        self.new_results.clear()

    def result_set(self, group: int, index: int) -> None:
        """An item's result changed (the conductor says so: results are a list, not tracked)."""
        if self.statics is not None:
            self.new_results.append((group, index))

    @property
    def quiet(self) -> bool:
        """Ended, with nothing running or waiting: its parts are needed no more."""
        return self.ended and not self.active and not self.waits

    def changes(self) -> list[Part]:
        """The parts that events changed since `track` (or the last call), to write with the
        core; tracking starts again. Keys: `g<group>` a group's step, context, prior and
        items (written once); `s<number>` a group's step run; `w<id>` a group's wait;
        `r<group>.<index>` an item's result. None for a step run or wait that is gone."""
        statics = self.statics
        assert statics is not None, "track() first"
        active, waits, groups = self.active, self.waits, self.groups
        assert isinstance(active, Tracked) and isinstance(waits, Tracked) and isinstance(groups, Tracked)
        parts: list[Part] = []
        # Copies of what was touched: a worker reading the state without the run's lock (to
        # render a step run's arguments) may touch more meanwhile, which changes nothing.
        for gid in list(groups.touched or ()):
            if gid not in statics:
                g = dict.get(groups, gid) or groups.removed[gid]
                statics[gid] = (g.step, g.ctx, g.prior, g.items)
                parts.append((f"g{gid}", gid, [g.step, g.ctx, list(g.prior), g.items]))
        for number in list(active.touched or ()):
            sr = dict.get(active, number)
            was = sr or active.removed.get(number)
            if was is not None and was.group is not None:
                parts.append((f"s{number}", was.group, None if sr is None else [sr.attempt, sr.index, sr.status, sr.timer, sr.child]))
        for wid in list(waits.touched or ()):
            w = dict.get(waits, wid)
            was = w or waits.removed.get(wid)
            if was is not None and was.group is not None:
                parts.append((f"w{wid}", was.group, None if w is None else [w.due, w.kind, w.attempt, w.index, w.number, w.held]))
        for gid, index in self.new_results:
            g = dict.get(groups, gid)
            if g is not None:
                parts.append((f"r{gid}.{index}", gid, g.results[index]))
        self.track()
        return parts

    @classmethod
    def from_parts(cls, core: Mapping[str, Any], parts: Iterable[Part], base: RunState | None = None) -> RunState:
        """A run written in parts: its `core` and `parts`, all of them, or, with `base` (the
        state at an earlier revision, tracked), only those changed since; `base` is taken
        apart to make it (use it no more). A core written whole (`to_dict`) needs no parts.
        PartMissing when a group's written data is not among what was read (a read that saw
        a later delete): read again, under the run's lock."""
        if not core.get("parts"):  # written whole: its next write writes every part
            state = cls.from_dict(core)
            state.track()
            for entries in (state.active, state.waits, state.groups):
                assert isinstance(entries, Tracked) and entries.touched is not None
                entries.touched.update(dict.keys(entries))
            state.new_results = [(gid, i) for gid, g in dict.items(state.groups) for i in range(len(g.results))]
            return state
        state = cls._restore(core)
        statics = dict(base.statics or {}) if base is not None else {}
        later: list[Part] = []
        for part in parts:
            key, gid, data = part
            if key[0] == "g":
                statics[gid] = (data[0], data[1], _prior(data[2]), data[3])
            else:
                later.append(part)
        groups = Tracked()
        for k, g in core["groups"].items():
            gid = int(k)
            if gid not in statics:
                raise PartMissing(f"group {gid}")
            step, ctx, prior, items = statics[gid]
            old = dict.get(base.groups, gid) if base is not None else None
            results = old.results if old is not None else [None] * len(items)
            dict.__setitem__(groups, gid, Group(step, ctx, prior, items, g[0], g[1], g[2], results,
                                                {int(i): e for i, e in g[3].items()}, g[4]))
        state.groups = groups
        if base is not None:  # its groups' step runs and waits are kept; the rest is the core's
            for mine, theirs in ((state.active, base.active), (state.waits, base.waits)):
                assert isinstance(theirs, Tracked)
                for number in theirs.loose:
                    dict.__delitem__(theirs, number)
                theirs.loose = set()
                for number, entry in list(mine.items()):
                    theirs[number] = entry
            state.active, state.waits = base.active, base.waits
        for key, gid, data in later:
            kind = key[0]
            if kind == "r":
                g = dict.get(groups, gid)
                if g is not None:
                    g.results[int(key.partition(".")[2])] = data
                continue
            if gid not in statics:
                raise PartMissing(f"group {gid}")
            step, ctx, prior, items = statics[gid]
            number = int(key[1:])
            if kind == "s":
                if data is None:
                    dict.pop(state.active, number, None)
                    continue
                attempt, index, status, timer, child = data
                state.active[number] = StepRun(number, step, ctx, prior, attempt, _item(items, index), index, gid, status, timer, child)
            elif kind == "w":
                if data is None:
                    dict.pop(state.waits, number, None)
                    continue
                due, wkind, attempt, index, for_number, held = data
                state.waits[number] = Wait(number, due, wkind, step, ctx, prior, attempt, _item(items, index), index, gid, for_number, held)
        grouped = core.get("grouped") or [0, 0]
        state.active, state.waits = _tracked(state.active), _tracked(state.waits)
        for entries, count in ((state.active, grouped[0]), (state.waits, grouped[1])):
            assert isinstance(entries, Tracked)
            if len(entries) - len(entries.loose) == count:
                continue
            if count:
                raise PartMissing(f"{count} step runs or waits in parts, {len(entries) - len(entries.loose)} read")
            for number in [k for k, v in dict.items(entries) if v.group is not None]:  # the run is quiet: its parts are gone
                dict.__delitem__(entries, number)
        state.statics = statics
        state.track()
        return state


class PartMissing(LegionError):
    """A run's parts, read without its lock, did not fit its core: read them under the lock."""


def _peek(entries: Mapping[int, Any], whole: bool) -> Iterable[Any]:
    """Step runs or waits to write: all of them, or (a core) those of no group."""
    if whole:
        return dict.values(entries)  # type: ignore[arg-type]
    if isinstance(entries, Tracked):
        return [dict.__getitem__(entries, key) for key in entries.loose]
    return [v for v in entries.values() if v.group is None]


def _tracked(entries: dict[int, Any]) -> Tracked:
    return entries if isinstance(entries, Tracked) else Tracked(entries)


def _loose(entries: Mapping[int, Any]) -> set[int]:
    return entries.loose if isinstance(entries, Tracked) else {k for k, v in entries.items() if v.group is None}


def _item(items: list[Any], index: int | None) -> Any:
    return items[index] if index is not None and index < len(items) else None


def _prior(p: list[Any]) -> Prior:
    return (p[0], p[1], p[2], p[3])
