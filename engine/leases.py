"""Leases: a named right that one process holds until it expires, renewed while it works.

What must run once per deployment rather than once per process — an `every`, `poll`, `once`
or `loop` actor — runs only in the process holding its lease; if that process dies, another
takes the lease once it expires. Leases live in Redis when LEGION_REDIS_URL is set (fast, and
shared by every host), else in the database (the `leases` table), so the embedded default
needs no service.
"""

from __future__ import annotations

from typing import Any, Protocol

from legion.engine.errors import ConfigError, ServiceUnavailable

# Takes the lease if nobody holds it, renews it if this holder does: one round trip, atomic.
_ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if held then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
PREFIX = "legion:lease:"


class Leases(Protocol):
    def acquire(self, name: str, holder: str, ttl: float) -> bool: ...
    def release(self, name: str, holder: str) -> None: ...


class StoreLeases:
    """Leases in the database (see `Store.acquire_lease`)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def acquire(self, name: str, holder: str, ttl: float) -> bool:
        return bool(self.store.acquire_lease(name, holder, ttl))

    def release(self, name: str, holder: str) -> None:
        self.store.release_lease(name, holder)


class RedisLeases:
    """Leases in Redis: a key per lease holding its holder, expiring with the lease."""

    def __init__(self, url: str) -> None:
        try:
            import redis
        except ImportError:
            raise ConfigError("LEGION_REDIS_URL is set but redis is not installed: pip install 'legion[redis]'") from None
        self._errors = redis.exceptions.RedisError
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._acquire = self.client.register_script(_ACQUIRE)
        self._release = self.client.register_script(_RELEASE)

    def acquire(self, name: str, holder: str, ttl: float) -> bool:
        try:
            return bool(self._acquire(keys=[PREFIX + name], args=[holder, max(1, int(ttl * 1000))]))
        except self._errors as exc:
            raise ServiceUnavailable(f"Redis cannot be reached for lease {name!r} ({type(exc).__name__}): "
                                     f"check LEGION_REDIS_URL and that Redis is up") from None

    def release(self, name: str, holder: str) -> None:
        try:
            self._release(keys=[PREFIX + name], args=[holder])
        except self._errors:
            pass  # the lease expires by itself


def leases_for(redis_url: str | None, store: Any) -> Leases:
    """Redis leases when Redis is configured, else the database's."""
    return RedisLeases(redis_url) if redis_url else StoreLeases(store)
