"""`legion doctor`: is this installation able to work? One line per check — ok, warn or
fail, with a hint — for the settings, the database, each configured service and each
installed extension.

Every check reports; none raises. An unreachable database or a broken extension is a failed
check, never a crash, and the doctor changes nothing: it creates no database and migrates
none.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from legion.dsl.errors import LegionError
from legion.engine.cli.main import Context

TIMEOUT_S = 5.0  # per service connection attempt


@dataclass(frozen=True)
class Check:
    name: str  # settings, database, rabbitmq, redis, vault, extension
    status: str  # ok | warn | fail
    message: str
    hint: str | None = None
    detail: str | None = None  # a traceback: shown in text with -v, always in --json


def ok(name: str, message: str, hint: str | None = None) -> Check:
    return Check(name, "ok", message, hint)


def warn(name: str, message: str, hint: str | None = None) -> Check:
    return Check(name, "warn", message, hint)


def fail(name: str, message: str, hint: str | None = None, detail: str | None = None) -> Check:
    return Check(name, "fail", message, hint, detail)


def doctor(args: argparse.Namespace, ctx: Context) -> int:
    checks = run_checks(ctx, os.environ)
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)

    def text() -> str:
        lines = []
        for c in checks:
            lines.append(f"{c.status:<5} {c.name:<10} {c.message}")
            if c.hint:
                lines.append(f"{'':17}hint: {c.hint}")
            if c.detail and args.verbose:
                lines += [f"{'':17}{line}" for line in c.detail.rstrip("\n").splitlines()]
        summary = f"{failed} check(s) failed" if failed else "no check failed"
        lines.append(summary + (f", {warned} warning(s)" if warned else "")
                     + ("" if args.verbose or not any(c.detail for c in checks) else " (-v shows the tracebacks)"))
        return "\n".join(lines)

    ctx.out.data({"ok": not failed, "failed": failed, "warnings": warned, "checks": [asdict(c) for c in checks]}, text)
    return 1 if failed else 0


def run_checks(ctx: Context, env: Mapping[str, str]) -> list[Check]:
    checks: list[Check] = []
    settings = None
    try:
        settings = ctx.settings
    except LegionError as exc:
        checks.append(fail("settings", exc.message, "fix the environment variable it names (docs/settings.md lists them all)"))
    except Exception as exc:  # the doctor reports, whatever happens
        checks.append(fail("settings", f"{type(exc).__name__}: {exc}", "docs/settings.md lists the settings"))
    if settings is None:
        checks += [warn(name, "not checked: the settings did not load") for name in ("database", "rabbitmq", "redis", "vault")]
    else:
        checks.append(ok("settings", f"home {settings.home}, {settings.workers} worker thread(s), node {settings.node}"))
        services = {"database": lambda: database(settings.database_url), "rabbitmq": lambda: rabbitmq(settings.amqp_url),
                    "redis": lambda: redis(settings.redis_url), "vault": lambda: vault(env, settings.home)}
        for name, check in services.items():
            try:
                checks.append(check())
            except Exception as exc:  # a check's own failure is still one line
                checks.append(fail(name, f"the check itself failed: {type(exc).__name__}: {exc}"))
    checks += extensions(ctx)
    return checks


# -- the database ---------------------------------------------------------------------------


def database(url: str) -> Check:
    from sqlalchemy.exc import DBAPIError

    from legion.engine.data.connect import make_engine, parse_url, redact
    from legion.engine.data.schema import SCHEMA_HEAD, current_revision

    hint = "check LEGION_DATABASE_URL and that the database server is running and accepts this user"
    try:
        parsed = parse_url(url)
    except LegionError as exc:
        return fail("database", exc.message, "set LEGION_DATABASE_URL to a URL such as postgresql+psycopg://user@host/db")
    shown = redact(parsed)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path and path != ":memory:" and not path.startswith("file:") and not Path(path).is_file():
            return ok("database", f"{shown}: no database yet; the first command that needs one creates it")
    try:
        engine = make_engine(url)
    except LegionError as exc:  # a missing driver
        return fail("database", exc.message, "install the driver it names")
    try:
        with engine.connect() as conn:
            revision = current_revision(conn)
    except DBAPIError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc).strip() else type(exc).__name__
        return fail("database", f"{shown}: cannot connect: {reason}", hint)
    except (ValueError, TypeError) as exc:  # the driver cannot send the login (a character it cannot encode)
        return fail("database", f"{shown}: cannot connect: its driver cannot use the URL's user, password, database "
                    f"name or options ({type(exc).__name__})", "check them in LEGION_DATABASE_URL")
    finally:
        engine.dispose()
    if revision == SCHEMA_HEAD:
        return ok("database", f"{shown}: reachable, schema current (revision {revision})")
    if revision is None:
        return warn("database", f"{shown}: reachable, no Legion schema yet", "the first command that needs it creates it (e.g. `legion chain apply`), or `legion db upgrade`")
    if not _known_revision(revision):
        return fail("database", f"{shown}: schema at revision {revision!r}, newer than this Legion knows ({SCHEMA_HEAD})",
                    "upgrade Legion: a newer one migrated this database")
    return warn("database", f"{shown}: schema at revision {revision}, this Legion's is {SCHEMA_HEAD}",
                "the next command that opens the database migrates it, or `legion db upgrade`")


def _known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from legion.engine.data.schema import alembic_config

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


# -- services -------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """The URL with its password as ***."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)
        user = netloc[0].split(":", 1)[0]
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))
    except ValueError:
        return "<unparsable URL>"


def rabbitmq(url: str | None) -> Check:
    if not url:
        return ok("rabbitmq", "LEGION_AMQP_URL not set: steps run in this process on the in-memory transport")
    shown = redact_url(url)
    try:
        import pika
        import pika.exceptions as px
    except ImportError:
        return fail("rabbitmq", f"{shown}: pika is not installed", "pip install 'legion[amqp]'")
    try:
        params = pika.URLParameters(url)
    except Exception as exc:
        return fail("rabbitmq", f"{shown} is not an AMQP URL ({exc})", "write it as amqp://user:password@host:5672/vhost")
    params.socket_timeout = TIMEOUT_S
    params.stack_timeout = TIMEOUT_S * 2
    params.blocked_connection_timeout = TIMEOUT_S
    params.connection_attempts = 1
    try:
        with _quiet("pika"):
            connection = pika.BlockingConnection(params)
    except (px.ProbableAuthenticationError, px.AuthenticationError, px.ProbableAccessDeniedError) as exc:
        return fail("rabbitmq", f"{shown}: refused the login ({type(exc).__name__})",
                    "check the user, password and vhost in LEGION_AMQP_URL")
    except Exception as exc:
        return fail("rabbitmq", f"{shown}: cannot connect ({_reason(exc)})", "check LEGION_AMQP_URL and that RabbitMQ is running")
    connection.close()
    return ok("rabbitmq", f"{shown}: reachable, logged in")


def redis(url: str | None) -> Check:
    if not url:
        return ok("redis", "LEGION_REDIS_URL not set: locks are in-process")
    shown = redact_url(url)
    try:
        import redis as redis_py
    except ImportError:
        return fail("redis", f"{shown}: redis-py is not installed", "pip install 'legion[redis]'")
    try:
        client = redis_py.Redis.from_url(url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S)
    except ValueError as exc:
        return fail("redis", f"{shown} is not a Redis URL ({exc})", "write it as redis://[:password@]host:6379/0")
    try:
        client.ping()
    except redis_py.AuthenticationError as exc:
        return fail("redis", f"{shown}: refused the login ({_reason(exc)})", "check the password in LEGION_REDIS_URL")
    except redis_py.ResponseError as exc:  # NOAUTH and the like
        return fail("redis", f"{shown}: {_reason(exc)}", "check the password in LEGION_REDIS_URL")
    except redis_py.RedisError as exc:
        return fail("redis", f"{shown}: cannot connect ({_reason(exc)})", "check LEGION_REDIS_URL and that Redis is running")
    finally:
        client.close()
    return ok("redis", f"{shown}: reachable, answers PING")


def vault(env: Mapping[str, str], home: Path) -> Check:
    addr = env.get("VAULT_ADDR")
    if not addr:
        return ok("vault", f"VAULT_ADDR not set: secrets in the embedded store ({home / 'secrets.json'})")
    token = env.get("VAULT_TOKEN")
    if not token:
        return fail("vault", f"{addr}: VAULT_TOKEN is not set", "set VAULT_TOKEN to a token whose policy reads the secrets chains use")
    try:
        import hvac
        import requests
    except ImportError:
        return fail("vault", f"{addr}: hvac is not installed", "pip install 'legion[vault]'")
    client = hvac.Client(url=addr, token=token, timeout=TIMEOUT_S)
    try:
        if client.sys.is_sealed():
            return fail("vault", f"{addr}: reachable but sealed", "unseal it (`vault operator unseal`)")
        authenticated = client.is_authenticated()
    except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL) as exc:
        return fail("vault", f"{addr} is not a URL ({_reason(exc)})", "write VAULT_ADDR as http://127.0.0.1:8200")
    except Exception as exc:
        return fail("vault", f"{addr}: cannot connect ({_reason(exc)})", "check VAULT_ADDR and that Vault is running")
    if not authenticated:
        return fail("vault", f"{addr}: reachable, but the token is not accepted", "check VAULT_TOKEN (expired? revoked?)")
    mount = env.get("LEGION_VAULT_MOUNT") or "secret"
    return ok("vault", f"{addr}: reachable, token accepted (KV v2 mount {mount!r})")


def _reason(exc: BaseException) -> str:
    """The exception in a few words: its OS error when it wraps one (requests and urllib3 nest
    them deep in long messages), else its first line."""
    text = str(exc).strip() or "; ".join(str(a) or repr(a) for a in exc.args).strip()  # pika: str() is empty
    errno = re.search(r"\[Errno -?\d+\] [^'\")\]]+", text)
    if errno:
        return errno.group(0).strip()
    first = text.splitlines()[0] if text else ""
    first = first if len(first) <= 200 else first[:197] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """A library's own error logging silenced: the check reports what went wrong, once."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        log.setLevel(level)


# -- extensions -----------------------------------------------------------------------------


def extensions(ctx: Context) -> list[Check]:
    registry = ctx.registry
    checks: list[Check] = []
    names = sorted(set(registry.extensions) | set(registry.broken))
    for name in names:
        broken = registry.broken.get(name)
        if broken is not None:
            checks.append(fail("extension", f"{name} ({broken.entry_point}) failed to load: {broken.error}", broken.hint,
                               broken.traceback))
            continue
        ext = registry.extensions[name]
        runners = [r for r in registry.runners.values() if r.extension == name]
        functions = [f for r in runners for f in r.functions]
        unreadable = []
        for f in functions:
            try:
                f.spec  # noqa: B018 - building the signature is the check
            except LegionError as exc:
                unreadable.append(exc.message)
        version = f" {ext.version}" if ext.version else ""
        if unreadable:
            checks.append(fail("extension", f"{name}{version}: {len(unreadable)} of {len(functions)} function(s) cannot be used: "
                                            + "; ".join(unreadable),
                               "fix the type hints of those functions (pydantic must be able to read them)"))
        else:
            checks.append(ok("extension", f"{name}{version}: {len(runners)} runner(s), {len(functions)} function(s)"))
    if not names:
        checks.append(warn("extension", "no extension is installed, not even the built-in core",
                           "reinstall Legion (pip install -e .)"))
    return checks
