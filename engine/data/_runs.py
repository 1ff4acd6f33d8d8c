"""Runs, their tasks (step runs) and task logs; `record` is the workers' hot path."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, delete, func, insert, or_, select, tuple_, update

from legion.engine.data._base import StoreBase, check_columns, check_limit, new_id, row_dict, rows
from legion.engine.data._upsert import upsert
from legion.engine.data.connect import ConstraintViolation
from legion.engine.data.models import runs, task_logs
from legion.engine.data.models import tasks as task_table
from legion.engine.data.types import utcnow
from legion.engine.errors import BadInput, Conflict, NotFound

FINISHED_RUN = ("succeeded", "failed", "canceled")
CANCELABLE_RUN = ("pending", "running")
UNFINISHED_TASK = ("queued", "delayed", "running")
TASK_KEY = ("run_id", "number")
_TASK_COLUMNS = frozenset(task_table.c.keys())
_RUN_COLUMNS = frozenset(runs.c.keys())
# A task dict with all of these can create the row; one without can only update it. (An
# upsert cannot serve both: the NOT NULL checks apply to the row it would insert, before the
# conflict turns the insert into an update.)
_INSERTABLE = frozenset(
    c.name for c in task_table.c if not c.nullable and c.default is None and not c.primary_key
)
PURGE_BATCH = 500  # runs per DELETE: bounded IN lists and short write locks


class RunStore(StoreBase):
    # -- runs -------------------------------------------------------------------------------

    def create_run(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Insert a run. `id`, `chain_name` and `chain_version` are required; `status`
        defaults to 'pending', `trigger` to 'manual', `depth` to 0, `created_at` to now."""
        check_columns(runs, row, "run")
        missing = [k for k in ("id", "chain_name", "chain_version") if row.get(k) is None]
        if missing:
            raise BadInput(f"A run needs {', '.join(missing)}.")
        try:
            with self._write() as conn:
                conn.execute(insert(runs), [dict(row)])
                return _one(conn.execute(select(runs).where(runs.c.id == row["id"])).first(), row["id"])
        except ConstraintViolation as exc:
            if exc.kind == "unique":
                raise Conflict(f"A run with id {row['id']!r} exists already.") from exc
            raise

    def update_run(self, run_id: str, **fields: Any) -> dict[str, Any]:
        check_columns(runs, fields, "run")
        fields.pop("id", None)
        with self._write() as conn:
            if fields and not conn.execute(update(runs).where(runs.c.id == run_id).values(**fields)).rowcount:
                raise _no_run(run_id)
            return _one(conn.execute(select(runs).where(runs.c.id == run_id)).first(), run_id)

    def get_run(self, run_id: str) -> dict[str, Any]:
        with self._read() as conn:
            return _one(conn.execute(_GET_RUN, {"run_id": run_id}).first(), run_id)

    def list_runs(self, chain: str | None = None, status: str | None = None, limit: int = 50,
                  after: tuple[datetime, str] | None = None) -> list[dict[str, Any]]:
        """Newest first; with `after` (a run's created_at and id), those listed after that one."""
        check_limit(limit)
        query = select(runs).order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit)
        if after is not None:
            created, run_id = after
            query = query.where(or_(runs.c.created_at < created, and_(runs.c.created_at == created, runs.c.id < run_id)))
        if chain is not None:
            query = query.where(runs.c.chain_name == chain)
        if status is not None:
            query = query.where(runs.c.status == status)
        with self._read() as conn:
            return rows(conn.execute(query))

    def unfinished_runs(self, node_prefix: str) -> list[dict[str, Any]]:
        """Runs whose `node` starts with `node_prefix` (a host) that are not over: still pending
        or running, or ended (succeeded, failed, canceled) with a task still queued, delayed
        or running. (A run canceled from another process ends at once; its process then stops
        its tasks, unless it dies first.) Each is {id, node, chain_name, status}."""
        leftover = select(task_table.c.run_id).where(task_table.c.status.in_(UNFINISHED_TASK))
        query = select(runs.c.id, runs.c.node, runs.c.chain_name, runs.c.status).where(
            runs.c.node.like(node_prefix.replace("%", r"\%") + "%", escape="\\"),
            or_(runs.c.status.in_(CANCELABLE_RUN), runs.c.status.in_(FINISHED_RUN) & runs.c.id.in_(leftover)))
        with self._read() as conn:
            return rows(conn.execute(query))

    def interrupt_run(self, run_id: str, error: Mapping[str, Any], task_error: Mapping[str, Any] | None = None) -> bool:
        """Finish a run whose process is gone, in one transaction: a run still pending or
        running fails with `error`; one that ended keeps its status. Either way its tasks
        still queued, delayed or running are canceled with `task_error` (default `error`),
        each with its own step. False when there was nothing left to finish."""
        now = utcnow()
        task_error = error if task_error is None else task_error
        with self._write() as conn:
            failed = conn.execute(update(runs).where(runs.c.id == run_id, runs.c.status.in_(CANCELABLE_RUN))
                                  .values(status="failed", error=dict(error), ended_at=now)).rowcount
            left = conn.execute(select(task_table.c.id, task_table.c.step).where(
                task_table.c.run_id == run_id, task_table.c.status.in_(UNFINISHED_TASK))).all()
            if left:
                conn.execute(_cancel_task, [{"t_id": t.id, "t_now": now, "t_error": dict(task_error, step=t.step)} for t in left])
            return bool(failed or left)

    def cancel_run(self, run_id: str, error: Mapping[str, Any] | None) -> bool:
        """Mark a run that is still pending or running 'canceled', with `error` and ended_at
        now, in one transaction. False when it had ended already: a cancel never overwrites a
        finished run. NotFound when there is no such run.

        Only the row changes; the process running the run notices the status and stops it
        (canceling its unfinished tasks)."""
        with self._write() as conn:
            done = conn.execute(update(runs).where(runs.c.id == run_id, runs.c.status.in_(CANCELABLE_RUN))
                                .values(status="canceled", error=None if error is None else dict(error),
                                        ended_at=utcnow()))
            if done.rowcount:
                return True
            if conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is None:
                raise _no_run(run_id)
            return False

    # -- the hot path -----------------------------------------------------------------------

    def record(self, run: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None, tasks: list[Mapping[str, Any]],
               logs: list[Mapping[str, Any]] | None = None) -> None:
        """In one transaction: upsert `tasks` keyed by (run_id, number), update `run` (keyed
        by its `id`; or each of a list of runs) and add `logs` (each {run_id, number, at,
        level, message, data}, for a task named by its run and number); either all of it is
        written or none.

        Only the keys present in a task dict are written to an existing row. A dict carrying
        run_id, number, step and function creates the row if it is missing (status defaults
        to 'queued', attempt to 1, queued_at to now); one without step or function can only
        update, and NotFound is raised when its row does not exist (as when a run does not).
        """
        run_rows = [] if run is None else [run] if isinstance(run, Mapping) else list(run)
        with missing_run():
            with self._write() as conn:
                write_rows(conn, run_rows, tasks, logs)

        # -- tasks ------------------------------------------------------------------------------

    def get_task(self, task_id: int) -> dict[str, Any]:
        with self._read() as conn:
            row = conn.execute(select(task_table).where(task_table.c.id == task_id)).first()
        if row is None:
            raise NotFound(f"There is no task with id {task_id}.")
        return dict(row._mapping)

    def get_task_by_number(self, run_id: str, number: int) -> dict[str, Any]:
        query = select(task_table).where(task_table.c.run_id == run_id, task_table.c.number == number)
        with self._read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"Run {run_id} has no step run number {number}.")
        return dict(row._mapping)

    def list_tasks(self, run_id: str | None = None, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first."""
        check_limit(limit)
        query = select(task_table).order_by(task_table.c.id.desc()).limit(limit)
        if run_id is not None:
            query = query.where(task_table.c.run_id == run_id)
        if status is not None:
            query = query.where(task_table.c.status == status)
        with self._read() as conn:
            return rows(conn.execute(query))

    def run_tasks(self, run_id: str) -> list[dict[str, Any]]:
        """A run's step runs ordered by started_at then number; those not started come last
        (NULLs sort differently per backend, hence the explicit CASE)."""
        query = (
            select(task_table)
            .where(task_table.c.run_id == run_id)
            .order_by(
                case((task_table.c.started_at.is_(None), 1), else_=0), task_table.c.started_at, task_table.c.number
            )
        )
        with self._read() as conn:
            return rows(conn.execute(query))

    # -- task logs --------------------------------------------------------------------------

    def add_task_log(self, task_id: int, level: str, message: str, data: Any = None) -> dict[str, Any]:
        values = {"task_id": task_id, "level": level, "message": message, "data": data, "at": utcnow()}
        try:
            with self._write() as conn:
                log_id = new_id(conn.execute(insert(task_logs).values(**values)))
        except ConstraintViolation as exc:
            if exc.kind == "foreign_key":
                raise NotFound(f"Cannot log to task {task_id}: there is no such task.") from exc
            raise
        return {"id": log_id, **values}

    def task_logs(self, task_id: int) -> list[dict[str, Any]]:
        query = select(task_logs).where(task_logs.c.task_id == task_id).order_by(task_logs.c.id)
        with self._read() as conn:
            return rows(conn.execute(query))

    # -- retention --------------------------------------------------------------------------

    def purge_tasks(self, older_than: datetime) -> int:
        """Delete the runs that finished (succeeded, failed, canceled) before `older_than`,
        with their tasks and task logs. Runs that are pending, running or paused are never
        touched, however old. Returns the number of tasks deleted."""
        return self._delete_runs(runs.c.ended_at.is_not(None), runs.c.ended_at < older_than)[1]

    def delete_agent_runs(self, agent: str) -> int:
        """Delete the finished runs that were for `agent` (what it was told and said is in
        them), with their tasks and task logs: the number of runs deleted."""
        return self._delete_runs(runs.c.agent == agent)[0]

    def _delete_runs(self, *where: Any) -> tuple[int, int]:
        """Delete the finished runs that match `where`, with their tasks and logs: (runs, tasks)."""
        finished = select(runs.c.id).where(runs.c.status.in_(FINISHED_RUN), *where).order_by(runs.c.id).limit(PURGE_BATCH)
        deleted_runs = deleted_tasks = 0
        while True:
            # One batch per transaction, so a large purge never holds the write lock for long.
            with self._write() as conn:
                run_ids = list(conn.execute(finished).scalars())
                if not run_ids:
                    return deleted_runs, deleted_tasks
                task_ids = select(task_table.c.id).where(task_table.c.run_id.in_(run_ids))
                conn.execute(delete(task_logs).where(task_logs.c.task_id.in_(task_ids)))
                deleted_tasks += conn.execute(delete(task_table).where(task_table.c.run_id.in_(run_ids))).rowcount
                deleted_runs += conn.execute(delete(runs).where(runs.c.id.in_(run_ids))).rowcount

    def count_tasks(self, run_id: str | None = None) -> int:
        query = select(func.count()).select_from(task_table)
        if run_id is not None:
            query = query.where(task_table.c.run_id == run_id)
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def runs_with_id_prefix(self, prefix: str, limit: int = 10) -> list[dict[str, Any]]:
        """Up to `limit` runs whose id starts with `prefix`, each {id, chain_name, status,
        created_at}, oldest first. Case-sensitive on every backend (SQLite's LIKE is not, so
        there it is GLOB, which also uses the primary key's index)."""
        check_limit(limit)
        if self.dialect == "sqlite":
            matches = runs.c.id.op("GLOB")(re.sub(r"([*?\[])", r"[\1]", prefix) + "*")
        else:
            matches = runs.c.id.startswith(prefix, autoescape=True)
        query = (select(runs.c.id, runs.c.chain_name, runs.c.status, runs.c.created_at)
                 .where(matches).order_by(runs.c.created_at, runs.c.id).limit(limit))
        with self._read() as conn:
            return rows(conn.execute(query))


# One leftover task of an interrupted run; conditional, so a task that ended meanwhile keeps its
# outcome. (Spelled with OR: executemany cannot expand an IN list.)
_cancel_task = (
    update(task_table)
    .where(task_table.c.id == bindparam("t_id"), or_(*(task_table.c.status == s for s in UNFINISHED_TASK)))
    .values(status="canceled", finished_at=bindparam("t_now"), error=bindparam("t_error"))
)


# The hot path's statements are built once: building one costs several times what running it
# does (SQLAlchemy's expression construction and cache key).
_GET_RUN = select(runs).where(runs.c.id == bindparam("run_id"))


@lru_cache(maxsize=128)
def _run_update(columns: tuple[str, ...]) -> Any:
    return update(runs).where(runs.c.id == bindparam("k_id")).values({c: bindparam(f"v_{c}") for c in columns})


@lru_cache(maxsize=128)
def _task_update(columns: tuple[str, ...]) -> Any:
    sets: dict[str, Any] = {c: bindparam(f"v_{c}") for c in columns if c not in TASK_KEY}
    return (
        update(task_table)
        .where(task_table.c.run_id == bindparam("k_run_id"), task_table.c.number == bindparam("k_number"))
        .values(sets)
    )


def _update_tasks(conn: Connection, columns: tuple[str, ...], group: list[Mapping[str, Any]]) -> None:
    missing = 0
    if set(columns) - set(TASK_KEY):
        params = [{f"v_{c}": t[c] for c in columns} | {"k_run_id": t["run_id"], "k_number": t["number"]} for t in group]
        result = conn.execute(_task_update(columns), params)
        # A single row is a plain execute, whose rowcount every driver reports; for several,
        # PyMySQL's executemany does not promise one, so count instead.
        if len(group) == 1 or conn.dialect.supports_sane_multi_rowcount:
            missing = len(group) - result.rowcount
        else:
            missing = _count_missing(conn, group)
    else:
        missing = _count_missing(conn, group)
    if missing > 0:
        raise NotFound(
            f"Cannot update {missing} task(s) that do not exist; a new task needs "
            f"{', '.join(sorted(_INSERTABLE))}: {[dict(t) for t in group]!r}"
        )


def _count_missing(conn: Connection, group: list[Mapping[str, Any]]) -> int:
    keys = {(t["run_id"], t["number"]) for t in group}
    query = select(func.count()).select_from(task_table).where(
        tuple_(task_table.c.run_id, task_table.c.number).in_(list(keys))
    )
    return len(keys) - int(conn.execute(query).scalar_one())


def write_rows(conn: Connection, run_rows: Sequence[Mapping[str, Any]], tasks: Sequence[Mapping[str, Any]],
               logs: Sequence[Mapping[str, Any]] | None = None) -> None:
    """Task upserts, run updates and log entries, on `conn` (see `RunStore.record`)."""
    # executemany needs one column set per statement; consecutive tasks with the same
    # keys share one, and the given order is kept (ids follow queueing order).
    groups: list[tuple[tuple[str, ...], list[Mapping[str, Any]]]] = []
    for task in tasks:
        columns = tuple(task)
        if not _TASK_COLUMNS.issuperset(columns):
            check_columns(task_table, task, "task")
        if "run_id" not in task or "number" not in task:
            raise BadInput(f"A task needs run_id and number to be recorded: {dict(task)!r}")
        if groups and groups[-1][0] == columns:
            groups[-1][1].append(task)
        else:
            groups.append((columns, [task]))
    for run in run_rows:
        if not _RUN_COLUMNS.issuperset(run):
            check_columns(runs, run, "run")
    dialect = conn.dialect.name
    for columns, group in groups:
        if _INSERTABLE.issubset(columns):
            conn.execute(upsert(dialect, task_table, columns, TASK_KEY), group)
        else:
            _update_tasks(conn, columns, group)
    for run in run_rows:
        columns = tuple(k for k in run if k != "id")
        if columns and not conn.execute(_run_update(columns), {"k_id": run["id"]} | {f"v_{c}": run[c] for c in columns}).rowcount:
            raise _no_run(run["id"])
    if logs:
        _insert_logs(conn, logs)


@contextmanager
def missing_run() -> Iterator[None]:
    """A task row whose run does not exist: NotFound, saying so (around a write transaction)."""
    try:
        yield
    except ConstraintViolation as exc:
        if exc.kind == "foreign_key":
            raise NotFound(f"Cannot record the task(s): their run does not exist. ({exc.reason})") from exc
        raise


def _one(row: Any, run_id: str) -> dict[str, Any]:
    found = row_dict(row)
    if found is None:
        raise _no_run(run_id)
    return found


def _no_run(run_id: str) -> NotFound:
    return NotFound(f"There is no run {run_id!r}; `legion run list` shows the recent ones.")


def _insert_logs(conn: Connection, logs: Sequence[Mapping[str, Any]]) -> None:
    """Log entries keyed by (run_id, number), resolved to task ids in one query per run."""
    wanted: dict[str, set[int]] = {}
    for entry in logs:
        wanted.setdefault(entry["run_id"], set()).add(entry["number"])
    ids: dict[tuple[str, int], int] = {}
    for run_id, numbers in wanted.items():
        query = select(task_table.c.id, task_table.c.number).where(
            task_table.c.run_id == run_id, task_table.c.number.in_(sorted(numbers)))
        ids.update({(run_id, r.number): r.id for r in conn.execute(query)})
    values = []
    for entry in logs:
        task_id = ids.get((entry["run_id"], entry["number"]))
        if task_id is None:
            raise NotFound(f"Cannot log to step run {entry['number']} of run {entry['run_id']}: it was not recorded.")
        values.append({"task_id": task_id, "at": entry.get("at") or utcnow(), "level": entry["level"],
                       "message": entry["message"], "data": entry.get("data")})
    conn.execute(insert(task_logs), values)
