"""INSERT ... ON CONFLICT UPDATE for the three backends, built once per column set."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Table


@lru_cache(maxsize=256)
def upsert(dialect: str, table: Table, columns: tuple[str, ...], key: tuple[str, ...]) -> Any:
    """An upsert of `columns` into `table`, keyed by the unique `key`: a new row is inserted
    (with the columns' defaults for what is missing), an existing one gets exactly `columns`
    minus `key` overwritten. Cached: building the construct costs more than running it.

    Each dialect's module is imported here, when used: a store talks to one backend, and
    PostgreSQL's module alone costs a noticeable part of opening a SQLite store."""
    update = [c for c in columns if c not in key]
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects import mysql

        stmt = mysql.insert(table)
        # ON DUPLICATE KEY needs something to set; writing a key column to itself is a no-op.
        return stmt.on_duplicate_key_update({c: stmt.inserted[c] for c in update or key[:1]})
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        pg = postgresql.insert(table)
        if not update:
            return pg.on_conflict_do_nothing(index_elements=list(key))
        return pg.on_conflict_do_update(index_elements=list(key), set_={c: pg.excluded[c] for c in update})
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        lite = sqlite.insert(table)
        if not update:
            return lite.on_conflict_do_nothing(index_elements=list(key))
        return lite.on_conflict_do_update(index_elements=list(key), set_={c: lite.excluded[c] for c in update})
    raise NotImplementedError(f"no upsert for the {dialect} dialect")
