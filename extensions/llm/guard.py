"""What stands between a step and a model provider: retries, a circuit breaker per provider
and a rate limit per provider. Every call to a provider (litellm's in `client`, the provider
extensions' HTTP in `rest`) goes through `guarded`.

- **Retries.** A failure worth another try (a 429, a 5xx, a refused connection, a timeout) is
  tried again after what the provider's `retry-after` says, else 0.5 s doubling, up to
  LEGION_LLM_RETRIES more times (2), never waiting more than RETRY_CAP at once.
- **Circuit breaker** (per provider, per process). After LEGION_LLM_BREAKER_FAILURES (3) outages
  in a row (a 5xx, a refused connection, a timeout; not a 429, which says the provider is up)
  the provider's circuit opens: calls fail at once with `LlmCircuitOpen` (a chain may fall back
  to another model) for LEGION_LLM_BREAKER_COOLDOWN seconds (60). Then one call is let through:
  its success closes the circuit, its failure opens it again.
- **Rate limit** (per provider, for the whole deployment). LEGION_LLM_RPM and LEGION_LLM_TPM cap
  requests and tokens per minute for each provider; LEGION_LLM_RPM_<PROVIDER> and
  LEGION_LLM_TPM_<PROVIDER> (e.g. LEGION_LLM_TPM_ANTHROPIC) set one provider's own. A call
  over the limit waits for the next minute. The counts live in Redis when LEGION_REDIS_URL is
  set, so every worker of the deployment shares them; else in this process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from legion.sdk import StepError

log = logging.getLogger("legion.ext.llm")
T = TypeVar("T")
RETRY_CAP = 30.0  # seconds: the longest wait between two tries, whatever retry-after asks
WINDOW = 60.0  # seconds: the rate limit's window ("per minute")
MAX_LIMIT_WAIT = 300.0  # seconds a call waits for the rate limit before it fails


@dataclass(frozen=True)
class Fault:
    """How a failed try is handled: `error` is what the step says if no try is left."""

    error: StepError
    again: bool = False  # worth another try
    outage: bool = False  # counts against the provider's circuit breaker
    wait: float | None = None  # what the provider's retry-after asks


def setting(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(name, default)))
    except ValueError:
        return default


def retries() -> int:
    return int(setting("LEGION_LLM_RETRIES", 2))


def guarded(provider: str, kind: str, attempt: Callable[[], T], fault: Callable[[Exception, int], Fault], *,
            tokens: Callable[[T], int] = lambda _: 0) -> tuple[T, float]:
    """`attempt()` with the retries, breaker and rate limit above: what it returned, and how
    long the try that succeeded took (ms). `fault(exc, tries)` sorts a failure; `tokens(result)`
    says what a success spent (charged to the rate limit)."""
    tries = retries() + 1
    wait = 0.5
    for n in range(1, tries + 1):
        BREAKER.before(provider, kind)
        LIMITS.acquire(provider, kind)
        started = time.perf_counter()
        try:
            result = attempt()
        except StepError:
            BREAKER.neutral(provider)
            raise
        except Exception as exc:  # noqa: BLE001 -- every provider failure is sorted by `fault`
            found = fault(exc, n)
            BREAKER.failed(provider) if found.outage else BREAKER.neutral(provider)
            if not found.again or n == tries:
                raise found.error from None
            time.sleep(min(RETRY_CAP, found.wait if found.wait is not None else wait))
            wait *= 2
            continue
        latency = (time.perf_counter() - started) * 1e3
        BREAKER.succeeded(provider)
        LIMITS.spend(provider, tokens(result))
        return result, latency
    raise AssertionError("unreachable")


class Breaker:
    """A circuit per provider: closed, open (failing at once) or half open (one trial call)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._opened: dict[str, float] = {}
        self._trial: set[str] = set()

    def before(self, provider: str, kind: str) -> None:
        with self._lock:
            opened = self._opened.get(provider)
            if opened is None:
                return
            cooldown = setting("LEGION_LLM_BREAKER_COOLDOWN", 60)
            left = opened + cooldown - self.clock()
            if left <= 0 and provider not in self._trial:
                self._trial.add(provider)  # half open: this call is the trial
                return
        detail = f"tried again in {left:.0f}s" if left > 0 else "a trial call is under way"
        raise StepError(f"{kind}: the circuit for provider {provider!r} is open after repeated failures ({detail}); "
                        f"a step's `fallbacks` may name a model of another provider", type="LlmCircuitOpen")

    def failed(self, provider: str) -> None:
        with self._lock:
            count = self._failures.get(provider, 0) + 1
            self._failures[provider] = count
            if provider in self._trial or count >= setting("LEGION_LLM_BREAKER_FAILURES", 3):
                if provider not in self._opened or provider in self._trial:
                    log.warning("the circuit for provider %s opens after %d failures in a row", provider, count)
                self._opened[provider] = self.clock()
            self._trial.discard(provider)

    def succeeded(self, provider: str) -> None:
        with self._lock:
            if provider in self._opened:
                log.info("the circuit for provider %s closes", provider)
            self._failures.pop(provider, None)
            self._opened.pop(provider, None)
            self._trial.discard(provider)

    def neutral(self, provider: str) -> None:
        """A failure that says nothing about the provider's health (bad input, a 429): a
        trial call that ends so lets the next one try."""
        with self._lock:
            self._trial.discard(provider)

    def state(self, provider: str) -> str:
        with self._lock:
            if provider not in self._opened:
                return "closed"
            return "half_open" if provider in self._trial else "open"

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()
            self._opened.clear()
            self._trial.clear()


class Limits:
    """Requests and tokens per provider per minute window, counted in Redis (shared by the
    deployment's workers) when LEGION_REDIS_URL is set, else here."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, int], int] = {}
        self._redis: Any = None
        self._redis_url: str | None = None

    @staticmethod
    def limit(kind: str, provider: str) -> int:
        own = os.environ.get(f"LEGION_LLM_{kind}_{provider.upper().replace('-', '_')}")
        value = own if own is not None else os.environ.get(f"LEGION_LLM_{kind}", "0")
        try:
            return max(0, int(value))
        except ValueError:
            raise StepError(f"LEGION_LLM_{kind} must be a whole number (0 for no limit), not {value!r}",
                            type="InvalidArguments") from None

    def acquire(self, provider: str, kind: str) -> int | None:
        """Take one request of the window, waiting for the next window while this one's
        requests or tokens are spent: the window it was taken in (None: no limit)."""
        rpm, tpm = self.limit("RPM", provider), self.limit("TPM", provider)
        if not rpm and not tpm:
            return None
        deadline = time.monotonic() + MAX_LIMIT_WAIT
        while True:
            window = int(time.time() // WINDOW)
            if (not tpm or self._count("tokens", provider, window) < tpm) and (not rpm or self._add("requests", provider, window, 1) <= rpm):
                return window
            pause = (window + 1) * WINDOW - time.time()
            if time.monotonic() + pause > deadline:
                raise StepError(f"{kind}: the rate limit for provider {provider!r} ({rpm or '-'} requests, {tpm or '-'} tokens "
                                f"per minute) left no room for {MAX_LIMIT_WAIT:.0f}s", type="LlmRateLimited")
            log.info("%s waits %.1fs for provider %s's rate limit", kind, pause, provider)
            time.sleep(max(0.01, pause))

    def spend(self, provider: str, tokens: int) -> None:
        if tokens > 0 and self.limit("TPM", provider):
            self._add("tokens", provider, int(time.time() // WINDOW), tokens)

    def _add(self, what: str, provider: str, window: int, amount: int) -> int:
        client = self._client()
        if client is not None:
            key = f"legion:llm:{what}:{provider}:{window}"
            with _shared(), client.pipeline() as pipe:
                pipe.incrby(key, amount)
                pipe.expire(key, int(WINDOW * 2) + 1)
                return int(pipe.execute()[0])
        with self._lock:
            self._forget(window)
            key3 = (what, provider, window)
            self._counts[key3] = self._counts.get(key3, 0) + amount
            return self._counts[key3]

    def _count(self, what: str, provider: str, window: int) -> int:
        client = self._client()
        if client is not None:
            with _shared():
                return int(client.get(f"legion:llm:{what}:{provider}:{window}") or 0)
        with self._lock:
            return self._counts.get((what, provider, window), 0)

    def _forget(self, window: int) -> None:
        for key in [k for k in self._counts if k[2] < window]:
            del self._counts[key]

    def _client(self) -> Any:
        url = os.environ.get("LEGION_REDIS_URL") or None
        if url != self._redis_url:
            self._redis_url, self._redis = url, None
            if url:
                import redis

                from legion.engine.secrets import resolve_setting, store_from_env

                resolved = resolve_setting("LEGION_REDIS_URL", url, os.environ, lambda: store_from_env(os.environ))
                self._redis = redis.Redis.from_url(resolved or url, socket_timeout=5, socket_connect_timeout=5)
        return self._redis

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


@contextlib.contextmanager
def _shared() -> Iterator[None]:
    import redis

    try:
        yield
    except redis.exceptions.RedisError as exc:
        raise StepError(f"the language-model rate limit is kept in Redis, which cannot be reached ({type(exc).__name__}: {exc}): "
                        "check LEGION_REDIS_URL and that Redis is up", type="ServiceUnavailable") from None


BREAKER = Breaker()
LIMITS = Limits()
