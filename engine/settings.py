"""Settings: built once (in the CLI or by the embedding program) and passed down.

The service URLs may be references instead of values (spec section 7): `env://NAME` reads the
environment variable NAME, `vault://path#key` the secret store (Vault when VAULT_ADDR is set,
else the embedded store). So a password need not sit in LEGION_DATABASE_URL itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from legion.engine.errors import ConfigError
from legion.engine.secrets import SecretStore, default_home, resolve_setting, store_from_env

# Worker threads of one process (LEGION_WORKERS, `legion start --workers`). Each is a thread
# with its own stack; past a thousand a process spends its time switching between them, and a
# count like 10**14 starts threads until the process (and Ctrl-C) stops answering. More work
# wants more processes, not more threads.
MAX_WORKERS = 1024
WORKERS_HINT = f"give a whole number of worker threads from 1 to {MAX_WORKERS}"

# Settings that drivers and clients take as text. On POSIX the environment is bytes; Python
# turns bytes that are not UTF-8 into lone surrogates, which no driver can send. (LEGION_HOME
# is a path, and a path may be any bytes.)
TEXT_SETTINGS = ("LEGION_DATABASE_URL", "LEGION_AMQP_URL", "LEGION_REDIS_URL", "VAULT_ADDR", "VAULT_TOKEN",
                 "LEGION_VAULT_MOUNT")


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    amqp_url: str | None = None
    redis_url: str | None = None
    vault_addr: str | None = None
    vault_mount: str = "secret"
    workers: int = 4
    node: str = field(default_factory=lambda: os.uname().nodename)
    step_lease: float = 30.0  # seconds a worker holds a step run without renewing its lease

    @property
    def embedded(self) -> bool:
        return self.amqp_url is None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *,
                 secrets: Callable[[], SecretStore] | None = None) -> Settings:
        env = os.environ if env is None else env
        check_environment(env)
        home = default_home(env)
        workers = parse_workers(env.get("LEGION_WORKERS", "4"))
        step_lease = parse_lease(env.get("LEGION_STEP_LEASE", "30"))
        store: SecretStore | None = None

        def secret_store() -> SecretStore:  # opened once, and only when a setting is a vault:// reference
            nonlocal store
            if store is None:
                store = (secrets or (lambda: store_from_env(env)))()
            return store

        def setting(name: str) -> str | None:
            return resolve_setting(name, env.get(name) or None, env, secret_store)

        return cls(
            home=home,
            database_url=setting("LEGION_DATABASE_URL") or f"sqlite:///{home / 'legion.db'}",
            amqp_url=checked_scheme("LEGION_AMQP_URL", setting("LEGION_AMQP_URL"), AMQP_SCHEMES),
            redis_url=checked_scheme("LEGION_REDIS_URL", setting("LEGION_REDIS_URL"), REDIS_SCHEMES),
            vault_addr=env.get("VAULT_ADDR") or None,
            vault_mount=env.get("LEGION_VAULT_MOUNT") or "secret",
            workers=workers,
            step_lease=step_lease,
        )


# What each service URL may start with: anything else is refused (exit 2), never ignored.
AMQP_SCHEMES = ("amqp", "amqps")
REDIS_SCHEMES = ("redis", "rediss", "unix")


def checked_scheme(name: str, url: str | None, schemes: tuple[str, ...]) -> str | None:
    """`url` when its scheme is one of `schemes`; ConfigError naming the setting otherwise (the
    value is not shown: it may hold a password)."""
    if url is None:
        return None
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in schemes:
        shown = f"{scheme}://" if sep else "a value without a scheme"
        raise ConfigError(f"{name} starts with {shown!r}, which Legion does not speak: give a URL starting with "
                          + " or ".join(f"{s}://" for s in schemes))
    return url


def parse_lease(raw: str) -> float:
    """LEGION_STEP_LEASE: seconds, 1 to 3,600 (a duration such as `30s` or `2m` too)."""
    from legion.dsl.durations import parse_duration

    try:
        seconds = parse_duration(raw.strip())
    except ValueError:
        seconds = -1.0
    if not 1 <= seconds <= 3600:
        shown = raw if len(raw) <= 20 else raw[:17] + "..."
        raise ConfigError(f"LEGION_STEP_LEASE={shown!r}: a step run's lease is 1 to 3600 seconds (e.g. 30 or 2m); "
                          "a worker that stops renewing it for this long is taken to be lost")
    return float(seconds)


def parse_workers(raw: str) -> int:
    """LEGION_WORKERS as a number of worker threads, 1 to MAX_WORKERS: digits only (not
    `1_000`, `+4` or `4.0`), or ConfigError naming the variable."""
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 6 or not 1 <= int(text) <= MAX_WORKERS:
        shown = raw if len(raw) <= 20 else raw[:17] + "..."
        raise ConfigError(f"LEGION_WORKERS={shown!r}: {WORKERS_HINT}")
    return int(text)


def check_environment(env: Mapping[str, str] | None = None) -> None:
    """ConfigError, naming the variable, for a setting no client could use: one that is not
    UTF-8 text, or a VAULT_TOKEN that is not printable ASCII (an HTTP header cannot carry
    it). The value is never shown: it may be a password."""
    env = os.environ if env is None else env
    for name in TEXT_SETTINGS:
        value = env.get(name)
        if not value:
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(f"{name} holds bytes that are not UTF-8 text; set it to UTF-8 text") from None
    token = env.get("VAULT_TOKEN")
    if token and not (token.isascii() and token.isprintable()):
        raise ConfigError("VAULT_TOKEN holds characters no Vault token has (tokens are printable ASCII); check its value")
