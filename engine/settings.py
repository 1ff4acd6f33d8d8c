"""Settings: built once (in the CLI or by the embedding program) and passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from legion.engine.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    amqp_url: str | None = None
    redis_url: str | None = None
    vault_addr: str | None = None
    workers: int = 4
    node: str = field(default_factory=lambda: os.uname().nodename)

    @property
    def embedded(self) -> bool:
        return self.amqp_url is None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("LEGION_HOME") or Path.home() / ".legion").expanduser()
        url = env.get("LEGION_DATABASE_URL") or f"sqlite:///{home / 'legion.db'}"
        raw_workers = env.get("LEGION_WORKERS", "4")
        try:
            workers = int(raw_workers)
            if workers < 1:
                raise ValueError
        except ValueError:
            raise ConfigError(f"LEGION_WORKERS={raw_workers!r}: give a whole number of worker threads, at least 1") from None
        return cls(
            home=home,
            database_url=url,
            amqp_url=env.get("LEGION_AMQP_URL") or None,
            redis_url=env.get("LEGION_REDIS_URL") or None,
            vault_addr=env.get("VAULT_ADDR") or None,
            workers=workers,
        )
