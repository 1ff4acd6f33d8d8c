"""Persistence: the `Store` over SQLite, PostgreSQL or MariaDB/MySQL, its schema and migrations.

`from legion.engine.data import Store, default_url`. The names resolve lazily so that
importing this package for a constant does not import SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from legion.engine.data.store import Store, default_url

__all__ = ["Store", "default_url"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from legion.engine.data import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
