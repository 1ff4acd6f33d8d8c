"""Schema versioning: is the database at the current revision, and bringing it there.

`SCHEMA_HEAD` names the newest migration so that opening an up-to-date database costs one
SELECT and never imports alembic (it adds a noticeable fraction of a second to every CLI
command). When you add a migration, set `SCHEMA_HEAD` to its revision; a test fails until you
do.

To write a new migration against a scratch database:

    from alembic import command
    from legion.engine.data.schema import alembic_config
    command.revision(alembic_config("sqlite:////tmp/scratch.db"), "what changed", autogenerate=True)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from legion.engine.data.connect import WRITE
from legion.engine.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config

SCHEMA_HEAD = "0002"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# How long a process opening a fresh SQLite file waits for others migrating it at the same time.
SQLITE_MIGRATE_WAIT_S = 30.0


def alembic_config(target: str | Connection | None = None) -> Config:
    """An alembic Config built in code (no alembic.ini): script location is the package's
    migrations directory; `target` is a URL or an open connection to run against."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if isinstance(target, str):
        # ConfigParser interpolation would choke on '%' in URL-escaped passwords.
        cfg.set_main_option("sqlalchemy.url", target.replace("%", "%%"))
    elif target is not None:
        cfg.attributes["connection"] = target
    return cfg


def current_revision(conn: Connection) -> str | None:
    """The revision in alembic_version, or None for a database that has never been set up."""
    try:
        with conn.begin():
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        return None


def ensure_schema(engine: Engine, *, upgrade: bool = True) -> None:
    """Bring the database to `SCHEMA_HEAD` (or, with upgrade=False, insist that it is)."""
    with engine.connect() as conn:
        revision = current_revision(conn)
    if revision == SCHEMA_HEAD:
        return
    if not upgrade:
        raise ConfigError(
            f"The database schema is at revision {revision or 'none'}, this Legion needs "
            f"{SCHEMA_HEAD}; open the store with upgrade=True (the default) to migrate it."
        )
    _upgrade(engine, revision)


def _upgrade(engine: Engine, revision: str | None) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    cfg = alembic_config()
    if revision is not None:
        try:
            ScriptDirectory.from_config(cfg).get_revision(revision)
        except CommandError as exc:
            raise ConfigError(
                f"The database schema is at revision {revision!r}, which this Legion does not "
                f"know (its newest is {SCHEMA_HEAD}); the database was migrated by a newer "
                "Legion: upgrade Legion."
            ) from exc
    if engine.dialect.name == "sqlite":
        _upgrade_sqlite(engine, cfg)
        return
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except DBAPIError:
        # Two processes opening a fresh database at once: the loser's CREATE TABLE fails.
        # That is fine when the winner got the schema to head.
        with engine.connect() as conn:
            if current_revision(conn) != SCHEMA_HEAD:
                raise


def _upgrade_sqlite(engine: Engine, cfg: Config) -> None:
    """Migrate under the write lock, taken by the first statement (BEGIN IMMEDIATE), so that
    processes opening a fresh file at once take turns instead of failing; each re-reads the
    revision once it holds the lock, as another may have migrated meanwhile. "database is
    locked" (the busy timeout ran out) is retried for up to SQLITE_MIGRATE_WAIT_S."""
    from alembic import command

    deadline = time.monotonic() + SQLITE_MIGRATE_WAIT_S
    delay = 0.05
    while True:
        try:
            with engine.connect() as plain:
                conn = plain.execution_options(**{WRITE: True})  # BEGIN IMMEDIATE
                with conn.begin():
                    if _sqlite_revision(conn) == SCHEMA_HEAD:
                        return
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
            return
        except OperationalError as exc:
            if "locked" not in str(exc.orig) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def _sqlite_revision(conn: Connection) -> str | None:
    """current_revision inside an open transaction (checking for the table first: a failed
    statement must not end the transaction that holds the lock)."""
    exists = conn.execute(text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"))
    if exists.first() is None:
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
