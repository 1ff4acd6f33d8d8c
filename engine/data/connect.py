"""Creating the SQLAlchemy engine for a database URL, with per-backend settings, and turning
driver failures into Legion errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import StaticPool

from legion.engine.errors import BadInput, ConfigError, ServiceUnavailable

# Execution option set on the store's writing engine: SQLite then starts its transaction with
# BEGIN IMMEDIATE, taking the write lock up front. A deferred BEGIN that reads and then writes
# fails at once with "database is locked" when another process wrote meanwhile; IMMEDIATE
# waits for the lock (busy_timeout) instead.
WRITE = "legion_write"
SQLITE_BUSY_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_S = 10

# PyMySQL reports these as OperationalError although they are about the data, not the server:
# no default for a NOT NULL field, NULL into NOT NULL, value too long, value of the wrong type.
MYSQL_DATA_ERRORS = frozenset({1364, 1048, 1406, 1366, 1292})

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
        kwargs["pool_pre_ping"] = True  # survive a server restart under a long-lived worker
        if "connect_timeout" not in parsed.query:
            kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    elif backend in ("mysql", "mariadb"):
        kwargs["pool_pre_ping"] = True
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
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        hint = DRIVERS.get(backend, "its driver")
        raise ConfigError(f"Cannot use the database at {redact(parsed)}: install {hint}. ({exc})") from exc
    if backend == "sqlite":
        _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (the
        # module's implicit BEGIN comes only before DML, so reads would escape the transaction).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        # WAL: readers never block the writer; NORMAL: no fsync per commit in WAL mode (a power
        # cut may lose the last commits, never corrupt the file).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE, False)
        # Straight to the driver: this runs once per transaction on the hot path, and going
        # through SQLAlchemy's statement machinery costs more than SQLite's own BEGIN.
        sql = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        driver = conn.connection.driver_connection
        if driver is not None:
            driver.execute(sql)
        else:  # an invalidated connection: let SQLAlchemy reconnect and report
            conn.exec_driver_sql(sql)


def connect(engine: Engine, url: str | URL, **options: Any) -> Connection:
    """A connection from the pool; a failure to connect becomes ServiceUnavailable."""
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise ServiceUnavailable(
            f"Cannot connect to the database at {redact(url)}: {_reason(exc)}. "
            "Check that it is running and that the URL is right."
        ) from exc
    return conn.execution_options(**options) if options else conn


@contextmanager
def translate_errors(url: str | URL) -> Iterator[None]:
    """OperationalError in the middle of a transaction (connection lost, deadlock, lock wait
    timeout, "database is locked") becomes ServiceUnavailable: the transaction was rolled back
    and the operation may succeed when retried."""
    try:
        yield
    except OperationalError as exc:
        if _mysql_code(exc) in MYSQL_DATA_ERRORS:
            raise BadInput(f"The database rejected the data: {_reason(exc)}.") from exc
        raise ServiceUnavailable(
            f"The database at {redact(url)} failed: {_reason(exc)}. Nothing was changed; retry."
        ) from exc


def _mysql_code(exc: DBAPIError) -> int | None:
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _reason(exc: DBAPIError) -> str:
    text = str(exc.orig if exc.orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
