"""The `legion` command end to end, as a user runs it: subprocesses, a fresh LEGION_HOME."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE = Path(os.environ["LEGION_CONFORMANCE"]) / "rehearsals"
LEGION = [sys.executable, "-m", "legion.engine.cli.main"]


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def legion(home: Path, *args: str, cwd: Path | None = None, check: int | None = 0) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LEGION_HOME=str(home))
    env.pop("LEGION_DATABASE_URL", None)
    proc = subprocess.run([*LEGION, *args], capture_output=True, text=True, env=env, cwd=cwd or ROOT, timeout=120)
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    """--json prints exactly one JSON document and nothing else."""
    return json.loads(proc.stdout)


def test_lex_list_shows_functions_with_arguments(home: Path) -> None:
    out = legion(home, "lex", "list")
    assert "core.util.echo(message?: any)" in out.stdout
    assert "http.request.get(url: string" in out.stdout
    data = as_json(legion(home, "lex", "list", "--json"))["data"]
    refs = {f["ref"] for ext in data for r in ext["runners"] for f in r["functions"]}
    assert {"core.util.echo", "core.util.sleep", "http.request.post", "http.request.head"} <= refs


def test_task_run_quick_start_against_a_local_http_server(home: Path) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"hello": "world"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/"
        task = as_json(legion(home, "task", "run", "http.request.get", f"url:{url}", "--json"))["data"]
        assert task["status"] == "succeeded"
        assert task["result"]["status"] == 200
        assert task["result"]["json"] == {"hello": "world"}
        shown = as_json(legion(home, "task", "show", str(task["id"]), "--json"))["data"]
        assert shown["function"] == "http.request.get" and shown["args"] == {"url": url}
    finally:
        server.shutdown()


def test_task_run_key_value_forms_and_bad_arguments(home: Path) -> None:
    task = as_json(legion(home, "task", "run", "core.util.set", "n=50", "flag:true", "items=[1, 2]", "name:Ada", "--json"))["data"]
    assert task["result"] == {"n": 50, "flag": True, "items": [1, 2], "name": "Ada"}
    bad = legion(home, "task", "run", "core.util.echo", "nonsense", "--json", check=2)
    assert "key=value" in as_json(bad)["error"]["message"]
    unknown = legion(home, "task", "run", "core.util.nope", "--json", check=2)
    assert as_json(unknown)["error"]["code"] == "not_found"
    wrong = legion(home, "task", "run", "core.util.echo", "colour=red", check=2)
    assert "no argument 'colour'" in wrong.stderr


def test_validate_reports_every_problem_with_positions(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "chain: bad\n"
        "steps:\n"
        "  a:\n"
        "    run: core.util.echo\n"
        "    wiht: {message: hi}\n"
        "    next:\n"
        "      - when: \"{{ succeeded }}\"\n"
        "        do: b\n"
    )
    proc = legion(home, "chain", "validate", str(bad), check=2)
    assert f"{bad}:5:5: error: unknown key 'wiht'; did you mean 'with'?" in proc.stderr
    assert f"{bad}:7:15: error:" in proc.stderr and "drop the braces" in proc.stderr
    assert f"{bad}:8:13: error: `do` names 'b', which is not a step" in proc.stderr
    err = as_json(legion(home, "chain", "validate", str(bad), "--json", check=2))["error"]
    assert err["code"] == "validation_failed"
    assert {(d["line"], d["col"]) for d in err["details"]} >= {(5, 5), (7, 15), (8, 13)}


def test_validate_plan_apply_run_show_history_graph_delete(home: Path, tmp_path: Path) -> None:
    chains = tmp_path / "chains"
    shutil.copytree(ROOT / "chains" / "examples", chains)
    assert "chain(s) valid" in legion(home, "chain", "validate", str(chains)).stdout

    plan = as_json(legion(home, "chain", "plan", str(chains / "hello.yaml"), "--json"))["data"]
    rel = plan["plans"][0]["relationships"]
    assert rel[0]["trigger_step"] == "greet" and rel[0]["action_step"] == "measure"
    queues = {q["name"]: q["arguments"] for q in plan["plans"][0]["topology"]["queues"]}
    assert queues["lex.core.util"]["x-max-priority"] == 9
    assert plan["diff"] == [{"name": "hello", "action": "created", "version": None}] or plan["diff"][0]["action"] == "created"

    applied = as_json(legion(home, "chain", "apply", str(chains), "--json"))["data"]["applied"]
    assert {a["name"]: a["action"] for a in applied} == {"hello": "created", "site-check": "created"}
    again = as_json(legion(home, "chain", "apply", str(chains), "--json"))["data"]["applied"]
    assert {a["action"] for a in again} == {"unchanged"}

    run = legion(home, "chain", "run", "hello", "--input", "name=Ada", "--wait")
    assert "▶ greet" in run.stdout and "✓ measure succeeded" in run.stdout
    assert '"greeting": "Hello, Ada!"' in run.stdout or '"greeting":"Hello, Ada!"' in run.stdout.replace(" ", "")
    data = as_json(legion(home, "chain", "run", "hello", "--input", '{"name": "Bo"}', "--json"))["data"]
    assert data["status"] == "succeeded" and data["output"] == {"greeting": "Hello, Bo!", "length": 10}
    assert data["trace"] == ["greet", "measure"]

    shown = as_json(legion(home, "run", "show", data["id"], "--json"))["data"]
    assert [t["step"] for t in shown["tasks"]] == ["greet", "measure"]
    greet, measure = shown["tasks"]
    assert (greet["parent_number"], measure["parent_number"]) == (None, greet["number"])
    assert all(t["status"] == "succeeded" for t in shown["tasks"])
    runs = as_json(legion(home, "run", "list", "--json"))["data"]
    assert len(runs) == 2

    (chains / "hello.yaml").write_text((chains / "hello.yaml").read_text().replace("Hello, ", "Hi, "))
    updated = as_json(legion(home, "chain", "apply", str(chains), "--json"))["data"]["applied"]
    assert {a["name"]: (a["action"], a["version"]) for a in updated}["hello"] == ("updated", 2)
    history = as_json(legion(home, "chain", "history", "hello", "--json"))["data"]
    assert [v["version"] for v in history] == [1, 2] or [v["version"] for v in history] == [2, 1]
    old = as_json(legion(home, "run", "show", data["id"], "--json"))["data"]
    assert old["chain_version"] == 1  # runs stay pinned to the version they started with

    mermaid = legion(home, "chain", "graph", "hello", "--format", "mermaid").stdout
    assert mermaid.startswith("flowchart LR") and "greet -->" in mermaid
    dot = legion(home, "chain", "graph", "hello", "--format", "dot").stdout
    assert dot.startswith('digraph "hello"') and '"greet" -> "measure"' in dot

    listed = as_json(legion(home, "chain", "list", "--json"))["data"]
    assert {c["name"] for c in listed} == {"hello", "site-check"}
    legion(home, "chain", "delete", "site-check")
    assert {c["name"] for c in as_json(legion(home, "chain", "list", "--json"))["data"]} == {"hello"}
    pruned = as_json(legion(home, "chain", "apply", str(chains / "site-check.yaml"), "--prune", "--json"))["data"]["applied"]
    assert {a["name"]: a["action"] for a in pruned} == {"site-check": "created", "hello": "pruned"}


def test_run_input_that_fails_the_schema(home: Path) -> None:
    legion(home, "chain", "apply", str(ROOT / "chains" / "examples"))
    proc = legion(home, "chain", "run", "hello", "--json", check=1)
    data = as_json(proc)["data"]
    assert data["status"] == "failed" and data["error"]["type"] == "InputInvalid"
    assert data["trace"] == [] and data["output"] is None


def test_failed_apply_changes_nothing(home: Path, tmp_path: Path) -> None:
    chains = tmp_path / "chains"
    shutil.copytree(ROOT / "chains" / "examples", chains)
    (chains / "broken.yaml").write_text("chain: broken\nsteps:\n  a: {run: core.util.nope}\n")
    proc = legion(home, "chain", "apply", str(chains), check=2)
    assert "unknown function 'core.util.nope'" in proc.stderr
    assert as_json(legion(home, "chain", "list", "--json"))["data"] == []


def test_chain_test_conformance_suite(home: Path) -> None:
    proc = legion(home, "chain", "test", str(CONFORMANCE))
    assert proc.stdout.rstrip().endswith("25 passed, 0 failed")
    data = as_json(legion(home, "chain", "test", str(CONFORMANCE), "--json"))["data"]
    assert data["passed"] == 25 and data["failed"] == 0


def test_chain_test_failure_exit_code(home: Path, tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("chain: c\nsteps:\n  a: {run: core.util.echo, with: {message: x}}\noutput: {m: '{{ result }}'}\n")
    (tmp_path / "c.test.yaml").write_text("chain: c.yaml\nexpect: {status: succeeded, sequence: [a], output: {m: y}}\n")
    proc = legion(home, "chain", "test", str(tmp_path), check=1)
    assert proc.stdout.rstrip().endswith("0 passed, 1 failed")
    assert "output: expected {'m': 'y'}, got {'m': 'x'}" in proc.stdout


def test_usage_errors_are_json_when_asked(home: Path) -> None:
    proc = legion(home, "chain", "frobnicate", "--json", check=2)
    assert as_json(proc)["error"]["code"] == "bad_input"
    missing = legion(home, "run", "show", "no-such-run", "--json", check=2)
    assert as_json(missing)["error"]["code"] == "not_found"


def test_lex_create_scaffolds_a_package(home: Path, tmp_path: Path) -> None:
    created = as_json(legion(home, "lex", "create", "tickets", "--path", str(tmp_path), "--json"))["data"]
    root = Path(created["created"])
    assert (root / "pyproject.toml").read_text().count('tickets = "legion_tickets:extension"') == 1
    sys.path.insert(0, str(root))
    try:
        import importlib

        from legion.engine.registry import Registry

        module = importlib.import_module("legion_tickets")
        registry = Registry([module.extension])
        assert registry.functions["tickets.greeting.hello"].spec.param_names == ["name", "punctuation"]
    finally:
        sys.path.remove(str(root))
    legion(home, "lex", "create", "tickets", "--path", str(tmp_path), check=2)


def test_task_purge(home: Path) -> None:
    legion(home, "task", "run", "core.util.noop")
    kept = as_json(legion(home, "task", "purge", "--older-than", "1d", "--json"))["data"]
    assert as_json(legion(home, "task", "list", "--json"))["data"], kept
    legion(home, "task", "purge", "--older-than", "0s")
    assert as_json(legion(home, "task", "list", "--json"))["data"] == []
    bad = legion(home, "task", "purge", "--older-than", "soon", check=2)
    assert "--older-than" in bad.stderr


def _iter_lines(proc: subprocess.Popen[str]) -> Iterator[str]:
    assert proc.stdout is not None
    yield from proc.stdout


def test_run_cancel_from_another_process(home: Path, tmp_path: Path) -> None:
    (tmp_path / "slow.yaml").write_text("chain: slow\nsteps:\n  nap: {run: core.util.sleep, with: {seconds: 1}, next: [{do: again}]}\n"
                                        "  again: {run: core.util.sleep, with: {seconds: 30}}\n")
    legion(home, "chain", "apply", str(tmp_path / "slow.yaml"))
    env = dict(os.environ, LEGION_HOME=str(home))
    proc = subprocess.Popen([*LEGION, "chain", "run", "slow", "--json"], env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        run_id = None
        for _ in range(100):
            runs = as_json(legion(home, "run", "list", "--json"))["data"]
            if runs:
                run_id = runs[0]["id"]
                break
            time.sleep(0.1)
        assert run_id is not None
        assert as_json(legion(home, "run", "cancel", run_id, "--json"))["data"] == {"canceled": run_id}
        out, _ = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 1
    data = json.loads(out)["data"]
    assert data["status"] == "canceled" and data["error"]["type"] == "Canceled"
    again = legion(home, "run", "cancel", run_id, check=2)
    assert "already ended (canceled)" in again.stderr
