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

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from legion.engine.data.connect import WRITE, redact
from legion.engine.errors import ConfigError, ServiceUnavailable

if TYPE_CHECKING:
    from alembic.config import Config

SCHEMA_HEAD = "0008"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# How long a process that finds the schema behind waits for another one migrating it.
MIGRATE_WAIT_S = 60.0
# PostgreSQL's advisory lock key for migrations ("legion" in ASCII); advisory locks are per
# database, so one key serves every Legion database on a server.
PG_LOCK_KEY = 0x6C6567696F6E


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
    upgrade_schema(engine)


def upgrade_schema(engine: Engine) -> str | None:
    """Migrate the database to `SCHEMA_HEAD` under the migration lock, and return the revision
    it was at (None for a database never set up; SCHEMA_HEAD when there was nothing to do).

    Every process that finds the schema behind comes here, often several at once (commands
    started together on a fresh database). The lock makes them take turns, and each re-reads
    the revision once it holds the lock: the first migrates, the others find the work done.
    Without it, MariaDB's DDL (which commits as it goes) let two processes each create half
    the tables and fail on the other half."""
    if engine.dialect.name == "sqlite":
        return _upgrade_sqlite(engine)
    with engine.connect() as conn, _migration_lock(conn):
        revision = current_revision(conn)
        if revision != SCHEMA_HEAD:
            _migrate(conn, revision)
        return revision


def _migrate(conn: Connection, revision: str | None) -> None:
    """Run the migrations from `revision` to head on `conn`, in one transaction where the
    backend allows DDL in one (SQLite, PostgreSQL; MariaDB commits each statement)."""
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    cfg = alembic_config(conn)
    if revision is not None:
        try:
            ScriptDirectory.from_config(cfg).get_revision(revision)
        except CommandError as exc:
            raise ConfigError(
                f"The database schema is at revision {revision!r}, which this Legion does not "
                f"know (its newest is {SCHEMA_HEAD}); the database was migrated by a newer "
                "Legion: upgrade Legion."
            ) from exc
    if conn.in_transaction():
        command.upgrade(cfg, "head")
        return
    with conn.begin():
        command.upgrade(cfg, "head")


@contextmanager
def _migration_lock(conn: Connection) -> Iterator[None]:
    """Hold the database's migration lock on `conn` (a session lock: it outlives the
    transactions run on `conn` meanwhile, and dies with the connection if it breaks).

    PostgreSQL: an advisory lock, which is per database. MariaDB/MySQL: a named lock
    (GET_LOCK), which is per server, so its name holds the database's. Waiting is bounded by
    MIGRATE_WAIT_S; past it, ServiceUnavailable (a migration that long is stuck or huge)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        acquire = text("SELECT pg_advisory_lock(:key)")
        release = text("SELECT pg_advisory_unlock(:key)")
        params: dict[str, Any] = {"key": PG_LOCK_KEY}
        with conn.begin():
            # Only this transaction waits at most this long; the session keeps its setting.
            conn.execute(text(f"SET LOCAL lock_timeout = '{int(MIGRATE_WAIT_S * 1000)}ms'"))
            try:
                conn.execute(acquire, params)
            except OperationalError as exc:
                if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
                    raise
                raise _lock_timeout(conn) from exc
    elif dialect in ("mysql", "mariadb"):
        release = text("SELECT RELEASE_LOCK(:name)")
        with conn.begin():
            params = {"name": _mysql_lock_name(conn.execute(text("SELECT DATABASE()")).scalar())}
            got = conn.execute(text("SELECT GET_LOCK(:name, :wait)"), params | {"wait": int(MIGRATE_WAIT_S)}).scalar()
        if got != 1:  # 0: timed out; NULL: an error (out of memory, the thread killed)
            raise _lock_timeout(conn)
    else:  # a backend with no lock we know: migrate unguarded, as a single process would
        yield
        return
    try:
        yield
    finally:
        try:
            if conn.in_transaction():
                conn.rollback()
            with conn.begin():
                conn.execute(release, params)
        except DBAPIError:
            # The connection broke, and the lock with it; never hand a connection that may
            # still hold the lock back to the pool.
            conn.invalidate()


def _mysql_lock_name(database: str | None) -> str:
    """A lock name for this database, within MySQL's limit of 64 characters."""
    name = f"legion.schema.{database or ''}"
    if len(name) > 64:
        name = "legion.schema." + hashlib.sha256(name.encode()).hexdigest()[:40]
    return name


def _lock_timeout(conn: Connection) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"Another process has held the schema migration lock of the database at {redact(conn.engine.url)} "
        f"for over {MIGRATE_WAIT_S:g}s, so this one cannot check the schema. Retry; if it persists, "
        "look for a stuck `legion` process (or run `legion db upgrade` to see the migration's own error)."
    )


def _upgrade_sqlite(engine: Engine) -> str | None:
    """Migrate under SQLite's write lock, taken by the first statement (BEGIN IMMEDIATE), so
    that processes opening a fresh file at once take turns instead of failing; each re-reads
    the revision once it holds the lock, as another may have migrated meanwhile. "database is
    locked" (the busy timeout ran out) is retried for up to MIGRATE_WAIT_S."""
    deadline = time.monotonic() + MIGRATE_WAIT_S
    delay = 0.05
    while True:
        try:
            with engine.connect() as plain:
                conn = plain.execution_options(**{WRITE: True})  # BEGIN IMMEDIATE
                with conn.begin():
                    revision = _sqlite_revision(conn)
                    if revision != SCHEMA_HEAD:
                        _migrate(conn, revision)
            return revision
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
