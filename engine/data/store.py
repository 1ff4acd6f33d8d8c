"""`Store`: Legion's persistence, one object over SQLite, PostgreSQL or MariaDB/MySQL.

Plain dicts go in and come out (JSON-able values; datetimes are aware UTC `datetime`s). Every
public method is one transaction. The methods live in small mixins by subject:
registry (`_registry`), chains (`_chains`), runs, tasks and logs (`_runs`), the durable run
path (`_durable`), nodes and schedules (`_ops`), API tokens (`_tokens`), figures for
`/metrics` (`_metrics`), changes for `/api/events` (`_events`), agents and their state
(`_agents`).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any, Self

from legion.engine.data._agents import AgentStore
from legion.engine.data._chains import ChainStore
from legion.engine.data._durable import DurableStore, LockedRun
from legion.engine.data._events import EventStore
from legion.engine.data._metrics import MetricsStore
from legion.engine.data._ops import OpsStore
from legion.engine.data._registry import RegistryStore
from legion.engine.data._runs import RunStore
from legion.engine.data._tokens import TokenStore
from legion.engine.data.connect import connect, default_url, make_engine, redact, translate_errors
from legion.engine.data.schema import SCHEMA_HEAD, ensure_schema, upgrade_schema

__all__ = ["LockedRun", "Store", "default_url", "upgrade_database"]


class Store(RegistryStore, ChainStore, RunStore, DurableStore, OpsStore, TokenStore, MetricsStore, EventStore, AgentStore):
    """Open with `Store(url)` or `Store.open(url)`; the schema is migrated to the newest
    revision on open (unless upgrade=False, which then insists it is current).

    Raises ConfigError for a malformed URL or a missing driver, ServiceUnavailable when the
    database cannot be reached.
    """

    def __init__(self, url: str, *, upgrade: bool = True) -> None:
        self.url = url
        self._engine = make_engine(url)
        try:
            with self._read():  # connect once, so an unreachable database fails here, clearly
                pass
            with translate_errors(url):
                ensure_schema(self._engine, upgrade=upgrade)
        except BaseException:
            self._engine.dispose()
            raise

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True) -> Store:
        return cls(url, upgrade=upgrade)

    @classmethod
    def open_home(cls, home: Path) -> Store:
        """The embedded default: SQLite in `home`/legion.db."""
        return cls(default_url(home))

    def close(self) -> None:
        """Close the pooled connections (the store can still be used; it reconnects)."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({redact(self.url)!r})"


def upgrade_database(url: str) -> dict[str, Any]:
    """`legion db upgrade`: migrate the database at `url` to this Legion's schema, under the
    migration lock (as every command does on first use, made explicit, e.g. for a deploy
    step before the workers start). Returns {database, from, to, migrated}: `from` is the
    revision found (None for a database never set up)."""
    engine = make_engine(url)
    try:
        with connect(engine, url):  # an unreachable database fails here, clearly
            pass
        with translate_errors(url):
            before = upgrade_schema(engine)
    finally:
        engine.dispose()
    return {"database": redact(url), "from": before, "to": SCHEMA_HEAD, "migrated": before != SCHEMA_HEAD}
