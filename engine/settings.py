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

    @property
    def embedded(self) -> bool:
        return self.amqp_url is None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *,
                 secrets: Callable[[], SecretStore] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = default_home(env)
        raw_workers = env.get("LEGION_WORKERS", "4")
        try:
            workers = int(raw_workers)
            if workers < 1:
                raise ValueError
        except ValueError:
            raise ConfigError(f"LEGION_WORKERS={raw_workers!r}: give a whole number of worker threads, at least 1") from None
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
            amqp_url=setting("LEGION_AMQP_URL"),
            redis_url=setting("LEGION_REDIS_URL"),
            vault_addr=env.get("VAULT_ADDR") or None,
            vault_mount=env.get("LEGION_VAULT_MOUNT") or "secret",
            workers=workers,
        )
