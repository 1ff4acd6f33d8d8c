"""The `llm` extension with Anthropic (`anthropic/<model>`) and Gemini (`gemini/<model>`) models,
on litellm's real HTTP path against fake servers on 127.0.0.1 that speak each provider's own
API: answers and usage, streamed answers, answers checked against a JSON Schema, embeddings,
the key in the provider's own header and nowhere in a result or an error, retry-after
honoured, and each failure as one clear step error."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fake_anthropic import FakeAnthropic, error_body, message_body, tool_use_body
from fake_gemini import FakeGemini, content_body, function_call_body
from fake_gemini import error_body as gemini_error
from fake_openai import FakeOpenAI, tool_call_body

from legion.engine.invoke import call
from legion.engine.registry import Registry

ANTHROPIC_KEY = "sk-ant-test-0123456789abcdef"
GEMINI_KEY = "AIza-test-0123456789abcdef"
REGISTRY = Registry.discover()


@pytest.fixture()
def anthropic(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropic]:
    _environment(monkeypatch)
    with FakeAnthropic() as server:
        yield server


@pytest.fixture()
def gemini(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGemini]:
    _environment(monkeypatch)
    with FakeGemini() as server:
        yield server


def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
    for name in ("GOOGLE_API_KEY", "ANTHROPIC_API_BASE", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "GEMINI_API_BASE",
                 "LEGION_LLM_MODEL", "LEGION_LLM_FALLBACKS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEGION_LLM_RETRIES", "2")


def run(ref: str, **args: Any) -> Any:
    function = REGISTRY.function(ref)
    if "stream" not in inspect.signature(function.call).parameters:
        args.pop("stream", None)
    return call(function, args, None)


def tokens(usage: dict[str, Any]) -> dict[str, Any]:
    return {k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")}


# -- Anthropic


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_answers_with_text_and_usage_and_the_key_in_x_api_key(anthropic: FakeAnthropic, stream: bool) -> None:
    done = run("llm.chat.complete", prompt="hello there", system="be brief", model="anthropic/claude-test",
               api_base=anthropic.url, temperature=0.2, max_tokens=100, stream=stream)
    assert done.status == "succeeded", done.error
    assert done.result["text"] == "echo: hello there" and done.result["model"] == "anthropic/claude-test"
    assert tokens(done.result["usage"]) == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert set(done.result["usage"]) >= {"cost", "latency_ms"}
    (request,) = anthropic.requests
    assert (request.method, request.route) == ("POST", "/v1/messages")
    assert request.headers["x-api-key"] == ANTHROPIC_KEY and request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    body = request.body
    assert body["model"] == "claude-test" and body["max_tokens"] == 100 and body["temperature"] == 0.2
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}]
    assert json.dumps(body["system"]).count("be brief") == 1
    assert bool(body.get("stream")) == (stream and "stream" in inspect.signature(REGISTRY.function("llm.chat.complete").call).parameters)
    assert ANTHROPIC_KEY not in json.dumps(done.result)


def test_anthropic_structured_sends_back_what_does_not_fit(anthropic: FakeAnthropic) -> None:
    schema = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}
    anthropic.answer(200, message_body('{"town": "Paris"}'))
    anthropic.answer(200, message_body('{"city": "Paris"}', input_tokens=20, output_tokens=5))
    done = run("llm.chat.structured", schema=schema, prompt="where?", model="anthropic/claude-structured", api_base=anthropic.url)
    assert done.status == "succeeded", done.error
    assert done.result["value"] == {"city": "Paris"} and done.result["attempts"] == 2
    assert tokens(done.result["usage"]) == {"prompt_tokens": 27, "completion_tokens": 8, "total_tokens": 35}
    second = anthropic.requests[1].body
    assert "JSON Schema" in json.dumps(second["system"])  # litellm moves the system messages to `system`
    assert "'city' is a required property" in json.dumps(second["messages"][-1])


def test_anthropic_429_is_tried_again_after_retry_after_and_529_too(anthropic: FakeAnthropic) -> None:
    anthropic.answer(429, error_body("rate_limit_error", "slow down"), {"retry-after": "0.4"})
    anthropic.answer(529, error_body("overloaded_error", "overloaded"), {"retry-after": "0.2"})
    done = run("llm.chat.complete", prompt="again", model="anthropic/claude-retry", api_base=anthropic.url, stream=False)
    assert done.status == "succeeded", done.error
    times = [r.at for r in anthropic.requests]
    assert len(times) == 3 and times[1] - times[0] >= 0.4 and times[2] - times[1] >= 0.2
    for _ in range(3):
        anthropic.answer(429, error_body("rate_limit_error", "slow down"), {"retry-after": "0"})
    failed = run("llm.chat.complete", prompt="x", model="anthropic/claude-retry", api_base=anthropic.url, stream=False)
    assert (failed.status, failed.error["type"]) == ("failed", "LlmRateLimited")
    assert "after 3 tries" in failed.error["message"] and "slow down" in failed.error["message"]


def test_anthropic_errors_are_one_clear_type_without_the_key(anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGION_LLM_RETRIES", "0")
    cases = [(401, "authentication_error", f"invalid x-api-key {ANTHROPIC_KEY}", "LlmAuthenticationFailed"),
             (404, "not_found_error", "model: claude-nope", "LlmModelNotFound"),
             (400, "invalid_request_error", "max_tokens: must be at most 8192", "LlmError"),
             (529, "overloaded_error", "Overloaded", "LlmError")]
    for status, kind, said, expected in cases:
        anthropic.answer(status, error_body(kind, said))
        failed = run("llm.chat.complete", prompt="x", model="anthropic/claude-errors", api_base=anthropic.url, stream=False)
        assert (failed.status, failed.error["type"]) == ("failed", expected), (status, failed.error)
        assert ANTHROPIC_KEY not in json.dumps(failed.error) and ANTHROPIC_KEY[:16] not in json.dumps(failed.error)
        if expected == "LlmError":
            assert said in failed.error["message"]  # the provider's own words


def test_anthropic_without_a_key_is_a_clear_error(anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    anthropic.answer(401, error_body("authentication_error", "x-api-key header is required"))
    failed = run("llm.chat.complete", prompt="x", model="anthropic/claude-nokey", api_base=anthropic.url, stream=False)
    assert (failed.status, failed.error["type"]) == ("failed", "LlmAuthenticationFailed")
    assert "api_key" in failed.error["message"]
    assert all("x-api-key" not in r.headers or not r.headers["x-api-key"] for r in anthropic.requests)


# -- Gemini


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_answers_with_text_and_usage_and_the_key_in_its_header(gemini: FakeGemini, stream: bool) -> None:
    done = run("llm.chat.complete", prompt="hello there", model="gemini/gemini-test", api_base=gemini.v1beta, temperature=0.2,
               max_tokens=100, stream=stream)
    assert done.status == "succeeded", done.error
    assert done.result["text"] == "echo: hello there"
    assert tokens(done.result["usage"]) == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    (request,) = gemini.requests
    streamed = stream and "stream" in inspect.signature(REGISTRY.function("llm.chat.complete").call).parameters
    action = "streamGenerateContent" if streamed else "generateContent"
    assert (request.method, request.route) == ("POST", f"/v1beta/models/gemini-test:{action}")
    assert request.query == ({"alt": "sse"} if streamed else {})  # the key is not in the URL
    assert request.headers["x-goog-api-key"] == GEMINI_KEY
    assert request.body["contents"] == [{"role": "user", "parts": [{"text": "hello there"}]}]
    assert request.body["generationConfig"] == {"temperature": 0.2, "max_output_tokens": 100} or \
        request.body["generationConfig"] == {"temperature": 0.2, "maxOutputTokens": 100}
    assert GEMINI_KEY not in json.dumps(done.result)


def test_gemini_structured_and_embeddings(gemini: FakeGemini) -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    gemini.answer(200, content_body("[1, 2, three]"))
    gemini.answer(200, content_body("```json\n[1, 2, 3]\n```"))
    done = run("llm.chat.structured", schema=schema, prompt="count", model="gemini/gemini-structured", api_base=gemini.v1beta)
    assert done.status == "succeeded", done.error
    assert done.result["value"] == [1, 2, 3] and done.result["attempts"] == 2
    assert done.result["usage"]["total_tokens"] == 20
    assert "not JSON" in json.dumps(gemini.requests[1].body["contents"][-1])
    vectors = run("llm.embeddings.create", input=["ab", "abcd"], model="gemini/text-embedding-004", api_base=gemini.v1beta)
    assert vectors.status == "succeeded", vectors.error
    assert vectors.result["embeddings"] == [[2.0, 0.5, -1.0], [4.0, 0.5, -1.0]]
    request = gemini.requests[-1]
    assert request.route == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert request.headers["x-goog-api-key"] == GEMINI_KEY
    assert [r["content"] for r in request.body["requests"]] == [{"parts": [{"text": "ab"}]}, {"parts": [{"text": "abcd"}]}]


def test_gemini_429_is_tried_again_after_retry_after(gemini: FakeGemini) -> None:
    gemini.answer(429, gemini_error(429, "Resource has been exhausted"), {"retry-after": "0.4"})
    gemini.answer(503, gemini_error(503, "The model is overloaded"))
    done = run("llm.chat.complete", prompt="again", model="gemini/gemini-retry", api_base=gemini.v1beta, stream=False)
    assert done.status == "succeeded", done.error
    times = [r.at for r in gemini.requests]
    assert len(times) == 3 and times[1] - times[0] >= 0.4


def test_gemini_errors_are_one_clear_type_without_the_key(gemini: FakeGemini, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGION_LLM_RETRIES", "0")
    cases = [(401, f"API key not valid: {GEMINI_KEY}", "LlmAuthenticationFailed"),
             (404, "models/gemini-nope is not found for API version v1beta", "LlmModelNotFound"),
             (400, "Invalid JSON payload received", "LlmError"),
             (429, "Resource has been exhausted", "LlmRateLimited")]
    for status, said, expected in cases:
        gemini.answer(status, gemini_error(status, said))
        failed = run("llm.chat.complete", prompt="x", model="gemini/gemini-errors", api_base=gemini.v1beta, stream=False)
        assert (failed.status, failed.error["type"]) == ("failed", expected), (status, failed.error)
        assert GEMINI_KEY not in json.dumps(failed.error) and GEMINI_KEY[:16] not in json.dumps(failed.error)
        if expected in ("LlmError", "LlmRateLimited"):
            assert said in failed.error["message"]  # the provider's own words


def test_gemini_without_a_key_says_which_variable_and_sends_nothing(gemini: FakeGemini, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.setenv("LEGION_LLM_RETRIES", "0")
    failed = run("llm.chat.complete", prompt="x", model="gemini/gemini-nokey", api_base=gemini.v1beta, stream=False)
    assert failed.status == "failed" and "GEMINI_API_KEY" in failed.error["message"], failed.error
    assert gemini.requests == []  # litellm refuses before sending anything


def test_gemini_without_a_key_is_an_authentication_failure(gemini: FakeGemini, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.setenv("LEGION_LLM_RETRIES", "0")
    failed = run("llm.chat.complete", prompt="x", model="gemini/gemini-nokey", api_base=gemini.v1beta, stream=False)
    assert failed.error["type"] == "LlmAuthenticationFailed", failed.error
    from legion.extensions.llm import guard

    assert guard.BREAKER.state("gemini") == "closed"  # a missing key says nothing of the provider's health


# -- the fakes themselves: close enough for litellm, tool calls included (what an agent loop reads)


@pytest.mark.parametrize("stream", [False, True])
def test_each_fake_answers_tool_calls_as_litellm_reads_them(stream: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    _environment(monkeypatch)
    from legion.extensions.llm import client

    lib = client.litellm()
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object",
                                                                                "properties": {"city": {"type": "string"}}}}}]
    with FakeOpenAI() as openai, FakeAnthropic() as anthropic, FakeGemini() as gemini:
        openai.answer(200, tool_call_body("weather", '{"city": "Paris"}'))
        anthropic.answer(200, tool_use_body("weather", {"city": "Paris"}, text="Looking."))
        gemini.answer(200, function_call_body("weather", {"city": "Paris"}))
        for model, base, key in (("openai/fake", openai.url, "sk-test"), ("anthropic/claude-tools", anthropic.url, ANTHROPIC_KEY),
                                 ("gemini/gemini-tools", gemini.v1beta, GEMINI_KEY)):
            answer = lib.completion(model=model, api_base=base, api_key=key, messages=[{"role": "user", "content": "weather?"}],
                                    tools=tools, stream=stream, num_retries=0)
            if stream:
                answer = lib.stream_chunk_builder(list(answer))
            (called,) = answer.choices[0].message.tool_calls
            assert (called.function.name, json.loads(called.function.arguments)) == ("weather", {"city": "Paris"}), model
            assert answer.choices[0].finish_reason == "tool_calls", model
        assert anthropic.requests[0].body["tools"][0]["name"] == "weather"
        assert gemini.requests[0].body["tools"][0]["function_declarations"][0]["name"] == "weather"


def test_a_slow_answer_is_a_timeout(anthropic: FakeAnthropic, gemini: FakeGemini, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGION_LLM_RETRIES", "0")
    anthropic.answer(200, None, delay=3)
    gemini.answer(200, None, delay=3)
    for model, base in (("anthropic/claude-slow", anthropic.url), ("gemini/gemini-slow", gemini.v1beta)):
        failed = run("llm.chat.complete", prompt="x", model=model, api_base=base, timeout=0.5, stream=False)
        assert (failed.status, failed.error["type"]) == ("failed", "Timeout"), failed.error


@pytest.mark.parametrize("model", ["ollama/llama3", "ollama_chat/llama3"])
def test_ollama_models_through_litellm(model: str) -> None:
    """A local Ollama (no key): `ollama/` models use /api/generate, `ollama_chat/` /api/chat."""
    from fake_ollama import FakeOllama

    with FakeOllama() as ollama:
        done = run("llm.chat.complete", prompt="hello there", model=model, api_base=ollama.root, stream=False)
        assert done.status == "succeeded", done.error
        [asked] = ollama.requests
        if model.startswith("ollama_chat"):
            last = asked.body["messages"][-1]
            assert asked.route == "/api/chat" and (last["role"], last["content"]) == ("user", "hello there")
            assert done.result["text"] == "echo: hello there"
        else:  # litellm puts the messages in Ollama's prompt template
            assert asked.route == "/api/generate" and "hello there" in asked.body["prompt"]
            assert done.result["text"] == f"echo: {asked.body['prompt']}"
        assert done.result["model"] == model
        assert (done.result["usage"]["prompt_tokens"], done.result["usage"]["completion_tokens"]) == (5, 2)
