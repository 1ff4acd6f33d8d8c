"""What a running function gets: the run context, one event loop for async functions,
declared options, and errors that say where they happened."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from legion.engine.invoke import call, run_async
from legion.engine.registry import Function
from legion.engine.sdk import Canceled, Context

PROBE = '''
from __future__ import annotations

import asyncio
import logging
import time

import httpx

from legion.sdk import Context, function

seen = []
client = httpx.AsyncClient()  # shared across calls: bound to the loop of its first call


def whoami(note: str, ctx: Context) -> dict:
    """Say what the context knows."""
    ctx.log.info("working on %s", note)
    return {"run": ctx.run_id, "chain": ctx.chain, "step": ctx.step, "attempt": ctx.attempt,
            "task": ctx.task_id, "function": ctx.function, "secret": ctx.secret("probe#token")}


async def fetch(url: str) -> int:
    logging.getLogger("probe").info("fetching")
    response = await client.get(url)
    return response.status_code


async def hang(ctx: Context) -> None:
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        seen.append("cancelled")
        raise


def patient(ctx: Context) -> str:
    if ctx.wait(60):
        seen.append("canceled")
        ctx.heartbeat()  # raises Canceled
    return "done"


@function(timeout="0.2s")
def slow(seconds: float, ctx: Context) -> str:
    ctx.wait(seconds)
    return "late"


def broken(scores: dict) -> int:
    total = 0
    total += scores["weight"]  # the line the traceback must point at
    return total


def flaky(ctx: Context) -> int:
    if ctx.attempt < 2:
        raise RuntimeError("first try fails")
    return ctx.attempt


@function(retry={"count": 2, "delay": 0.01, "jitter": False})
def retried(ctx: Context) -> int:
    if ctx.attempt < 3:
        raise RuntimeError("not yet")
    return ctx.attempt
'''


@pytest.fixture
def server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def wait_until(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_the_context_knows_the_run_and_its_logs_become_task_logs(runner: Any, engine_of: Any, run_chain: Any,
                                                                 tmp_path: Any, monkeypatch: Any) -> None:
    from legion.engine.secrets import EmbeddedSecrets

    monkeypatch.setenv("LEGION_HOME", str(tmp_path))
    EmbeddedSecrets(tmp_path).write("probe", "token", "s3cr3t-value")
    engine = engine_of(runner("ctx", PROBE))
    run = run_chain(engine, """
        chain: who
        steps:
          me: {run: ctx.probe.whoami, with: {note: "{{ input.note }}"}}
        output: "{{ result }}"
        """, {"note": "n1"})
    task = engine.store.run_tasks(run["id"])[0]
    assert run["status"] == "succeeded"
    assert run["output"] == {"run": run["id"], "chain": "who", "step": "me", "attempt": 1, "task": task["id"],
                             "function": "ctx.probe.whoami", "secret": "***"}  # read, then masked in the record
    logs = engine.store.task_logs(task["id"])
    assert [(entry["level"], entry["message"]) for entry in logs] == [("info", "working on n1")]


def test_a_shared_async_client_works_across_three_calls_and_async_logs_are_captured(
        runner: Any, engine_of: Any, run_chain: Any, server: str) -> None:
    engine = engine_of(runner("net", PROBE))
    run = run_chain(engine, """
        chain: thrice
        steps:
          a: {run: net.probe.fetch, with: {url: "{{ input.url }}"}, next: [{do: b, publish: {a: "{{ result }}"}}]}
          b: {run: net.probe.fetch, with: {url: "{{ input.url }}"}, next: [{do: c, publish: {b: "{{ result }}"}}]}
          c: {run: net.probe.fetch, with: {url: "{{ input.url }}"}, next: [{publish: {c: "{{ result }}"}}]}
        output: "{{ [ctx.a, ctx.b, ctx.c] }}"
        """, {"url": server})
    assert (run["status"], run["output"]) == ("succeeded", [204, 204, 204]), run["error"]
    for task in engine.store.run_tasks(run["id"]):
        messages = [e["message"] for e in engine.store.task_logs(task["id"])]
        assert messages[0] == "fetching" and messages[1].startswith("HTTP Request: GET")  # its library's records too


def test_a_timed_out_async_call_is_cancelled() -> None:
    import asyncio

    events: list[str] = []

    async def hang() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    outcome = call(Function("x.y.hang", "x", "y", "hang", hang), {}, timeout=0.1)
    assert outcome.error == {"type": "Timeout", "message": "the step ran past its timeout of 0.1s"}
    wait_until(lambda: events == ["cancelled"])
    assert run_async(asyncio.sleep(0, "still running")) == "still running"  # the loop lives on


def test_run_cancel_reaches_running_functions(runner: Any, engine_of: Any, run_chain: Any, tmp_path: Any) -> None:
    registry = runner("slowpoke", PROBE)
    seen = registry.function("slowpoke.probe.patient").call.__globals__["seen"]
    engine = engine_of(registry)
    from legion.engine.chains import apply_items, load_chains

    (tmp_path / "two.yaml").write_text("chain: two\nsteps:\n  p: {run: slowpoke.probe.patient}\n  h: {run: slowpoke.probe.hang}\n")
    files, _ = load_chains([tmp_path / "two.yaml"], registry)
    engine.store.apply_chains(apply_items(files))
    run_id = engine.submit("two", {})
    wait_until(lambda: len(engine._executing) == 2)
    started = time.monotonic()
    engine.cancel(run_id)
    assert engine.wait(run_id, 10)["status"] == "canceled"
    wait_until(lambda: sorted(seen) == ["canceled", "cancelled"])
    assert time.monotonic() - started < 5  # not the 60 s they would have waited
    tasks = wait_until(lambda: [t for t in engine.store.run_tasks(run_id) if t["finished_at"]] == engine.store.run_tasks(run_id)
                       and engine.store.run_tasks(run_id))
    by_step = {t["step"]: t for t in tasks}
    assert by_step["p"]["error"]["type"] == "Canceled"  # ctx.heartbeat() raised it


def test_a_declared_timeout_applies_unless_the_step_sets_its_own(runner: Any, engine_of: Any, run_chain: Any) -> None:
    engine = engine_of(runner("opt", PROBE))
    short = run_chain(engine, "chain: t\nsteps:\n  s: {run: opt.probe.slow, with: {seconds: 5}}\n")
    assert short["status"] == "failed" and short["error"]["type"] == "Timeout"
    assert "timeout of 0.2s" in short["error"]["message"]
    longer = run_chain(engine, "chain: t\nsteps:\n  s: {run: opt.probe.slow, with: {seconds: 0.4}, timeout: 5s}\noutput: '{{ result }}'\n")
    assert (longer["status"], longer["output"]) == ("succeeded", "late")


def test_a_declared_retry_applies_unless_the_step_sets_its_own(runner: Any, engine_of: Any, run_chain: Any) -> None:
    engine = engine_of(runner("rt", PROBE))
    run = run_chain(engine, "chain: r\nsteps:\n  s: {run: rt.probe.retried}\noutput: '{{ result }}'\n")
    assert (run["status"], run["output"]) == ("succeeded", 3)
    own = run_chain(engine, "chain: r\nsteps:\n  s: {run: rt.probe.retried, retry: {count: 0}}\n")
    assert own["status"] == "failed" and len(engine.store.run_tasks(own["id"])) == 1


def test_a_plain_exception_keeps_its_class_and_the_extensions_traceback(runner: Any, engine_of: Any, run_chain: Any) -> None:
    registry = runner("score", PROBE)
    engine = engine_of(registry)
    run = run_chain(engine, "chain: s\nsteps:\n  total: {run: score.probe.broken, with: {scores: {w: 1}}}\n")
    error = run["error"]
    assert (error["type"], error["message"], error["exception"], error["step"]) == ("StepFailed", "'weight'", "KeyError", "total")
    source = registry.function("score.probe.broken").call.__code__.co_filename
    line = next(i for i, text in enumerate(open(source, encoding="utf-8"), 1) if "the line the traceback must point at" in text)
    assert f'File "{source}", line {line}, in broken' in error["traceback"]
    assert error["traceback"].endswith("KeyError: 'weight'")
    assert "engine/" not in error["traceback"]  # the engine's own frames are left out
    task = engine.store.run_tasks(run["id"])[0]
    assert task["error"]["traceback"] == error["traceback"]


def test_heartbeat_and_wait_without_an_engine() -> None:
    ctx = Context(run_id="r", chain="c", step="s", number=1, attempt=1, function="x.y.z")
    beats: list[int] = []
    ctx._beat = lambda: beats.append(1)
    ctx.heartbeat()
    assert beats == [1] and ctx.wait(0.01) is False and not ctx.canceled
    threading.Timer(0.05, ctx.cancel).start()
    assert ctx.wait(10) is True and ctx.canceled
    with pytest.raises(Canceled):
        ctx.heartbeat()


def test_retries_see_their_attempt(runner: Any, engine_of: Any, run_chain: Any) -> None:
    engine = engine_of(runner("again", PROBE))
    run = run_chain(engine, "chain: f\nsteps:\n  s: {run: again.probe.flaky, retry: {count: 1, delay: 0.01}}\noutput: '{{ result }}'\n")
    assert (run["status"], run["output"]) == ("succeeded", 2)
