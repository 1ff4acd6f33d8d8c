"""What every part of the store shares: the engine, transactions, and row conversion."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, Row, Table

from legion.engine.data.connect import WRITE, connect, translate_errors
from legion.engine.errors import BadInput


class StoreBase:
    """The engine and the two kinds of transaction. Each public method of the store is one
    transaction: it either happened completely or not at all."""

    url: str
    _engine: Engine

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        if self._engine.dialect.name == "postgresql":
            # Each statement sees its own snapshot at READ COMMITTED anyway: a transaction
            # around reads would only add the BEGIN and ROLLBACK round trips.
            with self._single() as conn:
                yield conn
            return
        with connect(self._engine, self.url) as conn, translate_errors(self.url), conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with connect(self._engine, self.url, **{WRITE: True}) as conn, translate_errors(self.url), conn.begin():
            yield conn

    @contextmanager
    def _single(self) -> Iterator[Connection]:
        """For statements that need no transaction around them: autocommit, sparing the
        BEGIN and COMMIT round trips (used on PostgreSQL)."""
        with connect(self._engine, self.url, isolation_level="AUTOCOMMIT") as conn, translate_errors(self.url):
            yield conn

    @property
    def dialect(self) -> str:
        """'sqlite', 'postgresql' or 'mysql' (MariaDB included)."""
        name = self._engine.dialect.name
        return "mysql" if name == "mariadb" else name


def new_id(result: CursorResult[Any]) -> int:
    """The primary key an INSERT just generated."""
    key = result.inserted_primary_key
    if key is None:  # only for multi-row inserts, which callers never pass here
        raise RuntimeError("the insert generated no primary key")
    return int(key[0])


def row_dict(row: Row[Any] | None) -> dict[str, Any] | None:
    return None if row is None else dict(row._mapping)


def rows(result: Iterable[Row[Any]]) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in result]


def check_limit(limit: int) -> None:
    """A LIMIT every backend takes alike (SQLite reads -1 as "no limit", the others refuse it)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise BadInput(f"A limit is a whole number of 0 or more, not {limit!r}.")


def check_columns(table: Table, values: Mapping[str, Any], what: str) -> None:
    """Reject keys that are not columns, naming them, before the driver does it cryptically."""
    unknown = set(values) - set(table.c.keys())
    if unknown:
        raise BadInput(
            f"Unknown {what} field(s): {', '.join(sorted(unknown))}; "
            f"known fields are {', '.join(table.c.keys())}."
        )
