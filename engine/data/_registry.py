"""The installed extensions, their runners and functions, as last seen by a node.

The database copy lets the API, the CLI and other hosts see what is installed without
importing the extensions. Extensions that disappear are kept, inactive; runners and
functions that disappear from an extension still present are deleted (they are only ever
looked up through their extension).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from legion.engine.data._base import StoreBase, new_id
from legion.engine.data.connect import ConstraintViolation
from legion.engine.data.models import extensions as extension_table
from legion.engine.data.models import functions, runners
from legion.engine.data.types import utcnow
from legion.engine.errors import BadInput

# A sync that lost a race on a unique name is retried; more losses in a row than this mean a
# real conflict (two extensions declaring one function ref), which is then reported.
SYNC_ATTEMPTS = 5


class RegistryStore(StoreBase):
    def sync_registry(self, extensions: Sequence[Mapping[str, Any]]) -> None:
        """Upsert the given extensions (each {name, description, version, runners: [{name,
        module, queue, description, functions: [{name, ref, args_schema, description,
        actor}]}]}) and mark the extensions not given inactive."""
        for attempt in range(1, SYNC_ATTEMPTS + 1):
            try:
                self._sync_registry(extensions)
                return
            except ConstraintViolation as exc:
                # Processes started at once on a fresh database each find an extension
                # missing and insert it; all but the first fail on its unique name. That
                # first one has committed by then, so the next attempt updates its rows.
                if exc.kind != "unique" or attempt == SYNC_ATTEMPTS:
                    raise

    def _sync_registry(self, extensions: Sequence[Mapping[str, Any]]) -> None:
        now = utcnow()
        with self._write() as conn:
            existing = {r.name: r.id for r in conn.execute(select(extension_table.c.name, extension_table.c.id))}
            for ext in extensions:
                name = _name(ext, "extension")
                values = {
                    "description": ext.get("description"), "version": _str(ext.get("version")),
                    "active": True, "updated_at": now,
                }
                if name in existing:
                    ext_id = existing.pop(name)
                    conn.execute(update(extension_table).where(extension_table.c.id == ext_id).values(values))
                else:
                    ext_id = new_id(conn.execute(insert(extension_table).values(name=name, created_at=now, **values)))
                _sync_runners(conn, ext_id, name, ext.get("runners") or [])
            if existing:
                conn.execute(
                    update(extension_table)
                    .where(extension_table.c.id.in_(list(existing.values())), extension_table.c.active.is_(True))
                    .values(active=False, updated_at=now)
                )

    def list_extensions(self, *, include_inactive: bool = False) -> list[dict[str, Any]]:
        """Extensions by name, each with its runners and their functions nested as in
        `sync_registry`, plus id, active, created_at and updated_at."""
        query = select(extension_table).order_by(extension_table.c.name)
        if not include_inactive:
            query = query.where(extension_table.c.active.is_(True))
        with self._read() as conn:
            exts = [dict(r._mapping) for r in conn.execute(query)]
            by_ext: dict[int, list[dict[str, Any]]] = {}
            by_runner: dict[int, list[dict[str, Any]]] = {}
            for fn in conn.execute(select(functions).order_by(functions.c.name)).mappings():
                by_runner.setdefault(fn["runner_id"], []).append(dict(fn))
            for runner in conn.execute(select(runners).order_by(runners.c.name)).mappings():
                by_ext.setdefault(runner["extension_id"], []).append(
                    dict(runner) | {"functions": by_runner.get(runner["id"], [])}
                )
        return [ext | {"runners": by_ext.get(ext["id"], [])} for ext in exts]


def _sync_runners(conn: Connection, ext_id: int, ext_name: str, items: Sequence[Mapping[str, Any]]) -> None:
    existing = {
        r.name: r.id for r in conn.execute(select(runners.c.name, runners.c.id).where(runners.c.extension_id == ext_id))
    }
    for runner in items:
        name = _name(runner, f"runner of extension {ext_name!r}")
        values = {
            "module": runner.get("module") or "", "queue": runner.get("queue") or f"lex.{ext_name}.{name}",
            "description": runner.get("description"),
        }
        if name in existing:
            runner_id = existing.pop(name)
            conn.execute(update(runners).where(runners.c.id == runner_id).values(values))
        else:
            runner_id = new_id(conn.execute(insert(runners).values(extension_id=ext_id, name=name, **values)))
        _sync_functions(conn, runner_id, f"{ext_name}.{name}", runner.get("functions") or [])
    if existing:
        conn.execute(delete(runners).where(runners.c.id.in_(list(existing.values()))))


def _sync_functions(conn: Connection, runner_id: int, prefix: str, items: Sequence[Mapping[str, Any]]) -> None:
    existing = {
        r.name: r.id
        for r in conn.execute(select(functions.c.name, functions.c.id).where(functions.c.runner_id == runner_id))
    }
    given = {_name(fn, f"function of runner {prefix!r}"): fn for fn in items}
    # Delete first: a function renamed within the runner keeps its ref free for the new row.
    gone = [fid for name, fid in existing.items() if name not in given]
    if gone:
        conn.execute(delete(functions).where(functions.c.id.in_(gone)))
    for name, fn in given.items():
        values = {
            "ref": fn.get("ref") or f"{prefix}.{name}", "args_schema": fn.get("args_schema"),
            "description": fn.get("description"), "actor": fn.get("actor"),
        }
        if name in existing:
            conn.execute(update(functions).where(functions.c.id == existing[name]).values(values))
        else:
            conn.execute(insert(functions).values(runner_id=runner_id, name=name, **values))


def _name(item: Mapping[str, Any], what: str) -> str:
    name = item.get("name") if isinstance(item, Mapping) else None
    if not name:
        raise BadInput(f"Cannot record a {what} without a name: {item!r}.")
    return str(name)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)

