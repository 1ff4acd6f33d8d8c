"""The `claude` extension against a fake Anthropic API on 127.0.0.1: every operation's request
(method, path, x-api-key, anthropic-version, anthropic-beta, body) and result, streamed
messages, usage in the shape run show sums, and failures as typed errors with no key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ext_calls import failed, nowhere, ok, tokens
from fake_anthropic import FakeAnthropic, error_body, message_body, tool_use_body

KEY = "sk-ant-claude-ext-0123456789"


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropic]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("LEGION_LLM_RETRIES", "2")
    with FakeAnthropic() as server:
        monkeypatch.setenv("LEGION_CLAUDE_API_BASE", server.url)  # the setting; some calls give api_base instead
        yield server


def sent(fake: FakeAnthropic, method: str, route: str) -> dict:
    """The one request made, checked for its method, path and Anthropic's headers; its body."""
    (request,) = fake.requests
    assert (request.method, request.route) == (method, route)
    assert request.headers["x-api-key"] == KEY and request.headers["anthropic-version"] == "2023-06-01"
    fake.requests.clear()
    return request.body if isinstance(request.body, dict) else {}


def test_create_sends_every_option_and_answers_the_message(fake: FakeAnthropic) -> None:
    fake.answer(200, tool_use_body("weather", {"city": "Paris"}, text="Let me look.", input_tokens=30, output_tokens=12),
                {"anthropic-ratelimit-requests-remaining": "49"})
    tools = [{"name": "weather", "description": "the weather in a city",
              "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    done = ok("claude.messages.create", model="claude-test", prompt="Weather in Paris?", max_tokens=300, system="be brief",
              cache_system=True, temperature=0.5, top_p=0.9, top_k=40, stop_sequences=["END"], metadata={"user_id": "u1"},
              tools=tools, tool_choice="weather", thinking=1024, betas=["context-1m-2025-08-07"], extra={"service_tier": "auto"},
              api_key=KEY)
    (request,) = fake.requests
    assert request.headers["anthropic-beta"] == "context-1m-2025-08-07,interleaved-thinking-2025-05-14"
    body = sent(fake, "POST", "/v1/messages")
    assert body == {"model": "claude-test", "messages": [{"role": "user", "content": "Weather in Paris?"}], "max_tokens": 300,
                    "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
                    "temperature": 0.5, "top_p": 0.9, "top_k": 40, "stop_sequences": ["END"], "metadata": {"user_id": "u1"},
                    "tools": tools, "tool_choice": {"type": "tool", "name": "weather"},
                    "thinking": {"type": "enabled", "budget_tokens": 1024}, "service_tier": "auto"}
    assert done["result"]["stop_reason"] == "tool_use" and done["result"]["content"][1]["input"] == {"city": "Paris"}
    assert done["text"] == "Let me look." and done["status"] == 200
    assert done["rate_limit"] == {"requests-remaining": "49"}
    tokens(done["usage"], 30, 12)
    nowhere(KEY, done)


def test_create_with_messages_and_the_usual_defaults(fake: FakeAnthropic) -> None:
    fake.answer(200, {**message_body("hi"), "usage": {"input_tokens": 5, "cache_read_input_tokens": 100,
                                                      "cache_creation_input_tokens": 20, "output_tokens": 2}})
    conversation = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}, {"role": "user", "content": "again"}]
    done = ok("claude.messages.create", model="claude-test", messages=conversation, tool_choice="any")
    body = sent(fake, "POST", "/v1/messages")
    assert body == {"model": "claude-test", "messages": conversation, "max_tokens": 1024, "tool_choice": {"type": "any"}}
    tokens(done["usage"], 125, 2)  # the prompt counts what was read from and written to the cache


def test_create_stream_reads_the_events_to_the_end(fake: FakeAnthropic) -> None:
    done = ok("claude.messages.create_stream", model="claude-test", prompt="tell me a story", system="short")
    body = sent(fake, "POST", "/v1/messages")
    assert body["stream"] is True and body["system"] == "short"
    assert done["text"] == "echo: tell me a story"
    assert [e["event"] for e in done["events"]] == ["message_start", "content_block_start", "ping", "content_block_delta",
                                                   "content_block_delta", "content_block_delta", "content_block_stop",
                                                   "message_delta", "message_stop"]
    assert done["result"]["content"] == [{"type": "text", "text": "echo: tell me a story"}]
    assert done["result"]["stop_reason"] == "end_turn"
    tokens(done["usage"], 7, 3)
    fake.answer(200, tool_use_body("weather", {"city": "Oslo", "days": [1, 2]}, text="Looking.", output_tokens=9))
    tool = ok("claude.messages.create_stream", model="claude-test", prompt="weather?", tools=[{"name": "weather", "input_schema": {}}])
    assert tool["result"]["content"][1] == {"type": "tool_use", "id": "toolu_01", "name": "weather", "input": {"city": "Oslo", "days": [1, 2]}}
    assert tool["result"]["stop_reason"] == "tool_use" and tool["text"] == "Looking."
    tokens(tool["usage"], 7, 9)


def test_an_error_event_in_the_stream_fails_the_step(fake: FakeAnthropic) -> None:
    stream = ('event: message_start\ndata: {"type": "message_start", "message": {"id": "m", "content": [], "usage": {}}}\n\n'
              'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n')
    fake.answer(200, stream, {"content-type": "text/event-stream"})
    error = failed("claude.messages.create_stream", model="claude-test", prompt="x")
    assert error["type"] == "LlmError" and "Overloaded" in error["message"]


def test_count_tokens(fake: FakeAnthropic) -> None:
    done = ok("claude.messages.count_tokens", model="claude-test", prompt="one two three four", system="s",
              tools=[{"name": "t", "input_schema": {}}], api_base=fake.url)
    body = sent(fake, "POST", "/v1/messages/count_tokens")
    assert body == {"model": "claude-test", "messages": [{"role": "user", "content": "one two three four"}], "system": "s",
                    "tools": [{"name": "t", "input_schema": {}}]}
    assert done["input_tokens"] == 4 and done["result"] == {"input_tokens": 4} and "usage" not in done


def test_models(fake: FakeAnthropic) -> None:
    page = {"data": [{"type": "model", "id": "claude-test", "display_name": "Claude Test", "created_at": "2025-01-01T00:00:00Z"}],
            "has_more": False, "first_id": "claude-test", "last_id": "claude-test"}
    fake.route("GET", "/v1/models", page)
    fake.route("GET", "/v1/models/*", page["data"][0])
    assert ok("claude.models.list", limit=5, after_id="claude-old")["result"] == page
    (request,) = fake.requests
    assert request.query == {"limit": "5", "after_id": "claude-old"}  # before_id, not given, is not sent
    sent(fake, "GET", "/v1/models")
    assert ok("claude.models.retrieve", model_id="claude-test")["result"]["display_name"] == "Claude Test"
    sent(fake, "GET", "/v1/models/claude-test")


def test_batches(fake: FakeAnthropic) -> None:
    batch = {"id": "msgbatch_1", "type": "message_batch", "processing_status": "in_progress",
             "request_counts": {"processing": 2, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}}
    fake.route("POST", "/v1/messages/batches", batch)
    fake.route("GET", "/v1/messages/batches", {"data": [batch], "has_more": False, "first_id": "msgbatch_1", "last_id": "msgbatch_1"})
    fake.route("GET", "/v1/messages/batches/msgbatch_1", {**batch, "processing_status": "ended"})
    fake.route("POST", "/v1/messages/batches/msgbatch_1/cancel", {**batch, "processing_status": "canceling"})
    lines = [{"custom_id": "a", "result": {"type": "succeeded", "message": message_body("A", input_tokens=10, output_tokens=4)}},
             {"custom_id": "b", "result": {"type": "errored", "error": {"type": "invalid_request_error", "message": "bad"}}},
             {"custom_id": "c", "result": {"type": "succeeded", "message": message_body("C", input_tokens=6, output_tokens=1)}}]
    fake.route("GET", "/v1/messages/batches/msgbatch_1/results", "\n".join(json.dumps(line) for line in lines).encode() + b"\n",
               headers={"content-type": "application/binary"})
    requests = [{"custom_id": "a", "params": {"model": "claude-test", "max_tokens": 10, "messages": [{"role": "user", "content": "A?"}]}},
                {"custom_id": "b", "params": {"model": "claude-test", "max_tokens": 10, "messages": [{"role": "user", "content": "B?"}]}}]
    assert ok("claude.batches.create_batch", requests=requests)["result"] == batch
    assert sent(fake, "POST", "/v1/messages/batches") == {"requests": requests}
    assert ok("claude.batches.list_batches", limit=10)["result"]["data"] == [batch]
    sent(fake, "GET", "/v1/messages/batches")
    assert ok("claude.batches.retrieve_batch", batch_id="msgbatch_1")["result"]["processing_status"] == "ended"
    sent(fake, "GET", "/v1/messages/batches/msgbatch_1")
    assert ok("claude.batches.cancel_batch", batch_id="msgbatch_1")["result"]["processing_status"] == "canceling"
    sent(fake, "POST", "/v1/messages/batches/msgbatch_1/cancel")
    results = ok("claude.batches.batch_results", batch_id="msgbatch_1")
    assert results["result"] == lines
    tokens(results["usage"], 16, 5)  # summed over the succeeded messages
    sent(fake, "GET", "/v1/messages/batches/msgbatch_1/results")


def test_a_429_is_tried_again_after_retry_after_and_a_529_too(fake: FakeAnthropic) -> None:
    fake.answer(429, error_body("rate_limit_error", "slow down"), {"retry-after": "0.4"})
    fake.answer(529, error_body("overloaded_error", "Overloaded"), {"retry-after": "0.1"})
    done = ok("claude.messages.create", model="claude-test", prompt="again")
    times = [r.at for r in fake.requests]
    assert len(times) == 3 and times[1] - times[0] >= 0.4 and times[2] - times[1] >= 0.1
    assert done["text"] == "echo: again"
    for _ in range(3):
        fake.answer(429, error_body("rate_limit_error", "slow down"), {"retry-after": "0"})
    error = failed("claude.messages.create", model="claude-test", prompt="x")
    assert error["type"] == "LlmRateLimited" and "slow down" in error["message"]


def test_errors_are_typed_and_hold_no_key(fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGION_LLM_RETRIES", "0")
    for status, kind, said, expected in [(401, "authentication_error", f"invalid x-api-key: {KEY}", "LlmAuthenticationFailed"),
                                         (403, "permission_error", "not allowed", "LlmAuthenticationFailed"),
                                         (400, "invalid_request_error", "max_tokens: Field required", "InvalidArguments"),
                                         (404, "not_found_error", "model: claude-nope", "NotFound"),
                                         (529, "overloaded_error", "Overloaded", "LlmError")]:
        fake.answer(status, error_body(kind, said))
        error = failed("claude.messages.create", model="claude-test", prompt="x")
        assert error["type"] == expected, (status, error)
        nowhere(KEY, error)
        if status != 401:
            assert said in error["message"]  # the provider's own words


def test_without_a_key_nothing_is_sent(fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    error = failed("claude.models.list")
    assert error["type"] == "LlmAuthenticationFailed" and "ANTHROPIC_API_KEY" in error["message"] and "api_key" in error["message"]
    assert fake.requests == []


def test_a_slow_answer_is_a_timeout(fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGION_LLM_RETRIES", "0")
    fake.answer(200, None, delay=2)
    assert failed("claude.messages.create", model="claude-test", prompt="x", timeout=0.3)["type"] == "Timeout"


def test_legion_task_run(fake: FakeAnthropic, tmp_path: Path) -> None:
    env = dict(os.environ, LEGION_HOME=str(tmp_path / "home"))
    env.pop("LEGION_DATABASE_URL", None)
    proc = subprocess.run([sys.executable, "-m", "legion.engine.cli.main", "task", "run", "claude.messages.create",
                           "model=claude-test", "prompt=hi", "max_tokens=50", "--json"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"text": "echo: hi"' in proc.stdout and KEY not in proc.stdout
    assert fake.requests[0].body["max_tokens"] == 50
