"""`llm.agent.run`: a model (a fake OpenAI-compatible server on 127.0.0.1, through litellm's
real HTTP path) that calls Legion functions as tools. Each call is a task of the run recorded
under the agent's step; results and errors go back to the model; bad input from the model is
told to it; a model that never stops is stopped; a cancel reaches a running tool."""

from __future__ import annotations

import json
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from embedded import embedded_service
from fake_openai import FakeOpenAI, chat_body, tool_call_body

from legion.engine.registry import Registry
from legion.engine.service import Service
from legion.sdk import Context, Extension, StepError

KEY = "sk-agent-0123456789abcdef"
SLOW_STARTED = threading.Event()


def _desk() -> types.ModuleType:
    weather = types.ModuleType("weather")

    def lookup(city: str) -> dict[str, Any]:
        """The weather in a city now."""
        if city == "Atlantis":
            raise StepError(f"no station in {city}", type="NoStation")
        return {"city": city, "celsius": 3}

    def slow(ctx: Context) -> str:
        """Waits until canceled."""
        SLOW_STARTED.set()
        ctx.wait(60)
        return "canceled" if ctx.canceled else "done"

    weather.lookup, weather.slow = lookup, slow  # type: ignore[attr-defined]
    weather.__all__ = ["lookup", "slow"]  # type: ignore[attr-defined]
    return weather


INSTALLED = Registry.discover().extensions
REGISTRY = Registry([INSTALLED["core"], INSTALLED["llm"], Extension("desk", runners=[_desk()])])


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("LEGION_LLM_RETRIES", "0")
    with FakeOpenAI() as server:
        yield server


@pytest.fixture()
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    with embedded_service(tmp_path, monkeypatch, REGISTRY, workers=1) as service:
        yield service


def agent_chain(fake: FakeOpenAI, tools: list[str], max_steps: int = 5) -> str:
    return f"""
chain: forecast
steps:
  ask:
    run: llm.agent.run
    with:
      system: You answer questions about the weather.
      prompt: "{{{{ input.question }}}}"
      tools: {json.dumps(tools)}
      model: openai/local
      api_base: {fake.url}
      max_steps: {max_steps}
output: "{{{{ result.text }}}}"
"""


def test_the_model_calls_a_function_and_each_call_is_a_task_under_the_step(fake: FakeOpenAI, service: Service) -> None:
    fake.answer(200, tool_call_body("desk__weather__lookup", '{"city": "Oslo"}', "call_a"))
    fake.answer(200, tool_call_body("desk__weather__lookup", '{"city": "Atlantis"}', "call_b"))
    fake.answer(200, chat_body("3 degrees in Oslo; Atlantis has no station."))
    service.apply_chains(text=agent_chain(fake, ["desk.weather.lookup", "core.util.echo"]))
    run = service.start_run("forecast", {"question": "Weather in Oslo and Atlantis?"}, wait=True, timeout=60)
    assert run["status"] == "succeeded", run.get("error")
    assert run["output"] == "3 degrees in Oslo; Atlantis has no station."
    agent, oslo, atlantis = run["tasks"]
    assert (agent["step"], agent["function"], agent["caller"]) == ("ask", "llm.agent.run", None)
    assert (oslo["function"], oslo["status"], oslo["caller"], oslo["args"], oslo["result"]) == (
        "desk.weather.lookup", "succeeded", agent["number"], {"city": "Oslo"}, {"city": "Oslo", "celsius": 3})
    assert (atlantis["status"], atlantis["error"]["type"], atlantis["caller"]) == ("failed", "NoStation", agent["number"])
    assert run["trace"] == ["ask"]  # the calls are under the step, not steps of their own
    result = agent["result"]
    assert result["steps"] == 3 and [c["status"] for c in result["tool_calls"]] == ["succeeded", "failed"]
    assert result["usage"]["total_tokens"] == 30 and run["usage"]["calls"] == 1
    # What the model was offered, and what it was told.
    offered = fake.requests[0][2]["tools"]
    assert [t["function"]["name"] for t in offered] == ["desk__weather__lookup", "core__util__echo"]
    assert offered[0]["function"]["parameters"]["required"] == ["city"]
    assert offered[0]["function"]["description"] == "The weather in a city now."
    second = fake.requests[1][2]["messages"]
    assert second[-2]["tool_calls"][0]["id"] == "call_a"
    assert second[-1] == {"role": "tool", "tool_call_id": "call_a", "content": '{"city": "Oslo", "celsius": 3}'}
    told = json.loads(fake.requests[2][2]["messages"][-1]["content"])
    assert told == {"error": {"type": "NoStation", "message": "no station in Atlantis"}}
    # `legion task list` sees the calls as tasks of the run.
    listed = service.list_tasks(run_id=run["id"])
    assert sorted(t["function"] for t in listed) == ["desk.weather.lookup", "desk.weather.lookup", "llm.agent.run"]


def test_bad_input_from_the_model_is_told_to_it(fake: FakeOpenAI, service: Service) -> None:
    fake.answer(200, tool_call_body("desk__weather__lookup", '{"city": ', "c1"))  # not JSON
    fake.answer(200, tool_call_body("desk__weather__lookup", '["Oslo"]', "c2"))  # not an object
    fake.answer(200, tool_call_body("desk__weather__lookup", '{"town": "Oslo"}', "c3"))  # wrong arguments
    fake.answer(200, tool_call_body("shell__run", '{}', "c4"))  # no such tool
    fake.answer(200, chat_body("I give up."))
    service.apply_chains(text=agent_chain(fake, ["desk.weather.lookup"]))
    run = service.start_run("forecast", {"question": "?"}, wait=True, timeout=60)
    assert run["status"] == "succeeded", run.get("error")
    told = [json.loads(request[2]["messages"][-1]["content"])["error"] for request in fake.requests[1:]]
    assert [e["type"] for e in told] == ["InvalidArguments", "InvalidArguments", "InvalidArguments", "UnknownTool"]
    assert "not a JSON object" in told[0]["message"] and "city" in told[2]["message"]
    assert "desk__weather__lookup" in told[3]["message"]
    # Only the call with a JSON object became a task (and failed its argument check).
    calls = [t for t in run["tasks"] if t["caller"] is not None]
    assert [(t["args"], t["status"], t["error"]["type"]) for t in calls] == [({"town": "Oslo"}, "failed", "InvalidArguments")]


def test_a_model_that_never_stops_calling_tools_is_stopped(fake: FakeOpenAI, service: Service) -> None:
    for i in range(3):
        fake.answer(200, tool_call_body("desk__weather__lookup", '{"city": "Oslo"}', f"c{i}"))
    service.apply_chains(text=agent_chain(fake, ["desk.weather.lookup"], max_steps=3))
    run = service.start_run("forecast", {"question": "?"}, wait=True, timeout=60)
    assert run["status"] == "failed"
    assert run["error"]["type"] == "LlmToolLoopLimit" and "after 3 answers" in run["error"]["message"]
    assert len(fake.requests) == 3 and len([t for t in run["tasks"] if t["caller"] is not None]) == 3


def test_tools_that_are_not_installed_are_refused_before_any_model_call(fake: FakeOpenAI, service: Service) -> None:
    service.apply_chains(text=agent_chain(fake, ["desk.weather.nowhere"]))
    run = service.start_run("forecast", {"question": "?"}, wait=True, timeout=60)
    assert (run["status"], run["error"]["type"]) == ("failed", "InvalidArguments")
    assert "tools[0]" in run["error"]["message"] and "desk.weather.nowhere" in run["error"]["message"]
    assert fake.requests == []


def test_canceling_the_run_cancels_the_running_tool(fake: FakeOpenAI, service: Service) -> None:
    SLOW_STARTED.clear()
    fake.answer(200, tool_call_body("desk__weather__slow", "{}"))
    service.apply_chains(text=agent_chain(fake, ["desk.weather.slow"]))
    run_id = service.start_run("forecast", {"question": "?"})["id"]
    assert SLOW_STARTED.wait(30)
    service.cancel_run(run_id)
    deadline = time.monotonic() + 30
    while True:
        # (rows are written just behind the run: poll until it is there and finished)
        slow = next((t for t in service.list_tasks(run_id=run_id) if t["function"] == "desk.weather.slow"), None)
        if (slow is not None and slow["status"] != "running") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert service.get_run(run_id)["status"] == "canceled"
    assert slow is not None and slow["status"] == "succeeded" and slow["result"] == "canceled"  # it saw the cancel and returned at once
    assert len(fake.requests) == 1  # the model was not asked again


def test_a_key_from_the_secret_store_reaches_the_provider_and_no_record(fake: FakeOpenAI, service: Service,
                                                                         tmp_path: Path) -> None:
    import sqlite3

    from legion.engine.secrets import store_from_env

    secret_key = "sk-from-the-store-9f8e7d6c5b4a"
    store_from_env().write("llm/openai", "api_key", secret_key)
    fake.answer(200, tool_call_body("core__util__echo", '{"message": "key?"}'))
    fake.answer(401, {"error": {"message": f"Incorrect API key provided: {secret_key}"}})  # a provider that echoes the key
    service.apply_chains(text=agent_chain(fake, ["core.util.echo"]).replace(
        "max_steps: 5", "max_steps: 5\n      api_key: \"{{ secret('llm/openai#api_key') }}\""))
    run = service.start_run("forecast", {"question": "?"}, wait=True, timeout=60)
    assert run["status"] == "failed" and run["error"]["type"] == "LlmAuthenticationFailed"
    assert fake.requests[0][3]["authorization"] == f"Bearer {secret_key}"  # the secret was used
    with sqlite3.connect(tmp_path / "legion.db") as db:  # and is in no row of any table
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        dump = "\n".join(str(row) for table in tables for row in db.execute(f"SELECT * FROM {table}"))
    assert secret_key not in dump and secret_key[:16] not in dump and KEY not in dump
