"""The guard every provider call goes through: the circuit breaker per provider (its states on
a clock of the test's, then through `llm.chat.complete` against a fake server), and the rate
limit per provider (in a process, and shared through a real Redis by two "workers")."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fake_openai import FakeOpenAI
from services import redis_url

from legion.engine.invoke import call
from legion.engine.registry import Registry
from legion.extensions.llm import guard
from legion.sdk import StepError

REGISTRY = Registry.discover()


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-guard-0123456789")
    monkeypatch.setenv("LEGION_LLM_RETRIES", "0")
    for name in ("LEGION_LLM_RPM", "LEGION_LLM_TPM", "LEGION_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    with FakeOpenAI() as server:
        yield server


def ask(fake: FakeOpenAI, **more: Any) -> Any:
    return call(REGISTRY.function("llm.chat.complete"), {"prompt": "hi", "model": "openai/local", "api_base": fake.url,
                                                         "stream": False, **more}, None)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_circuit_opens_after_outages_in_a_row_and_one_trial_closes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGION_LLM_BREAKER_FAILURES", "3")
    monkeypatch.setenv("LEGION_LLM_BREAKER_COOLDOWN", "60")
    clock = Clock()
    breaker = guard.Breaker(clock)
    for _ in range(2):
        breaker.before("openai", "x")
        breaker.failed("openai")
    breaker.succeeded("openai")  # a success in between: the count starts again
    for _ in range(2):
        breaker.failed("openai")
    assert breaker.state("openai") == "closed"
    breaker.failed("openai")
    assert breaker.state("openai") == "open"
    with pytest.raises(StepError) as refused:
        breaker.before("openai", "llm.chat.complete")
    assert refused.value.type == "LlmCircuitOpen" and "tried again in 60s" in refused.value.message
    breaker.before("anthropic", "x")  # another provider is not affected
    clock.now += 60
    breaker.before("openai", "x")  # the trial
    assert breaker.state("openai") == "half_open"
    with pytest.raises(StepError, match="a trial call is under way"):
        breaker.before("openai", "x")  # only one at a time
    breaker.failed("openai")  # the trial failed: open again, for a whole cooldown
    assert breaker.state("openai") == "open"
    clock.now += 59
    with pytest.raises(StepError):
        breaker.before("openai", "x")
    clock.now += 1
    breaker.before("openai", "x")
    breaker.succeeded("openai")
    assert breaker.state("openai") == "closed"
    breaker.before("openai", "x")


def test_through_a_step_outages_open_the_circuit_and_a_429_does_not(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGION_LLM_BREAKER_FAILURES", "2")
    for _ in range(3):
        fake.answer(429, {"error": {"message": "slow down"}}, {"retry-after": "0"})
    assert [ask(fake).error["type"] for _ in range(3)] == ["LlmRateLimited"] * 3
    assert guard.BREAKER.state("openai") == "closed"
    for _ in range(2):
        fake.answer(503, {"error": {"message": "down"}})
    assert [ask(fake).error["type"] for _ in range(2)] == ["LlmError", "LlmError"]
    asked = len(fake.requests)
    shut = ask(fake)
    assert shut.error["type"] == "LlmCircuitOpen" and len(fake.requests) == asked  # failed at once, nothing sent
    monkeypatch.setenv("LEGION_LLM_BREAKER_COOLDOWN", "0")  # the next call is the trial
    assert ask(fake).status == "succeeded"
    assert guard.BREAKER.state("openai") == "closed"


@pytest.fixture()
def admitted(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """The window in which the rate limit let each call go. (A call's request reaches the
    provider a little later: litellm's first call takes a while to set up.)"""
    windows: list[int | None] = []
    acquire = guard.LIMITS.acquire

    def spy(provider: str, kind: str) -> int | None:
        windows.append(acquire(provider, kind))
        return windows[-1]

    monkeypatch.setattr(guard.LIMITS, "acquire", spy)
    return windows


def test_requests_per_minute_wait_for_the_next_window(fake: FakeOpenAI, admitted: list[int | None],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard, "WINDOW", 1.0)  # a "minute" of one second
    monkeypatch.setenv("LEGION_LLM_RPM", "2")
    monkeypatch.setenv("LEGION_LLM_RPM_ANTHROPIC", "50")  # another provider's own: not this one's
    for _ in range(5):
        assert ask(fake).status == "succeeded"
    per_window = Counter(admitted)
    assert sum(per_window.values()) == 5 and max(per_window.values()) <= 2 and len(per_window) >= 3


def test_tokens_per_minute_wait_for_the_next_window(fake: FakeOpenAI, admitted: list[int | None],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard, "WINDOW", 1.0)
    monkeypatch.setenv("LEGION_LLM_TPM_OPENAI", "15")  # each answer spends 10 tokens (the fake's usage)
    for _ in range(3):
        assert ask(fake).status == "succeeded"
    per_window = Counter(admitted)
    assert max(per_window.values()) <= 2 and len(per_window) >= 2  # a window's 15 are spent after two answers


def test_a_limit_that_is_not_a_number_is_a_clear_error(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGION_LLM_RPM", "lots")
    failed = ask(fake)
    assert failed.error["type"] == "InvalidArguments" and "LEGION_LLM_RPM" in failed.error["message"]
    assert fake.requests == []


@pytest.mark.integration
def test_the_limit_is_shared_by_workers_through_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGION_REDIS_URL", redis_url())
    monkeypatch.setattr(guard, "WINDOW", 1.0)
    provider = f"p{uuid.uuid4().hex[:8]}"  # keys of its own in the shared Redis
    monkeypatch.setenv(f"LEGION_LLM_RPM_{provider.upper()}", "3")
    workers = [guard.Limits(), guard.Limits()]  # two processes' worth: no count in common but Redis
    taken: list[int | None] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        for _ in range(3):
            window = workers[i].acquire(provider, "x")
            with lock:
                taken.append(window)

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(taken) == 6
    per_window = Counter(taken)
    assert max(per_window.values()) <= 3 and len(per_window) >= 2


def test_redis_that_cannot_be_reached_is_a_clear_error(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGION_REDIS_URL", "redis://127.0.0.1:9/0")
    monkeypatch.setenv("LEGION_LLM_RPM", "10")
    failed = ask(fake)
    assert failed.error["type"] == "ServiceUnavailable" and "LEGION_REDIS_URL" in failed.error["message"]
    assert fake.requests == []


def test_provider_answers_are_charged_to_the_tokens_per_minute_limit() -> None:
    from legion.extensions.llm.rest import Reply, spent

    assert spent(Reply(200, {}, {"usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})) == 7  # OpenAI
    assert spent(Reply(200, {}, {"usage": {"input_tokens": 11, "output_tokens": 4}})) == 15  # Anthropic
    assert spent(Reply(200, {}, {"usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 9}})) == 9  # Gemini
    stream = Reply(200, {}, None, events=[{"event": "message_start", "data": {"message": {"usage": {"input_tokens": 20,
                                                                                                   "output_tokens": 1}}}},
                                          {"event": "message_delta", "data": {"usage": {"input_tokens": 20, "output_tokens": 30}}}])
    assert spent(stream) == 50
    assert spent(Reply(200, {}, b"audio bytes")) == 0
