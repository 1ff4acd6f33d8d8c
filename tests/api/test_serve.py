"""`legion api`, `legion start --port` and `legion token ...` as a user runs them: real
processes, a real port, HTTP from outside."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from waiting import wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from cli_helpers import LEGION, ROOT, as_json, legion  # noqa: E402

HELLO = "chain: hello\nsteps:\n  greet:\n    run: core.util.echo\n    with: {message: \"hi {{ input.name }}\"}\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@contextmanager
def serve(home: Path, *args: str, database: str | None = None) -> Iterator[subprocess.Popen[str]]:
    """`legion ARGS` running (a server), on the embedded SQLite of `home` or on `database`."""
    env = dict(os.environ, LEGION_HOME=str(home))
    for name in ("LEGION_DATABASE_URL", "LEGION_AMQP_URL", "LEGION_REDIS_URL"):
        env.pop(name, None)
    if database is not None:
        env["LEGION_DATABASE_URL"] = database
    proc = subprocess.Popen([*LEGION, *args], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def up(base: str, proc: subprocess.Popen[str]) -> None:
    def answers() -> bool:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else "exited"
        try:
            return httpx.get(base + "/api/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(answers, timeout=60, interval=0.1, what="the API to answer")


def test_legion_api_serves_runs_over_http_without_auth_on_loopback(home: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serve(home, "api", "--port", str(port), "--no-auth") as proc:
        up(base, proc)
        applied = httpx.post(base + "/api/chains", content=HELLO, headers={"Content-Type": "application/yaml"}, timeout=30)
        assert applied.status_code == 200, applied.text
        run = httpx.post(base + "/api/runs", json={"chain": "hello", "input": {"name": "ann"}}, timeout=30)
        assert run.status_code == 201
        run_id = run.json()["data"]["id"]
        url = f"{base}/api/runs/{run_id}"
        shown = wait_until(lambda: (r := httpx.get(url, timeout=10).json()["data"])["status"] == "succeeded" and r,
                           timeout=30, what="the run to succeed")
        assert shown["trace"] == ["greet"] and shown["tasks"][0]["result"] == "hi ann"
    # and the CLI sees the run the API started: one database
    assert as_json(legion(home, "run", "list", "--json"))["data"][0]["id"] == run_id


def test_no_auth_is_refused_off_loopback_and_the_port_is_never_opened(home: Path) -> None:
    proc = legion(home, "api", "--port", str(free_port()), "--no-auth", "--host", "0.0.0.0", "--json", check=2)
    assert "loopback" in as_json(proc)["error"]["message"]
    proc = legion(home, "start", "--port", str(free_port()), "--no-auth", "--host", "0.0.0.0", "--no-apply", check=2)
    assert "loopback" in proc.stderr


def test_tokens_made_listed_and_revoked_by_the_cli_guard_legion_start_port(home: Path) -> None:
    made = as_json(legion(home, "token", "create", "--scope", "run", "--name", "ci", "--json"))["data"]
    assert made["token"].startswith("lgn_") and made["scopes"] == ["read", "run"]
    listed = as_json(legion(home, "token", "list", "--json"))["data"]
    assert [(t["id"], t["name"], t["scopes"]) for t in listed] == [(made["id"], "ci", ["read", "run"])]
    assert "token" not in listed[0] and made["token"] not in legion(home, "token", "list").stdout
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serve(home, "start", "--port", str(port), "--no-apply") as proc:
        up(base, proc)
        assert httpx.get(base + "/api/runs", timeout=10).status_code == 401
        good = {"Authorization": "Bearer " + made["token"]}
        assert httpx.get(base + "/api/runs", headers=good, timeout=10).json() == {"data": [], "meta": {"next_cursor": None}}
        task = httpx.post(base + "/api/tasks", json={"function": "core.util.echo", "args": {"message": "yo"}}, headers=good, timeout=30)
        assert (task.status_code, task.json()["data"]["result"]) == (201, "yo")
        legion(home, "token", "revoke", str(made["id"]))
        assert httpx.get(base + "/api/runs", headers=good, timeout=10).status_code == 401
    assert legion(home, "token", "revoke", "999", check=2).returncode == 2
    said = proc.stdout.read() if proc.stdout else ""  # legion start says when each run starts and ends
    run_id = task.json()["data"]["run_id"]
    started = said.index(f"run {run_id} task.core.util.echo started (task)\n")
    assert re.search(rf"run {run_id} task\.core\.util\.echo succeeded in \d+\.\d{{3}}s\n", said[started:]), said


def test_mcp_over_http_takes_the_api_tokens_and_their_scopes(home: Path) -> None:
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    read = as_json(legion(home, "token", "create", "--scope", "read", "--json"))["data"]["token"]
    admin = as_json(legion(home, "token", "create", "--scope", "admin", "--json"))["data"]["token"]
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"

    async def calls(token: str) -> list[Any]:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                return [await client.call_tool("legion.apply_chain", {"yaml": HELLO}),
                        await client.call_tool("legion.list_chains", {})]

    with serve(home, "api", "--port", str(port)) as proc:
        up(f"http://127.0.0.1:{port}", proc)
        assert httpx.post(url, json={}, timeout=10).status_code == 401  # no token, no MCP
        refused, listed = anyio.run(calls, read)
        assert refused.is_error and "'admin' scope" in refused.content[0].text
        assert listed.structured_content == {"chains": []}
        applied, listed = anyio.run(calls, admin)
        assert not applied.is_error
        assert [c["name"] for c in listed.structured_content["chains"]] == ["hello"]
