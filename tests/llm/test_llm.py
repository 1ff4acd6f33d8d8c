"""The `llm` extension on litellm's real HTTP path, against a fake OpenAI-compatible server on
127.0.0.1: answers, usage, retries that honour retry-after, answers checked against a JSON
Schema, embeddings, and each failure as one clear step error without any key in it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAI, chat_body

from legion.engine.invoke import call
from legion.engine.registry import Registry

KEY = "sk-test-0123456789abcdef"
REGISTRY = Registry.discover()


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("LEGION_LLM_RETRIES", "2")
    monkeypatch.delenv("LEGION_LLM_MODEL", raising=False)
    with FakeOpenAI() as server:
        yield server


def run(ref: str, **args: Any) -> Any:
    return call(REGISTRY.function(ref), args, None)


def test_complete_answers_with_text_and_usage(fake: FakeOpenAI) -> None:
    done = run("llm.chat.complete", prompt="hello", system="be brief", model="openai/local", api_base=fake.url, temperature=0.1)
    assert done.status == "succeeded", done.error
    assert done.result["text"] == "echo: hello"
    usage = done.result["usage"]
    assert usage["first_token_ms"] <= usage["latency_ms"]  # no max_tokens: it may be long, so it was streamed
    assert usage | {"latency_ms": 0, "cost": None, "first_token_ms": 0} == {
        "prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10, "latency_ms": 0, "cost": None, "first_token_ms": 0}
    _, path, body, headers = fake.requests[0]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert path == "/v1/chat/completions" and body["model"] == "local" and body["temperature"] == 0.1
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    assert headers["authorization"] == f"Bearer {KEY}"  # the provider's variable


def test_a_429_is_tried_again_after_what_retry_after_says(fake: FakeOpenAI) -> None:
    fake.answer(429, {"error": {"message": "slow down", "type": "rate_limit"}}, {"retry-after": "0.4"})
    fake.answer(503, {"error": {"message": "busy"}})
    done = run("llm.chat.complete", prompt="again", model="openai/local", api_base=fake.url)
    assert done.status == "succeeded", done.error
    times = [t for t, *_ in fake.requests]
    assert len(times) == 3 and times[1] - times[0] >= 0.4  # retry-after honoured, never earlier
    for _ in range(3):
        fake.answer(429, {"error": {"message": "slow down"}}, {"retry-after": "0"})
    failed = run("llm.chat.complete", prompt="x", model="openai/local", api_base=fake.url)
    assert (failed.status, failed.error["type"]) == ("failed", "LlmRateLimited")
    assert "after 3 tries" in failed.error["message"]


def test_structured_sends_back_what_does_not_fit_and_returns_the_value(fake: FakeOpenAI) -> None:
    schema = {"type": "object", "required": ["title", "words"], "properties": {"title": {"type": "string"}, "words": {"type": "integer"}}}
    fake.answer(200, chat_body("Sure! Here it is."))
    fake.answer(200, chat_body('{"title": "x", "words": "many"}'))
    fake.answer(200, chat_body('```json\n{"title": "Legion", "words": 3}\n```'))
    done = run("llm.chat.structured", schema=schema, prompt="summarise", model="openai/local", api_base=fake.url)
    assert done.status == "succeeded", done.error
    assert done.result["value"] == {"title": "Legion", "words": 3} and done.result["attempts"] == 3
    assert done.result["usage"]["total_tokens"] == 30  # summed over the attempts
    third = fake.requests[2][2]["messages"]
    assert "not JSON" in third[-3]["content"] and "at words: 'many' is not of type 'integer'" in third[-1]["content"]
    for _ in range(2):
        fake.answer(200, chat_body("nope"))
    never = run("llm.chat.structured", schema=schema, prompt="x", model="openai/local", api_base=fake.url, attempts=2)
    assert (never.status, never.error["type"]) == ("failed", "LlmAnswerInvalid")


def test_embeddings(fake: FakeOpenAI) -> None:
    done = run("llm.embeddings.create", input=["ab", "abcd"], model="openai/embed", api_base=fake.url)
    assert done.status == "succeeded", done.error
    assert done.result["embeddings"] == [[2.0, 0.5, -1.0], [4.0, 0.5, -1.0]]


def test_failures_are_one_clear_error_with_no_key_in_it(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = run("llm.chat.complete", prompt="x")
    assert (missing.error["type"], "LEGION_LLM_MODEL" in missing.error["message"]) == ("InvalidArguments", True)
    bare = run("llm.chat.complete", prompt="x", model="gpt-nothing")
    assert bare.error["type"] == "InvalidArguments" and "provider/name" in bare.error["message"]
    both = run("llm.chat.complete", model="openai/local", api_base=fake.url)
    assert both.error["type"] == "InvalidArguments"
    fake.answer(401, {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error"}})
    refused = run("llm.chat.complete", prompt="x", model="openai/local", api_base=fake.url)
    assert refused.error["type"] == "LlmAuthenticationFailed"
    assert KEY not in str(refused.error) and KEY[:12] not in str(refused.error)
    fake.answer(404, {"error": {"message": "The model `nope` does not exist"}})
    unknown = run("llm.chat.complete", prompt="x", model="openai/nope", api_base=fake.url)
    assert unknown.error["type"] == "LlmModelNotFound"
    monkeypatch.setenv("LEGION_LLM_RETRIES", "0")
    down = run("llm.chat.complete", prompt="x", model="openai/local", api_base="http://127.0.0.1:9/v1", timeout=5)
    assert down.error["type"] in ("LlmUnreachable", "Timeout")


def test_legion_task_run_talks_to_a_local_openai_compatible_server(fake: FakeOpenAI, tmp_path: Path) -> None:
    env = dict(os.environ, LEGION_HOME=str(tmp_path / "home"), OPENAI_API_KEY=KEY)
    env.pop("LEGION_DATABASE_URL", None)
    proc = subprocess.run([sys.executable, "-m", "legion.engine.cli.main", "task", "run", "llm.chat.complete", "prompt=hi",
                           "model=openai/local", f"api_base={fake.url}"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '"text": "echo: hi"' in proc.stdout


def test_commands_that_need_no_model_never_import_litellm(tmp_path: Path) -> None:
    env = dict(os.environ, LEGION_HOME=str(tmp_path / "home"))
    for args in (["--version"], ["lex", "list"]):
        code = ("import sys; from legion.engine.cli.main import main\n"
                f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
                "assert 'litellm' not in sys.modules, 'litellm was imported'")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr


def test_the_summarise_example_runs_for_real_against_local_servers(fake: FakeOpenAI, tmp_path: Path) -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Page(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            raw = b"<h1>Legion</h1><p>An extensible job engine.</p>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    page = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=page.serve_forever, daemon=True).start()
    fake.answer(200, chat_body("Legion is a job engine. It runs chains. It scales."))
    fake.answer(200, chat_body('{"title": "Legion", "topics": ["jobs", "chains"]}'))
    env = dict(os.environ, LEGION_HOME=str(tmp_path / "home"), OPENAI_API_KEY=KEY, OPENAI_API_BASE=fake.url)
    env.pop("LEGION_DATABASE_URL", None)
    root = Path(__file__).resolve().parents[2]
    legion = [sys.executable, "-m", "legion.engine.cli.main"]
    try:
        subprocess.run([*legion, "chain", "apply", str(root / "chains" / "examples" / "summarise.yaml")], env=env, check=True,
                       capture_output=True, timeout=120)
        proc = subprocess.run([*legion, "chain", "run", "summarise", f"url=http://127.0.0.1:{page.server_address[1]}/",
                               "model=openai/local", "--json"], env=env, capture_output=True, text=True, timeout=120)
    finally:
        page.shutdown()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = json.loads(proc.stdout)["data"]
    assert run["output"] == {"summary": "Legion is a job engine. It runs chains. It scales.", "title": "Legion", "topics": ["jobs", "chains"]}
    assert "An extensible job engine." in fake.requests[0][2]["messages"][-1]["content"]  # the page went to the model
    assert KEY not in proc.stdout
    assert run["usage"] | {"latency_ms": 0} == {"calls": 2, "prompt_tokens": 14, "completion_tokens": 6, "cost": None, "latency_ms": 0}
    shown = subprocess.run([*legion, "run", "show", run["id"]], env=env, capture_output=True, text=True, timeout=120).stdout
    assert "models: 2 call(s), 14 tokens in, 6 out, unknown cost" in shown


def test_a_model_that_keeps_failing_falls_back_to_the_next(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGION_LLM_RETRIES", "1")
    for _ in range(2):
        fake.answer(503, {"error": {"message": "overloaded"}})
    done = run("llm.chat.complete", prompt="hi", model="openai/primary", fallbacks=["openai/secondary"], api_base=fake.url)
    assert done.status == "succeeded", done.error
    assert done.result["model"] == "openai/secondary"
    assert [body["model"] for _, _, body, _ in fake.requests] == ["primary", "primary", "secondary"]
    fake.answer(401, {"error": {"message": "bad key"}})  # another model would not help: no fallback
    refused = run("llm.chat.complete", prompt="hi", model="openai/primary", fallbacks=["openai/secondary"], api_base=fake.url)
    assert refused.error["type"] == "LlmAuthenticationFailed" and len(fake.requests) == 4
    monkeypatch.setenv("LEGION_LLM_FALLBACKS", "openai/tertiary")
    fake.answer(404, {"error": {"message": "no such model"}})
    third = run("llm.chat.complete", prompt="hi", model="openai/gone", api_base=fake.url)
    assert third.status == "succeeded" and third.result["model"] == "openai/tertiary"
