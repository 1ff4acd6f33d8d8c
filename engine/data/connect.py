"""Creating the SQLAlchemy engine for a database URL, with per-backend settings, and turning
driver failures into Legion errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    StatementError,
)
from sqlalchemy.pool import StaticPool

from legion.engine.data.types import json_dumps
from legion.engine.errors import BadInput, ConfigError, LegionError, ServiceUnavailable

# Execution option set on the store's writing engine: SQLite then starts its transaction with
# BEGIN IMMEDIATE, taking the write lock up front. A deferred BEGIN that reads and then writes
# fails at once with "database is locked" when another process wrote meanwhile; IMMEDIATE
# waits for the lock (busy_timeout) instead.
WRITE = "legion_write"
SQLITE_BUSY_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_S = 10
IDLE_PING_S = 5.0  # a pooled connection idle this long is checked before use

# PyMySQL reports these as OperationalError although they are about the data, not the server:
# no default for a NOT NULL field, NULL into NOT NULL, value too long, value of the wrong type,
# number out of range, value truncated.
MYSQL_DATA_ERRORS = frozenset({1364, 1048, 1406, 1366, 1292, 1264, 1265})
# ... and these, a CHECK constraint that failed (MariaDB checks JSON columns with JSON_VALID),
# a value MySQL's JSON type refused.
MYSQL_CHECK_ERRORS = frozenset({4025, 3819, 3140})

# What a constraint violation was, by PostgreSQL SQLSTATE and by MySQL/MariaDB error number
# (SQLite says it in the message).
_PG_CONSTRAINTS = {"23505": "unique", "23503": "foreign_key", "23502": "not_null", "23514": "check"}
_MYSQL_CONSTRAINTS = {1062: "unique", 1586: "unique", 1451: "foreign_key", 1452: "foreign_key",
                      1216: "foreign_key", 1217: "foreign_key", 1048: "not_null", 4025: "check", 3819: "check"}
_SQLITE_CONSTRAINTS = (("UNIQUE", "unique"), ("PRIMARY KEY", "unique"), ("FOREIGN KEY", "foreign_key"),
                       ("NOT NULL", "not_null"), ("CHECK", "check"))
_WHAT = {
    "unique": "a row with the same key exists already",
    "foreign_key": "it refers to a row that does not exist",
    "not_null": "a required field is missing",
    "check": "a value breaks a rule of its column (a JSON column holds only valid JSON)",
    "other": "a constraint of the database failed",
}

DRIVERS = {
    "postgresql": "psycopg[binary] (pip install 'legion[postgres]')",
    "mysql": "pymysql (pip install 'legion[mysql]')",
    "mariadb": "pymysql (pip install 'legion[mysql]')",
}


def parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"{url!r} is not a database URL; expected e.g. sqlite:////var/lib/legion/legion.db "
            "or postgresql+psycopg://user:pass@host/db."
        ) from exc


def redact(url: str | URL) -> str:
    """The URL with its password replaced by ***, for messages and logs."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return "<unparsable URL>"
    return parsed.render_as_string(hide_password=True)


def default_url(home: Path) -> str:
    """The embedded default: an SQLite file `legion.db` in the Legion home directory."""
    home = Path(home).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(home / 'legion.db').resolve()}"


def make_engine(url: str) -> Engine:
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {}
    if backend == "postgresql":
        if "connect_timeout" not in parsed.query:
            kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    elif backend in ("mysql", "mariadb"):
        kwargs["pool_recycle"] = 3600  # below MySQL's default wait_timeout (8 h)
        # REPEATABLE READ (MySQL's default) takes gap locks on upserts, which deadlock under
        # concurrent workers; the other backends run READ COMMITTED already.
        kwargs["isolation_level"] = "READ COMMITTED"
        if "connect_timeout" not in parsed.query:
            kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    elif backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        # One shared connection, or every pooled connection would see its own empty database.
        # Meant for tests and one-shot tools: threads share that one connection.
        kwargs["poolclass"] = StaticPool
        kwargs["connect_args"] = {"check_same_thread": False}
    try:
        # Strict JSON on every backend: PostgreSQL and MariaDB refuse NaN and infinity, so
        # SQLite must not quietly store them either.
        engine = create_engine(parsed, json_serializer=json_dumps, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        hint = DRIVERS.get(backend, "its driver")
        raise ConfigError(f"Cannot use the database at {redact(parsed)}: install {hint}. ({exc})") from exc
    except (ValueError, TypeError) as exc:  # an option in the URL's query the dialect cannot read
        raise ConfigError(f"Cannot use the database at {redact(parsed)}: an option in the URL is not valid "
                          f"({_option_error(exc)}); check the part after `?`.") from exc
    if backend == "sqlite":
        _tune_sqlite(engine)
    else:
        _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it sat idle for a while: a server
    restart (or an idle timeout) is found then, and the pool opens a new connection. A
    connection in steady use is not pinged (SQLAlchemy's `pool_pre_ping` would cost a round
    trip per transaction); one that died meanwhile fails its statement with an
    OperationalError, which callers take as ServiceUnavailable and retry, and the pool
    replaces it."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_S:
            return
        try:
            cursor = dbapi_conn.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_conn.rollback()
        except Exception as exc:
            raise DisconnectionError(f"the pooled connection is gone ({exc})") from exc


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (the
        # module's implicit BEGIN comes only before DML, so reads would escape the transaction).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        # The busy timeout first: switching a fresh file to WAL takes a lock, and several
        # processes opening it at once must wait for each other rather than fail.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # WAL: readers never block the writer; NORMAL: no fsync per commit in WAL mode (a power
        # cut may lose the last commits, never corrupt the file).
        _retry_locked(cursor, "PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE, False)
        # Straight to the driver: this runs once per transaction on the hot path, and going
        # through SQLAlchemy's statement machinery costs more than SQLite's own BEGIN.
        sql = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        driver = conn.connection.driver_connection
        if driver is not None:
            try:
                driver.execute(sql)
            except conn.dialect.loaded_dbapi.Error as exc:
                # SQLAlchemy calls this hook outside its error handling: wrap the driver's error
                # as it would, so that "database is locked" is an OperationalError to callers.
                raise DBAPIError.instance(sql, None, exc, conn.dialect.loaded_dbapi.Error,
                                          dialect=conn.dialect) from exc
        else:  # an invalidated connection: let SQLAlchemy reconnect and report
            conn.exec_driver_sql(sql)


def _retry_locked(cursor: Any, sql: str) -> None:
    """Run `sql`, retrying "database is locked" for up to the busy timeout. Switching a fresh
    file to WAL needs an exclusive lock, and SQLite refuses it at once, without waiting, when
    another connection is switching at the same moment (waiting could deadlock)."""
    import sqlite3

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            cursor.execute(sql)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def connect(engine: Engine, url: str | URL, **options: Any) -> Connection:
    """A connection from the pool; a failure to connect becomes ServiceUnavailable."""
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise ServiceUnavailable(
            f"Cannot connect to the database at {redact(url)}: {_reason(exc)}. "
            "Check that it is running and that the URL is right."
        ) from exc
    except (ValueError, TypeError) as exc:
        # The driver could not even send the login: a user, password, database name or option
        # it cannot encode (PyMySQL sends the login as latin-1) or read.
        raise ConfigError(
            f"Cannot connect to the database at {redact(url)}: its driver cannot use the URL's user, password, "
            f"database name or options ({_option_error(exc)}); check them."
        ) from exc
    return conn.execution_options(**options) if options else conn


class ConstraintViolation(BadInput):
    """The database refused a change by one of its constraints. `kind` says which: 'unique',
    'foreign_key', 'not_null', 'check' or 'other'; `reason` is the database's own words.
    Store methods that expect one (a duplicate id, a missing run) turn it into a sharper
    error; elsewhere it reaches the caller as the BadInput it is."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"The database refused the change: {_WHAT.get(kind, _WHAT['other'])}. ({reason})")
        self.kind = kind
        self.reason = reason


@contextmanager
def translate_errors(url: str | URL) -> Iterator[None]:
    """Driver failures become Legion errors; the transaction was rolled back in every case.

    A bad value (DataError, a violated constraint, a number or string the driver cannot
    convert) is BadInput with a sentence saying what was wrong: retrying cannot help.
    OperationalError (connection lost, deadlock, lock wait timeout, "database is locked") is
    ServiceUnavailable: the operation may succeed when retried."""
    try:
        yield
    except OperationalError as exc:
        code = _mysql_code(exc)
        if code in MYSQL_CHECK_ERRORS:
            raise ConstraintViolation("check", _reason(exc)) from exc
        if code in MYSQL_DATA_ERRORS:
            raise BadInput(f"The database rejected the data: {_reason(exc)}.") from exc
        raise ServiceUnavailable(
            f"The database at {redact(url)} failed: {_reason(exc)}. Nothing was changed; retry."
        ) from exc
    except IntegrityError as exc:
        raise ConstraintViolation(constraint_kind(exc), _reason(exc)) from exc
    except DataError as exc:
        raise BadInput(f"The database rejected a value: {_reason(exc)}. Nothing was changed.") from exc
    except DBAPIError:
        raise
    except StatementError as exc:
        # A value that failed on its way to the driver (a column type's bind processing).
        if isinstance(exc.orig, LegionError):
            raise exc.orig from exc
        if isinstance(exc.orig, (ValueError, TypeError, OverflowError)):
            raise BadInput(f"A value cannot be stored: {_reason(exc)}. Nothing was changed.") from exc
        raise
    except OverflowError as exc:  # from the driver: an int too large for SQLite
        raise BadInput(f"A number is out of range for the database: {exc}. Nothing was changed.") from exc
    except UnicodeEncodeError as exc:  # from the driver
        bad = exc.object[exc.start:exc.end]
        raise BadInput(
            f"A string holds {bad!r}, which has no UTF-8 form ({exc.reason}), so the database cannot "
            "take it. Nothing was changed."
        ) from exc


def constraint_kind(exc: DBAPIError) -> str:
    """'unique', 'foreign_key', 'not_null', 'check' or 'other', for a constraint violation."""
    code = _mysql_code(exc)
    if code is not None:  # PyMySQL's own sqlstate is a generic 23000
        return _MYSQL_CONSTRAINTS.get(code, "other")
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return _PG_CONSTRAINTS.get(sqlstate, "other")
    text = str(exc.orig).upper()
    return next((kind for marker, kind in _SQLITE_CONSTRAINTS if marker in text), "other")


def _option_error(exc: Exception) -> str:
    """What was wrong with a URL's part, without the part itself when it may be a password."""
    if isinstance(exc, UnicodeError):
        return f"{type(exc).__name__}: a character it cannot encode"
    return f"{type(exc).__name__}: {exc}"


def _mysql_code(exc: DBAPIError) -> int | None:
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _reason(exc: StatementError) -> str:
    args: tuple[Any, ...] = tuple(getattr(exc.orig, "args", ()))
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        text = args[1].strip()  # PyMySQL's (number, message)
    else:
        text = str(exc.orig if exc.orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
