"""The durable run path's storage: a run locked for one event, the outbox, step-run leases.

One event of a run is one transaction: `lock_run` takes the run's row lock (`SELECT ... FOR
UPDATE` on PostgreSQL and MariaDB; SQLite's write lock, taken by BEGIN IMMEDIATE), the caller
applies the event to the run's state, and `LockedRun.save` writes the state, the task rows and
the messages to publish (the outbox) in that same transaction. The messages are published
after the commit and their outbox rows deleted; rows a crash left behind are published again
by `stale_outbox`'s reader.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, case, delete, exists, func, insert, or_, select, tuple_, type_coerce, update

from legion.engine.data._base import StoreBase, rows
from legion.engine.data._runs import missing_run, write_rows
from legion.engine.data._upsert import upsert
from legion.engine.data.models import outbox, run_parts, runs
from legion.engine.data.models import tasks as task_table
from legion.engine.data.types import utcnow
from legion.engine.errors import NotFound

if TYPE_CHECKING:
    from legion.engine.runstate import Part

OUTBOX_CHUNK = 1_000  # outbox rows deleted per statement: bounded IN lists


@dataclass
class LockedRun:
    """A run's row, locked until the transaction ends. `state` is read only when asked for:
    a process whose cached state has this `revision` need not read it."""

    conn: Connection
    id: str
    status: str
    revision: int
    claimed_by: str | None = None  # with lock_run's `claim`: the node running that step run, if one is
    creating: Mapping[str, Any] | None = None  # with lock_run's `create`: the row, inserted by `save`
    core: Any = None  # with lock_run's `known`: the state's core, read with the lock when the revision is another

    def state(self, since: int | None = None) -> tuple[dict[str, Any] | None, list[Part]]:
        """The run's state: its core and its parts, all of them or (`since`: a revision) those
        written after that revision (see engine/runstate.py)."""
        core = self.core if self.core is not None else self.conn.execute(_STATE, {"run_id": self.id}).scalar_one()
        return core, _parts(self.conn, self.id, since, core)

    def task(self, number: int) -> dict[str, Any] | None:
        row = self.conn.execute(_TASK_CLAIMS, {"run_id": self.id, "number": number}).first()
        return None if row is None else dict(row._mapping)

    def save(self, run: Mapping[str, Any] | None, tasks: Sequence[Mapping[str, Any]], logs: Sequence[Mapping[str, Any]] = (),
             messages: Sequence[tuple[dict[str, Any], float | None]] = (), new_runs: Sequence[Mapping[str, Any]] = (),
             parts: Sequence[Part] = (), quiet: bool = False) -> list[int]:
        """Write the run's new fields (`state` among them, its core; the revision advances),
        the parts of its state that changed, its task rows and log entries, the runs it
        started (`new_runs`: sub-chain runs; one that exists already is kept), and the outbox
        rows of `messages` ((message, due) pairs); the outbox rows' ids. `quiet`: the run is
        over and nothing of it runs or waits, so its parts are deleted."""
        revision = self.revision + 1
        fields = dict(run or {}, revision=revision)
        created, self.creating = self.creating, None
        if created is not None:  # its row goes in once, as this event left it
            self.conn.execute(insert(runs), [dict(created, **fields)])
        _insert_runs(self.conn, new_runs)
        write_rows(self.conn, [] if created is not None else [dict(fields, id=self.id)], tasks, logs)
        if quiet:
            self.conn.execute(_PARTS_DELETE, {"run_id": self.id})
        elif parts:
            self.conn.execute(_parts_upsert(self.conn.dialect.name),
                              [{"run_id": self.id, "part": key, "grp": group, "revision": revision, "data": data}
                               for key, group, data in parts])
        self.revision = revision
        if not messages:
            return []
        now = utcnow()
        ids = []
        for message, due in messages:  # one by one: the ids are needed, and not every driver returns them for many
            result = self.conn.execute(_OUTBOX_INSERT, {"run_id": self.id, "message": message, "due": due, "created_at": now})
            key = result.inserted_primary_key
            assert key is not None
            ids.append(int(key[0]))
        return ids


class DurableStore(StoreBase):
    @contextmanager
    def lock_run(self, run_id: str, *, create: Mapping[str, Any] | None = None,
                 claim: int | None = None, known: int | None = None) -> Iterator[LockedRun]:
        """The run's row locked for one event (see the module's docstring); with `create`,
        a new run, whose row `save` inserts, in the same transaction (and whose commit, the
        run's start, waits for the disk). With `claim` (a step run's
        number), `claimed_by` says which node runs that step run (see `claim_step`), read in
        the same round trip. With `known` (the revision of the caller's copy of the state),
        the state's core comes in that round trip too when the revision is another (for
        `LockedRun.state`). NotFound when there is no such run.

        On PostgreSQL the commit does not wait for the disk (`synchronous_commit` off, for
        this transaction only): a crash of the database server itself may lose the last
        fraction of a second of events, never part of one, and a lost event is one that is
        carried out again (a step run begun or finished then runs again), as after a
        worker's death; a process crash loses nothing."""
        with missing_run(), self._write() as conn:
            if create is not None:  # nobody else can see it yet: nothing to lock
                yield LockedRun(conn, run_id, str(create["status"]), 0, creating=create)
                return
            row = conn.execute(_lock_query(conn.dialect.name, claim is not None, known is not None),
                               {"run_id": run_id, "claim": claim, "known": known}).first()
            if row is None:
                raise NotFound(f"There is no run {run_id!r}; `legion run list` shows the recent ones.")
            yield LockedRun(conn, run_id, row.status, row.revision, row.claimed_by if claim is not None else None,
                            core=row.state if known is not None else None)

    def run_state(self, run_id: str, since: int | None = None) -> tuple[dict[str, Any] | None, list[Part], int]:
        """A run's state (its core and parts, as `LockedRun.state` gives them) and its
        revision, read without a lock: what a worker renders a queued step run's arguments
        from (they depend only on what was there when it was queued). The parts may have
        been written after the core (each is read at once): `RunState.from_parts` says
        when they do not fit. NotFound when there is no such run."""
        with self._read() as conn:
            row = conn.execute(_STATE_REVISION, {"run_id": run_id}).first()
            if row is None:
                raise NotFound(f"There is no run {run_id!r}; `legion run list` shows the recent ones.")
            return row.state, _parts(conn, run_id, since, row.state), int(row.revision)

    def claim_step(self, run_id: str, number: int, fields: Mapping[str, Any], max_claims: int) -> bool:
        """Take a queued step run for one worker, without the run's lock: its task row becomes
        `running` with `fields` (node, started_at, args, lease_until) and one claim more, but
        only if it is still queued, has been taken fewer than `max_claims` times, and its run
        is running (not paused, not ended). False when any of these does not hold: the caller
        then goes the locked way, which sorts out every other case.

        One statement; on PostgreSQL without a transaction around it (nor waiting for the
        disk: a claim lost to a server crash is taken again)."""
        query = _claim_query(self.dialect, tuple(fields))
        params = {"k_run_id": run_id, "k_number": number, "max_claims": max_claims} | {f"v_{c}": v for c, v in fields.items()}
        if self.dialect == "postgresql":
            with self._single() as conn:
                return conn.execute(query, params).first() is not None
        with self._write() as conn:
            return bool(conn.execute(query, params).rowcount)

    def create_runs(self, rows_: Sequence[Mapping[str, Any]]) -> None:
        """Insert runs that may exist already (a sub-chain run started again after a crash)."""
        with self._write() as conn:
            _insert_runs(conn, rows_)

    def request(self, message: Mapping[str, Any]) -> None:
        """Leave a request for the process holding a run (embedded: `legion run cancel` and
        the like from another process), in the outbox, where that process looks."""
        with self._write() as conn:
            conn.execute(insert(outbox).values(run_id=message["run_id"], message=dict(message), due=None, created_at=utcnow()))

    def control_requests(self, run_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The requests left for these runs: {id, run_id, message}, oldest first."""
        if not run_ids:
            return []
        query = select(outbox.c.id, outbox.c.run_id, outbox.c.message).where(outbox.c.run_id.in_(list(run_ids))).order_by(outbox.c.id)
        with self._read() as conn:
            return rows(conn.execute(query))

    # -- the outbox -------------------------------------------------------------------------

    def outbox_done(self, ids: Sequence[int]) -> None:
        for start in range(0, len(ids), OUTBOX_CHUNK):
            with self._write() as conn:
                conn.execute(_OUTBOX_DELETE, {"ids": list(ids[start:start + OUTBOX_CHUNK])})

    def stale_outbox(self, older_than: float, limit: int = 500) -> list[dict[str, Any]]:
        """Outbox rows written more than `older_than` seconds ago: their process died (or is
        very slow) between committing and publishing. Each {id, run_id, message, due}."""
        before = utcnow() - timedelta(seconds=older_than)
        query = select(outbox).where(outbox.c.created_at < before).order_by(outbox.c.id).limit(limit)
        with self._read() as conn:
            return rows(conn.execute(query))

    # -- step-run leases --------------------------------------------------------------------

    def renew_leases(self, node: str, step_runs: Sequence[tuple[str, int]], until: datetime) -> None:
        """Keep the leases of the step runs `node` is running (its heartbeat)."""
        if not step_runs:
            return
        with self._write() as conn:
            conn.execute(update(task_table).where(
                tuple_(task_table.c.run_id, task_table.c.number).in_(list(step_runs)),
                task_table.c.node == node, task_table.c.status == "running").values(lease_until=until))

    def expired_leases(self, now: datetime | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Step runs still running whose worker stopped renewing their lease: {run_id, number,
        node, claims}."""
        now = now or utcnow()
        query = (select(task_table.c.run_id, task_table.c.number, task_table.c.node, task_table.c.claims)
                 .join(runs, runs.c.id == task_table.c.run_id)
                 .where(task_table.c.status == "running", task_table.c.lease_until.is_not(None),
                        task_table.c.lease_until < now, or_(runs.c.status == "running", runs.c.status == "paused"))
                 .order_by(task_table.c.lease_until).limit(limit))
        with self._read() as conn:
            return rows(conn.execute(query))


# The hot path's statements, built once (see `_runs._GET_RUN`).
_STATE = select(runs.c.state).where(runs.c.id == bindparam("run_id"))
_STATE_REVISION = select(runs.c.state, runs.c.revision).where(runs.c.id == bindparam("run_id"))
_TASK_CLAIMS = (select(task_table.c.status, task_table.c.node, task_table.c.lease_until, task_table.c.claims)
                .where(task_table.c.run_id == bindparam("run_id"), task_table.c.number == bindparam("number")))
_PARTS = select(run_parts.c.part, run_parts.c.grp, run_parts.c.data).where(run_parts.c.run_id == bindparam("run_id"))
_PARTS_SINCE = _PARTS.where(run_parts.c.revision > bindparam("since"))
_PARTS_DELETE = delete(run_parts).where(run_parts.c.run_id == bindparam("run_id"))
_OUTBOX_INSERT = insert(outbox)
_OUTBOX_DELETE = delete(outbox).where(outbox.c.id.in_(bindparam("ids", expanding=True)))


def _parts(conn: Connection, run_id: str, since: int | None, core: Any) -> list[Part]:
    """A run's parts (all, or those written after revision `since`); none to read when its
    core has no group and no step run or wait in parts."""
    if core is None or (not core.get("groups") and not any(core.get("grouped") or ())):
        return []
    if since is None:
        return [tuple(r) for r in conn.execute(_PARTS, {"run_id": run_id})]  # type: ignore[misc]
    return [tuple(r) for r in conn.execute(_PARTS_SINCE, {"run_id": run_id, "since": since})]  # type: ignore[misc]


@lru_cache(maxsize=4)
def _parts_upsert(dialect: str) -> Any:
    return upsert(dialect, run_parts, ("run_id", "part", "grp", "revision", "data"), ("run_id", "part"))


@lru_cache(maxsize=16)
def _lock_query(dialect: str, claim: bool, known: bool) -> Any:
    query = select(runs.c.status, runs.c.revision)
    if known:  # the state only for a caller whose copy is behind
        state = case((runs.c.revision == bindparam("known"), None), else_=runs.c.state)
        query = query.add_columns(type_coerce(state, runs.c.state.type).label("state"))
    if claim:
        query = query.add_columns(select(task_table.c.node).where(
            task_table.c.run_id == bindparam("run_id"), task_table.c.number == bindparam("claim"),
            task_table.c.status == "running").scalar_subquery().label("claimed_by"))
    if dialect == "postgresql":  # said in the same round trip as the lock
        query = query.add_columns(func.set_config("synchronous_commit", "off", True))
    return query.where(runs.c.id == bindparam("run_id")).with_for_update()


@lru_cache(maxsize=8)
def _claim_query(dialect: str, columns: tuple[str, ...]) -> Any:
    query = (update(task_table)
             .where(task_table.c.run_id == bindparam("k_run_id"), task_table.c.number == bindparam("k_number"),
                    task_table.c.status == "queued", task_table.c.claims < bindparam("max_claims"),
                    exists().where(runs.c.id == bindparam("k_run_id"), runs.c.status == "running"))
             .values({c: bindparam(f"v_{c}") for c in columns} | {"status": "running", "claims": task_table.c.claims + 1}))
    if dialect == "postgresql":
        query = query.returning(func.set_config("synchronous_commit", "off", True))
    return query


def _insert_runs(conn: Connection, rows_: Sequence[Mapping[str, Any]]) -> None:
    for row in rows_:
        if conn.execute(select(runs.c.id).where(runs.c.id == row["id"])).first() is None:
            conn.execute(insert(runs), [dict(row)])
