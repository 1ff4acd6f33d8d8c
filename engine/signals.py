"""Signals: what must reach every process of a deployment at once, and who is alive.

- **Interrupts.** A step run must stop where it runs: its run was canceled or failed fast,
  or its timeout passed. Whichever worker carries out that event says so to all; the process
  executing the step run cancels its context (a function that takes `ctx`, or an async one,
  stops; a plain sync function runs to its end and its result is discarded).
- **Presence.** Each `legion start` says every second that it is alive and what it runs, for
  `legion node list`.

Redis carries both when LEGION_REDIS_URL is set (pub/sub, and keys that expire). Without it,
interrupts travel on the transport (RabbitMQ: a fanout exchange with one exclusive queue per
process; embedded: within the process) and presence is the database's `nodes` heartbeat.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from legion.engine.errors import ConfigError, ServiceUnavailable

log = logging.getLogger("legion.signals")

INTERRUPT_CHANNEL = "legion:interrupt"
NODE_PREFIX = "legion:node:"
OnInterrupt = Callable[[str, "int | None"], None]


def encode_interrupt(run_id: str, number: int | None) -> bytes:
    return json.dumps({"run_id": run_id, "number": number}, separators=(",", ":")).encode()


def decode_interrupt(body: bytes | str) -> tuple[str, int | None] | None:
    """(run_id, number or None), or None for what is not an interrupt (logged)."""
    try:
        d = json.loads(body)
        number = d.get("number")
        return str(d["run_id"]), None if number is None else int(number)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("ignoring a signal that is not an interrupt: %r (%s)", body[:200], exc)
        return None


class Signals(Protocol):
    def interrupt(self, run_id: str, number: int | None) -> None:
        """Stop step run `number` of run `run_id` wherever it executes (every one of the run's
        when `number` is None). Best effort: a lost signal leaves the function to finish, and
        its result is discarded all the same."""

    def listen(self, on_interrupt: OnInterrupt) -> None:
        """Call `on_interrupt(run_id, number)` for every interrupt from now on (on a thread of
        the signals': it must not block)."""

    def close(self) -> None: ...


class TransportSignals:
    """Interrupts on the transport (`broadcast` and `subscribe`)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    def interrupt(self, run_id: str, number: int | None) -> None:
        self.transport.broadcast(encode_interrupt(run_id, number))

    def listen(self, on_interrupt: OnInterrupt) -> None:
        def heard(body: bytes) -> None:
            found = decode_interrupt(body)
            if found is not None:
                on_interrupt(*found)

        self.transport.subscribe(heard)

    def close(self) -> None:
        pass  # the transport is closed by its engine


class RedisSignals:
    """Interrupts on a Redis pub/sub channel; presence as keys that expire."""

    def __init__(self, url: str) -> None:
        try:
            import redis
        except ImportError:
            raise ConfigError("LEGION_REDIS_URL is set but redis is not installed: pip install 'legion[redis]'") from None
        self._errors: type[Exception] = redis.exceptions.RedisError
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=10)
        self._pubsub: Any = None
        self._thread: Any = None

    def _unavailable(self, what: str, exc: Exception) -> ServiceUnavailable:
        return ServiceUnavailable(f"Redis cannot be reached to {what} ({type(exc).__name__}: {exc}): "
                                  "check LEGION_REDIS_URL and that Redis is up")

    def interrupt(self, run_id: str, number: int | None) -> None:
        try:
            self.client.publish(INTERRUPT_CHANNEL, encode_interrupt(run_id, number))
        except self._errors as exc:
            log.warning("%s", self._unavailable(f"interrupt run {run_id}", exc).message)

    def listen(self, on_interrupt: OnInterrupt) -> None:
        def heard(message: dict[str, Any]) -> None:
            found = decode_interrupt(message["data"])
            if found is not None:
                on_interrupt(*found)

        def failed(exc: BaseException, pubsub: Any, thread: Any) -> None:
            # The subscription is made again on the next read once Redis is back.
            log.warning("listening for interrupts on Redis: %s; trying again", exc)
            time.sleep(1.0)

        self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            self._pubsub.subscribe(**{INTERRUPT_CHANNEL: heard})
        except self._errors as exc:
            raise self._unavailable("listen for interrupts", exc) from None
        self._thread = self._pubsub.run_in_thread(sleep_time=1.0, daemon=True, exception_handler=failed)

    def beat(self, node: str, info: dict[str, Any], ttl: float) -> None:
        """`node` is alive for `ttl` seconds more, doing what `info` says."""
        try:
            self.client.set(NODE_PREFIX + node, json.dumps(info, default=str), px=max(1, int(ttl * 1000)))
        except self._errors as exc:
            log.warning("%s", self._unavailable("say this node is alive", exc).message)

    def gone(self, node: str) -> None:
        try:
            self.client.delete(NODE_PREFIX + node)
        except self._errors:
            pass  # it expires by itself

    def alive(self) -> dict[str, dict[str, Any]]:
        """The nodes alive now, each with its info."""
        try:
            keys = sorted(self.client.scan_iter(match=NODE_PREFIX + "*", count=500))
            values = self.client.mget(keys) if keys else []
        except self._errors as exc:
            raise self._unavailable("list the live nodes", exc) from None
        out = {}
        for key, value in zip(keys, values, strict=True):
            if value is not None:
                name = (key.decode() if isinstance(key, bytes) else key)[len(NODE_PREFIX):]
                out[name] = json.loads(value)
        return out

    def close(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread.join(timeout=5)
        if self._pubsub is not None:
            self._pubsub.close()
        self.client.close()


def signals_for(redis_url: str | None, transport: Any) -> Signals:
    """Redis signals when Redis is configured, else the transport's."""
    return RedisSignals(redis_url) if redis_url else TransportSignals(transport)

