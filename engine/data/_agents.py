"""Agents and their state: the agent records, and the sealed documents extensions keep for
each agent by (extension, kind, key). Sealing is the caller's (legion.engine.agentstate): here
a document is opaque text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from legion.engine.data._base import StoreBase, new_id, rows
from legion.engine.data._upsert import upsert
from legion.engine.data.models import agent_state, agents
from legion.engine.data.types import utcnow
from legion.engine.errors import BadInput, NotFound

_STATE_COLUMNS = ("agent", "extension", "kind", "key", "data", "updated_at")
_STATE_KEY = ("agent", "extension", "kind", "key")


class AgentStore(StoreBase):
    # -- agents ---------------------------------------------------------------------------

    def create_agent(self, name: str, partner: str | None = None, settings: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._write() as conn:
            if conn.execute(select(agents.c.id).where(agents.c.name == name)).first() is not None:
                raise BadInput(f"an agent named {name!r} already exists; `legion agent list` shows them")
            values = {"name": name, "partner": partner, "settings": settings or {}, "created_at": utcnow()}
            agent_id = new_id(conn.execute(insert(agents).values(values)))
        return dict(values, id=agent_id, erased_at=None)

    def get_agent(self, name: str) -> dict[str, Any]:
        with self._read() as conn:
            found = conn.execute(select(agents).where(agents.c.name == name)).mappings().first()
        if found is None:
            raise NotFound(f"there is no agent {name!r}; `legion agent list` shows them, `legion agent create` makes one")
        return dict(found)

    def list_agents(self) -> list[dict[str, Any]]:
        with self._read() as conn:
            return rows(conn.execute(select(agents).order_by(agents.c.name)))

    def mark_agent_erased(self, name: str) -> bool:
        """Note that an agent was erased (its key and documents are gone); False when there is
        no record of it."""
        with self._write() as conn:
            return bool(conn.execute(update(agents).where(agents.c.name == name).values(erased_at=utcnow())).rowcount)

    # -- state ----------------------------------------------------------------------------

    def state_get(self, agent: str, extension: str, kind: str, key: str) -> str | None:
        with self._read() as conn:
            return conn.execute(select(agent_state.c.data).where(*_where(agent, extension, kind), agent_state.c.key == key)).scalar()

    def state_items(self, agent: str, extension: str, kind: str) -> dict[str, str]:
        with self._read() as conn:
            found = conn.execute(select(agent_state.c.key, agent_state.c.data).where(*_where(agent, extension, kind)))
            return {k: d for k, d in found}

    def state_put(self, agent: str, extension: str, kind: str, documents: dict[str, str]) -> None:
        """Write documents of one kind (key -> sealed text) in one transaction."""
        if not documents:
            return
        now = utcnow()
        values = [{"agent": agent, "extension": extension, "kind": kind, "key": k, "data": d, "updated_at": now}
                  for k, d in documents.items()]
        with self._write() as conn:
            conn.execute(upsert(conn.dialect.name, agent_state, _STATE_COLUMNS, _STATE_KEY), values)

    def state_update(self, agent: str, extension: str, kind: str, key: str,
                     change: Callable[[str | None], str | None]) -> str | None:
        """Read a document and write what `change` makes of it (None: delete it) in one
        transaction, the row locked meanwhile (SQLite: the whole database, as any write), so
        two updates of one document never lose one another's change."""
        where = [*_where(agent, extension, kind), agent_state.c.key == key]
        with self._write() as conn:
            query = select(agent_state.c.data).where(*where)
            if conn.dialect.name != "sqlite":
                query = query.with_for_update()
            current = conn.execute(query).scalar()
            new = change(current)
            if new is None:
                if current is not None:
                    conn.execute(delete(agent_state).where(*where))
            else:
                row = {"agent": agent, "extension": extension, "kind": kind, "key": key, "data": new, "updated_at": utcnow()}
                conn.execute(upsert(conn.dialect.name, agent_state, _STATE_COLUMNS, _STATE_KEY), [row])
            return new

    def state_delete(self, agent: str, extension: str, kind: str, keys: list[str]) -> int:
        with self._write() as conn:
            return int(conn.execute(delete(agent_state).where(*_where(agent, extension, kind), agent_state.c.key.in_(keys))).rowcount)

    def state_clear(self, agent: str, extension: str | None = None, kind: str | None = None) -> int:
        """Delete an agent's documents: all of them, or one extension's (of one kind)."""
        with self._write() as conn:
            return int(conn.execute(delete(agent_state).where(*_where(agent, extension, kind))).rowcount)

    def state_count(self, agent: str, extension: str | None = None) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(agent_state).where(*_where(agent, extension, None))).scalar() or 0)


def _where(agent: str, extension: str | None, kind: str | None) -> list[Any]:
    found = [agent_state.c.agent == agent]
    if extension is not None:
        found.append(agent_state.c.extension == extension)
    if kind is not None:
        found.append(agent_state.c.kind == kind)
    return found
