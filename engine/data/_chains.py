"""Chains and their versions: `legion chain apply / plan / list / show / history / delete`.

A chain row is the name; each content change adds a chain_versions row with the next version
number, and `chains.current_version` points at the one new runs use. Versions are never
deleted or reused (runs in flight and finished runs refer to them), so deleting a chain only
marks it inactive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from legion.engine.data._base import StoreBase, new_id
from legion.engine.data._ops import set_schedules
from legion.engine.data.connect import ConstraintViolation
from legion.engine.data.models import chain_versions, chains, relationships, runs
from legion.engine.data.types import utcnow
from legion.engine.errors import BadInput, Conflict, NotFound

APPLY_KEYS = ("name", "source", "content_hash", "definition", "relationships")
# An apply that lost a race to create a chain is redone this many times in all.
APPLY_ATTEMPTS = 3
# Keys a compiled relationship may carry that the store fills in itself.
_OWN_KEYS = frozenset({"chain", "chain_name", "version", "chain_version_id", "id"})
_REL_COLUMNS = frozenset(relationships.c.keys()) - _OWN_KEYS
_REL_DEFAULTS: dict[str, Any] = {c: None for c in _REL_COLUMNS} | {
    "delay": 0.0, "priority": 0, "allow_new_chains": False,
}


class ChainStore(StoreBase):
    def apply_chains(self, items: Sequence[Mapping[str, Any]], *, prune: bool = False) -> list[dict[str, Any]]:
        """Store each chain whose content changed as a new version, in ONE transaction: when
        any item is bad, nothing is written. An item may carry `schedules` (the rows of
        `set_schedules`); they are replaced in the same transaction. Returns [{name, action, version}] with action
        'created', 'updated', 'unchanged' or 'pruned' (with prune=True, active chains missing
        from `items` are deactivated)."""
        for attempt in range(1, APPLY_ATTEMPTS + 1):
            try:
                with self._write() as conn:
                    return _apply(conn, items, prune=prune, write=True)
            except ConstraintViolation as exc:
                if exc.kind not in ("unique", "foreign_key"):
                    raise
                # Another apply created one of these chains since this one looked (applies
                # started together on a fresh database). It has committed, so applying again
                # sees its version: the same content is then 'unchanged'.
                if attempt == APPLY_ATTEMPTS:
                    raise Conflict(
                        "Another apply changed the same chains at the same time; nothing was written. "
                        "Run the apply again."
                    ) from exc
        raise AssertionError("unreachable")

    def plan_diff(self, items: Sequence[Mapping[str, Any]], *, prune: bool = False) -> list[dict[str, Any]]:
        """What `apply_chains(items, prune=prune)` would do, without writing anything."""
        with self._read() as conn:
            return _apply(conn, items, prune=prune, write=False)

    def get_chain(self, name: str) -> dict[str, Any]:
        """The chain with its current version's source, definition and relationships."""
        with self._read() as conn:
            chain = _current(name, _chain_row(conn, name))
            return _version_dict(conn, chain, chain["current_version"])

    def current_version(self, name: str) -> int:
        """The number of the chain's current version: one small read, for a caller that
        keeps the versions it compiled."""
        with self._read() as conn:
            row = conn.execute(_CURRENT_VERSION, {"name": name}).mappings().first()
        return int(_current(name, row)["current_version"])

    def get_chain_version(self, name: str, version: int) -> dict[str, Any]:
        """One version of a chain, also of a deleted chain (its runs still refer to it)."""
        with self._read() as conn:
            chain = _chain_row(conn, name)
            if chain is None:
                raise NotFound(f"There is no chain {name!r}; `legion chain list` shows the applied chains.")
            return _version_dict(conn, chain, version)

    def list_chains(self) -> list[dict[str, Any]]:
        """Active chains by name: name, current_version, created_at, updated_at, runs."""
        counts = select(runs.c.chain_name, func.count().label("n")).group_by(runs.c.chain_name).subquery()
        query = (
            select(
                chains.c.name, chains.c.current_version, chains.c.created_at, chains.c.updated_at,
                func.coalesce(counts.c.n, 0).label("runs"),
            )
            .select_from(chains.outerjoin(counts, counts.c.chain_name == chains.c.name))
            .where(chains.c.active.is_(True))
            .order_by(chains.c.name)
        )
        with self._read() as conn:
            return [dict(r._mapping) | {"runs": int(r.runs)} for r in conn.execute(query)]

    def chain_history(self, name: str) -> list[dict[str, Any]]:
        """Every version, oldest first: version, content_hash, path, created_at, current."""
        with self._read() as conn:
            chain = _chain_row(conn, name)
            if chain is None:
                raise NotFound(f"There is no chain {name!r}; `legion chain list` shows the applied chains.")
            query = (
                select(chain_versions.c.version, chain_versions.c.content_hash, chain_versions.c.path,
                       chain_versions.c.created_at)
                .where(chain_versions.c.chain_id == chain["id"])
                .order_by(chain_versions.c.version)
            )
            current = chain["current_version"] if chain["active"] else None
            return [dict(r._mapping) | {"current": r.version == current} for r in conn.execute(query)]

    def delete_chain(self, name: str) -> dict[str, Any]:
        """Deactivate a chain (no new runs, gone from list_chains); its versions, and the runs
        that used them, stay. Applying it again creates the next version."""
        with self._write() as conn:
            chain = _chain_row(conn, name, lock=True)
            if chain is None or not chain["active"]:
                raise NotFound(f"There is no chain {name!r} to delete; `legion chain list` shows the applied chains.")
            conn.execute(update(chains).where(chains.c.id == chain["id"]).values(active=False, updated_at=utcnow()))
            set_schedules(conn, name, [])
            return {"name": name, "action": "deleted", "version": chain["current_version"]}

    def event_chains(self) -> dict[str, list[str]]:
        """{function ref: [chain names]}: the active chains whose current version starts a run
        when that function succeeds (`on.events`), read in one query from their entry
        relationships. Names are in name order; a chain that names a function twice is
        listed twice, as it has two entries."""
        # Written as IN (current versions) so that the plan starts from the few chains and
        # reaches their relationships through the chain_version_id index, rather than
        # scanning every version's relationships.
        current = (
            select(chain_versions.c.id)
            .join(chains, (chains.c.id == chain_versions.c.chain_id) & (chain_versions.c.version == chains.c.current_version))
            .where(chains.c.active.is_(True))
        )
        query = (
            select(relationships.c.trigger_function, relationships.c.chain_name)
            .where(relationships.c.kind == "entry", relationships.c.trigger_function.is_not(None),
                   relationships.c.chain_version_id.in_(current))
            .order_by(relationships.c.chain_name, relationships.c.id)
        )
        mapping: dict[str, list[str]] = {}
        with self._read() as conn:
            for ref, name in conn.execute(query):
                mapping.setdefault(ref, []).append(name)
        return mapping

    def event_triggers(self, function_ref: str) -> list[dict[str, Any]]:
        """Entry relationships (`on.events`) of active chains' current versions that start a
        run when `function_ref` succeeds."""
        query = (
            select(relationships)
            .join(chain_versions, chain_versions.c.id == relationships.c.chain_version_id)
            .join(chains, chains.c.id == chain_versions.c.chain_id)
            .where(
                relationships.c.kind == "entry",
                relationships.c.trigger_function == function_ref,
                chains.c.active.is_(True),
                chain_versions.c.version == chains.c.current_version,
            )
            .order_by(relationships.c.chain_name, relationships.c.id)
        )
        with self._read() as conn:
            return [_relationship_out(r._mapping) for r in conn.execute(query)]


def _apply(conn: Connection, items: Sequence[Mapping[str, Any]], *, prune: bool, write: bool) -> list[dict[str, Any]]:
    now = utcnow()
    seen: set[str] = set()
    results: list[dict[str, Any]] = []
    # Items are checked as they are written, not all up front: an error anywhere must (and,
    # being in one transaction, does) undo the items before it.
    for index, item in enumerate(items):
        _require(item, index, APPLY_KEYS if write else ("name", "content_hash"))
        name = item["name"]
        if name in seen:
            raise Conflict(f"Chain {name!r} appears twice in this apply; each chain may be applied once per batch.")
        seen.add(name)
        chain = _chain_row(conn, name, lock=write)
        if write and item.get("schedules") is not None:
            set_schedules(conn, name, item["schedules"])  # in the same transaction as the chain
        action = "created"
        if chain is not None and chain["active"] and chain["current_version"] is not None:
            if _current_hash(conn, chain) == item["content_hash"]:
                results.append({"name": name, "action": "unchanged", "version": chain["current_version"]})
                continue
            action = "updated"
        version = _last_version(conn, chain["id"]) + 1 if chain is not None else 1
        if write:
            _write_version(conn, chain, item, version, now)
        results.append({"name": name, "action": action, "version": version})
    if prune:
        stale = select(chains).where(chains.c.active.is_(True)).order_by(chains.c.name)
        for gone in conn.execute(stale).mappings().all():
            if gone["name"] in seen:
                continue
            if write:
                conn.execute(update(chains).where(chains.c.id == gone["id"]).values(active=False, updated_at=now))
                set_schedules(conn, gone["name"], [])
            results.append({"name": gone["name"], "action": "pruned", "version": gone["current_version"]})
    return results


def _write_version(conn: Connection, chain: Mapping[str, Any] | None, item: Mapping[str, Any], version: int,
                   now: datetime) -> None:
    name = item["name"]
    if chain is None:
        new_chain = insert(chains).values(name=name, active=True, current_version=None, created_at=now, updated_at=now)
        chain_id = new_id(conn.execute(new_chain))
    else:
        chain_id = chain["id"]
    new_version = insert(chain_versions).values(
        chain_id=chain_id, version=version, content_hash=item["content_hash"], source=item["source"],
        definition=item["definition"], path=_path(item.get("path")), created_at=now,
    )
    version_id = new_id(conn.execute(new_version))
    records = [_relationship_in(rel, name, version, version_id) for rel in item["relationships"]]
    if records:
        conn.execute(insert(relationships), records)
    conn.execute(
        update(chains).where(chains.c.id == chain_id).values(current_version=version, active=True, updated_at=now)
    )


def _require(item: Mapping[str, Any], index: int, keys: Sequence[str]) -> None:
    if not isinstance(item, Mapping):
        raise BadInput(f"Item {index} of the apply is not a mapping: {item!r}.")
    missing = [k for k in keys if item.get(k) is None]
    if missing:
        label = item.get("name") or f"number {index}"
        raise BadInput(f"Chain {label!r} cannot be applied: it lacks {', '.join(missing)}. Nothing was applied.")


def _path(path: Any) -> str | None:
    return None if path is None else str(path)


def _relationship_in(rel: Mapping[str, Any], chain: str, version: int, version_id: int) -> dict[str, Any]:
    record = {k: v for k, v in rel.items() if k not in _OWN_KEYS}
    if "join" in record:
        join = record.pop("join")
        record["join_"] = None if join is None else str(join)
    unknown = set(record) - _REL_COLUMNS
    if unknown:
        raise BadInput(
            f"Chain {chain!r}: a relationship has unknown field(s) {', '.join(sorted(unknown))}; "
            f"known fields are {', '.join(sorted(_REL_COLUMNS - {'join_'} | {'join'}))}."
        )
    if record.get("kind") not in ("edge", "entry"):
        raise BadInput(f"Chain {chain!r}: a relationship's kind must be 'edge' or 'entry', not {record.get('kind')!r}.")
    # executemany wants every row to have the same keys.
    return _REL_DEFAULTS | record | {"chain_name": chain, "version": version, "chain_version_id": version_id}


def _relationship_out(row: Mapping[Any, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("id", "chain_version_id", "join_")}
    out["join"] = row["join_"]
    return out


_CURRENT_VERSION = select(chains.c.name, chains.c.active, chains.c.current_version).where(chains.c.name == bindparam("name"))


def _current(name: str, chain: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """`chain` (its row), when it is applied and not deleted; else NotFound, saying so."""
    if chain is None or not chain["active"] or chain["current_version"] is None:
        raise NotFound(
            f"There is no chain {name!r}"
            + (" (it was deleted; apply it again to restore it)" if chain else "")
            + "; `legion chain list` shows the applied chains."
        )
    return chain


def _chain_row(conn: Connection, name: str, *, lock: bool = False) -> dict[str, Any] | None:
    query = select(chains).where(chains.c.name == name)
    if lock:
        # Serializes concurrent applies of the same chain on PostgreSQL/MySQL (SQLite's BEGIN
        # IMMEDIATE already did); a concurrent first apply of a new name hits the unique key.
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    return None if row is None else dict(row)


def _current_hash(conn: Connection, chain: Mapping[str, Any]) -> str | None:
    query = select(chain_versions.c.content_hash).where(
        chain_versions.c.chain_id == chain["id"], chain_versions.c.version == chain["current_version"]
    )
    return conn.execute(query).scalar()


def _last_version(conn: Connection, chain_id: int) -> int:
    query = select(func.max(chain_versions.c.version)).where(chain_versions.c.chain_id == chain_id)
    return int(conn.execute(query).scalar() or 0)


def _version_dict(conn: Connection, chain: Mapping[str, Any], version: int) -> dict[str, Any]:
    row = conn.execute(
        select(chain_versions).where(chain_versions.c.chain_id == chain["id"], chain_versions.c.version == version)
    ).mappings().first()
    if row is None:
        raise NotFound(
            f"Chain {chain['name']!r} has no version {version}; `legion chain history {chain['name']}` lists them."
        )
    rels = conn.execute(
        select(relationships).where(relationships.c.chain_version_id == row["id"]).order_by(relationships.c.id)
    ).mappings()
    return {
        "name": chain["name"],
        "version": version,
        "current_version": chain["current_version"],
        "active": chain["active"],
        "content_hash": row["content_hash"],
        "source": row["source"],
        "definition": row["definition"],
        "path": row["path"],
        "created_at": chain["created_at"],
        "updated_at": chain["updated_at"],
        "version_created_at": row["created_at"],
        "relationships": [_relationship_out(r) for r in rels],
    }
