"""Nodes (the processes running Legion) and schedules (`on.schedule` entries)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, text, update

from legion.engine.data._base import StoreBase, rows
from legion.engine.data._upsert import upsert
from legion.engine.data.models import leases, nodes, schedules
from legion.engine.data.types import UTCDateTime, utcnow
from legion.engine.errors import BadInput, NotFound

# Changing any of these makes a schedule a new one (its next fire time is recomputed);
# changing only its input or active flag keeps its place in time.
_TIMING = ("kind", "expression", "tz")


class OpsStore(StoreBase):
    # -- nodes ------------------------------------------------------------------------------

    def upsert_node(self, name: str, *, hostname: str | None = None, pid: int | None = None,
                    version: str | None = None, status: str = "up", started_at: datetime | None = None,
                    info: dict[str, Any] | None = None) -> dict[str, Any]:
        """Register a node (or re-register it after a restart), heartbeat now."""
        now = utcnow()
        row = {
            "name": name, "hostname": hostname, "pid": pid, "version": version, "status": status,
            "started_at": started_at or now, "heartbeat_at": now, "info": info,
        }
        with self._write() as conn:
            conn.execute(upsert(self._engine.dialect.name, nodes, tuple(row), ("name",)), [row])
            return dict(conn.execute(select(nodes).where(nodes.c.name == name)).mappings().one())

    def heartbeat(self, name: str, *, status: str | None = None, at: datetime | None = None,
                  info: dict[str, Any] | None = None) -> None:
        values: dict[str, Any] = {"heartbeat_at": at or utcnow()}
        if status is not None:
            values["status"] = status
        if info is not None:
            values["info"] = info
        with self._write() as conn:
            if not conn.execute(update(nodes).where(nodes.c.name == name).values(values)).rowcount:
                raise NotFound(f"There is no node {name!r}; register it with upsert_node first.")

    def list_nodes(self) -> list[dict[str, Any]]:
        with self._read() as conn:
            return rows(conn.execute(select(nodes).order_by(nodes.c.name)))

    # -- leases -----------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Take the lease `name` for `holder` for `ttl` seconds, or renew it if `holder` has it;
        False while another holder's lease has not expired. One statement takes or renews it
        (an insert whose conflict updates the row only for its holder or once it expired), so
        the database's row lock decides between racers, without a deadlock; a read in the
        same transaction says who holds it."""
        now = utcnow()
        values = {"name": name, "holder": holder, "until": now + timedelta(seconds=ttl), "now": now}
        with self._write() as conn:
            conn.execute(_take_lease(self._engine.dialect.name), values)
            held = conn.execute(select(leases.c.holder).where(leases.c.name == name)).scalar_one()
        return bool(held == holder)

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up (if `holder` has it), so another process may take it at once."""
        with self._write() as conn:
            conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))

    # -- schedules --------------------------------------------------------------------------

    def upsert_schedules(self, chain_name: str, entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Make `chain_name`'s schedules exactly `entries` (see `set_schedules`)."""
        with self._write() as conn:
            return set_schedules(conn, chain_name, entries)

    def due_schedules(self, now: datetime) -> list[dict[str, Any]]:
        """Active schedules whose next_fire_at is at or before `now`, earliest first."""
        query = (
            select(schedules)
            .where(schedules.c.active.is_(True), schedules.c.next_fire_at <= now)
            .order_by(schedules.c.next_fire_at, schedules.c.id)
        )
        with self._read() as conn:
            return rows(conn.execute(query))

    def mark_fired(self, schedule_id: int, fired_at: datetime, next_fire_at: datetime, run_id: str | None,
                   *, expected_next_fire_at: datetime | None = None) -> bool:
        """Record a firing. With `expected_next_fire_at` (the value due_schedules returned) the
        update happens only if no other scheduler fired the slot first; returns whether this
        call recorded it, so that exactly one of several schedulers starts the run."""
        query = update(schedules).where(schedules.c.id == schedule_id)
        if expected_next_fire_at is not None:
            query = query.where(schedules.c.next_fire_at == expected_next_fire_at)
        values = {"last_fire_at": fired_at, "next_fire_at": next_fire_at, "last_run_id": run_id}
        with self._write() as conn:
            if conn.execute(query.values(values)).rowcount:
                return True
            if conn.execute(select(schedules.c.id).where(schedules.c.id == schedule_id)).first() is None:
                raise NotFound(f"There is no schedule {schedule_id}.")
            return False

    def list_schedules(self, chain_name: str | None = None) -> list[dict[str, Any]]:
        query = select(schedules).order_by(schedules.c.chain_name, schedules.c.entry_index)
        if chain_name is not None:
            query = query.where(schedules.c.chain_name == chain_name)
        with self._read() as conn:
            return rows(conn.execute(query))


def set_schedules(conn: Connection, chain_name: str, entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Make `chain_name`'s schedules exactly `entries` (each {kind, expression, tz, input,
    active, next_fire_at}, optionally entry_index, else its position). An entry whose
    kind, expression and tz did not change keeps its next_fire_at and last_fire_at, so
    re-applying a chain neither skips nor repeats a slot."""
    wanted: dict[int, dict[str, Any]] = {}
    for position, entry in enumerate(entries):
        index = int(entry.get("entry_index", position))
        missing = [k for k in ("kind", "expression", "next_fire_at") if entry.get(k) is None]
        if missing:
            raise BadInput(f"Schedule {index} of chain {chain_name!r} lacks {', '.join(missing)}.")
        if entry["kind"] not in ("cron", "every"):
            raise BadInput(f"Schedule {index} of chain {chain_name!r}: kind must be 'cron' or 'every'.")
        wanted[index] = {
            "kind": entry["kind"], "expression": str(entry["expression"]), "tz": entry.get("tz"),
            "input": entry.get("input"), "active": bool(entry.get("active", True)),
            "next_fire_at": entry["next_fire_at"],
        }
    current = {
        r["entry_index"]: r
        for r in conn.execute(select(schedules).where(schedules.c.chain_name == chain_name)).mappings()
    }
    gone = [r["id"] for i, r in current.items() if i not in wanted]
    if gone:
        conn.execute(delete(schedules).where(schedules.c.id.in_(gone)))
    for index, values in wanted.items():
        old = current.get(index)
        if old is None:
            conn.execute(insert(schedules).values(chain_name=chain_name, entry_index=index, **values))
        elif all(old[k] == values[k] for k in _TIMING):
            keep = {k: values[k] for k in ("input", "active")}
            conn.execute(update(schedules).where(schedules.c.id == old["id"]).values(keep))
        else:
            conn.execute(
                update(schedules).where(schedules.c.id == old["id"])
                .values(**values, last_fire_at=None, last_run_id=None)
            )
    query = select(schedules).where(schedules.c.chain_name == chain_name).order_by(schedules.c.entry_index)
    return rows(conn.execute(query))


@lru_cache(maxsize=4)
def _take_lease(dialect: str) -> Any:
    """The statement that takes or renews a lease (see `OpsStore.acquire_lease`)."""
    if dialect in ("mysql", "mariadb"):
        # MySQL assigns left to right, each seeing the one before: `expires_at` changes only
        # when the lease may be taken, and then so does `holder`.
        sql = ("INSERT INTO leases (name, holder, expires_at) VALUES (:name, :holder, :until) "
               "ON DUPLICATE KEY UPDATE "
               "expires_at = IF(holder = VALUES(holder) OR expires_at < :now, VALUES(expires_at), expires_at), "
               "holder = IF(expires_at = VALUES(expires_at), VALUES(holder), holder)")
    else:  # PostgreSQL and SQLite
        sql = ("INSERT INTO leases (name, holder, expires_at) VALUES (:name, :holder, :until) "
               "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
               "WHERE leases.holder = excluded.holder OR leases.expires_at < :now")
    return text(sql).bindparams(bindparam("until", type_=UTCDateTime()), bindparam("now", type_=UTCDateTime()))
