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


def legion(home: Path, *args: str, cwd: Path | None = None, check: int | None = 0,
           env: dict[str, str] | None = None, patch: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `legion ARGS`. `env` adds variables; `patch` is Python run in the process before
    the CLI starts (to make a rare situation happen on demand)."""
    full_env = dict(os.environ, LEGION_HOME=str(home), **(env or {}))
    full_env.pop("LEGION_DATABASE_URL", None)
    command = LEGION
    if patch is not None:
        command = [sys.executable, "-c", f"{patch}\nimport sys\nfrom legion.engine.cli.main import main\nsys.exit(main())"]
    proc = subprocess.run([*command, *args], capture_output=True, text=True, env=full_env, cwd=cwd or ROOT, timeout=120)
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
    # core.util.set(**values) describes no argument: every value stays the text it was.
    task = as_json(legion(home, "task", "run", "core.util.set", "n=50", "flag:true", "items=[1, 2]", "name:Ada", "--json"))["data"]
    assert task["result"] == {"n": "50", "flag": "true", "items": "[1, 2]", "name": "Ada"}
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
    assert {a["name"]: a["action"] for a in applied} == {"hello": "created", "site-check": "created", "summarise": "created"}
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
    assert {c["name"] for c in listed} == {"hello", "site-check", "summarise"}
    legion(home, "chain", "delete", "site-check")
    assert {c["name"] for c in as_json(legion(home, "chain", "list", "--json"))["data"]} == {"hello", "summarise"}
    pruned = as_json(legion(home, "chain", "apply", str(chains / "site-check.yaml"), "--prune", "--json"))["data"]["applied"]
    assert {a["name"]: a["action"] for a in pruned} == {"site-check": "created", "hello": "pruned", "summarise": "pruned"}


def test_run_input_that_fails_the_schema(home: Path) -> None:
    legion(home, "chain", "apply", str(ROOT / "chains" / "examples"))
    proc = legion(home, "chain", "run", "hello", "--json", check=2)
    error = as_json(proc)["error"]
    assert error["code"] == "bad_input"
    assert "run input of chain 'hello' does not fit its input schema at name: 'name' is a required property" in error["message"]
    assert as_json(legion(home, "run", "list", "--json"))["data"] == []  # refused before a run existed


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


# -- review findings -----------------------------------------------------------------------

PROBE = '''"""Functions that misbehave the way real ones sometimes do."""

import math


def chatty(message: str) -> str:
    """Print to stdout, then return the message."""
    print("chatter from a step function")
    return message


def odd() -> dict:
    """Numbers JSON cannot hold."""
    return {"nan": math.nan, "inf": math.inf, "fine": 1.5}
'''


@pytest.fixture()
def probe(tmp_path: Path) -> dict[str, str]:
    """An installed extension `probe` (entry point and all) on PYTHONPATH; the env to use it."""
    site = tmp_path / "site"
    (site / "legion_probe" / "runners").mkdir(parents=True)
    (site / "legion_probe" / "__init__.py").write_text(
        "from legion.engine.sdk import Extension\nfrom legion_probe.runners import misc\n"
        "extension = Extension('probe', runners=[misc], description='test probe')\n")
    (site / "legion_probe" / "runners" / "__init__.py").write_text("")
    (site / "legion_probe" / "runners" / "misc.py").write_text(PROBE)
    info = site / "legion_probe-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: legion-probe\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[legion.extensions]\nprobe = legion_probe:extension\n")
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path}


def test_run_timeout_cancels_the_run(home: Path, tmp_path: Path) -> None:
    (tmp_path / "slow.yaml").write_text("chain: slow\nsteps:\n  nap: {run: core.util.sleep, with: {seconds: 60}}\n")
    legion(home, "chain", "apply", str(tmp_path / "slow.yaml"))
    started = time.monotonic()
    proc = legion(home, "chain", "run", "slow", "--timeout", "1", "--json", check=1)
    assert time.monotonic() - started < 30
    error = as_json(proc)["error"]
    assert "did not end within 1s" in error["message"] and "canceled" in error["message"]
    run_id = error["details"]["run_id"]
    run = as_json(legion(home, "run", "show", run_id, "--json"))["data"]
    assert run["status"] == "canceled" and run["error"]["type"] == "Canceled"
    bad = legion(home, "chain", "run", "slow", "--timeout", "-1", check=2)
    assert "--timeout" in bad.stderr


def test_key_value_arguments_may_follow_options(home: Path) -> None:
    legion(home, "chain", "apply", str(ROOT / "chains" / "examples"))
    run = legion(home, "chain", "run", "hello", "--wait", "name=Ada")
    assert "Hello, Ada!" in run.stdout
    data = as_json(legion(home, "chain", "run", "hello", "--json", "name:Bo", "--timeout", "60"))["data"]
    assert data["output"]["greeting"] == "Hello, Bo!"
    task = as_json(legion(home, "task", "run", "core.util.echo", "--json", "message=hi"))["data"]
    assert task["result"] == "hi"
    mixed = as_json(legion(home, "task", "run", "core.util.set", "a=1", "--json", "b:two", "-v", "a=3"))["data"]
    assert mixed["result"] == {"a": "3", "b": "two"}
    unknown = legion(home, "task", "run", "core.util.echo", "--json", "--bogus", "message=hi", check=2)
    assert "unrecognized arguments: --bogus" in as_json(unknown)["error"]["message"]
    nonsense = legion(home, "chain", "run", "hello", "--wait", "nonsense", check=2)
    assert "key=value" in nonsense.stderr
    no_pairs = legion(home, "chain", "validate", str(ROOT / "chains" / "examples"), "--json", "name=Ada", check=2)
    assert as_json(no_pairs)["error"]["code"] in ("bad_input", "validation_failed")


ODD_TASK = """
import math
from legion.engine.data.store import Store
real_get_task = Store.get_task
Store.get_task = lambda self, task_id: dict(real_get_task(self, task_id), result={"nan": math.nan, "inf": (-math.inf, 1), "fine": 1.5})
"""


def test_non_finite_numbers_stay_valid_json(home: Path, probe: dict[str, str]) -> None:
    task = as_json(legion(home, "task", "run", "core.util.set", "a=.nan", "b=-.inf", "c=[1, .inf]", "d=1.5", "--json"))["data"]
    assert task["result"] == {"a": ".nan", "b": "-.inf", "c": "[1, .inf]", "d": "1.5"}
    failed = as_json(legion(home, "task", "run", "probe.misc.odd", "--json", env=probe, check=1))["data"]
    assert failed["error"]["type"] == "ResultInvalid"  # the engine keeps NaN out of results
    # Should such a number reach the CLI anyway (an old row, a store quirk), it prints null.
    odd = legion(home, "task", "show", str(task["id"]), "--json", patch=ODD_TASK)
    assert "NaN" not in odd.stdout and "Infinity" not in odd.stdout
    assert as_json(odd)["data"]["result"] == {"nan": None, "inf": [None, 1], "fine": 1.5}
    assert '"nan": null' in legion(home, "task", "show", str(task["id"]), patch=ODD_TASK).stdout
    legion(home, "chain", "apply", str(ROOT / "chains" / "examples"))
    bad = legion(home, "chain", "run", "hello", "--input", '{"name": NaN}', "--json", check=2)
    assert "not JSON" in as_json(bad)["error"]["message"]


def test_step_output_does_not_break_the_json_document(home: Path, tmp_path: Path, probe: dict[str, str]) -> None:
    proc = legion(home, "task", "run", "probe.misc.chatty", "message=hi", "--json", env=probe)
    assert as_json(proc)["data"]["result"] == "hi"
    assert "chatter from a step function" in proc.stderr
    (tmp_path / "chatty.yaml").write_text("chain: chatty\nsteps:\n  talk: {run: probe.misc.chatty, with: {message: yo}}\n"
                                          "output: {said: '{{ result }}'}\n")
    legion(home, "chain", "apply", str(tmp_path / "chatty.yaml"), env=probe)
    run = legion(home, "chain", "run", "chatty", "--json", env=probe)
    assert as_json(run)["data"]["output"] == {"said": "yo"}
    assert "chatter from a step function" in run.stderr
    text = legion(home, "task", "run", "probe.misc.chatty", "message=hi", env=probe)
    assert "chatter from a step function" in text.stdout  # text mode leaves stdout alone


def test_validate_knows_applied_chains_without_creating_a_database(home: Path, tmp_path: Path) -> None:
    parent = tmp_path / "parent.yaml"
    parent.write_text("chain: parent\nsteps:\n  sub: {run: 'chain:hello', with: {name: Ada}}\n")
    fresh = tmp_path / "fresh-home"
    refused = legion(fresh, "chain", "validate", str(parent), check=2)
    assert "hello" in refused.stderr
    assert not fresh.exists()  # validate created no home and no database
    legion(home, "chain", "apply", str(ROOT / "chains" / "examples"))
    assert "1 chain(s) valid" in legion(home, "chain", "validate", str(parent)).stdout
    assert as_json(legion(home, "chain", "plan", str(parent), "--json"))["data"]["diff"][0]["name"] == "parent"
    elsewhere = legion(fresh, "chain", "validate", str(parent), env={"LEGION_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"}, check=2)
    assert "hello" in elsewhere.stderr and not (tmp_path / "none.db").exists()


def test_paths_without_chain_files_are_refused(home: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "only-rehearsals").mkdir()
    (tmp_path / "only-rehearsals" / "x.test.yaml").write_text("chain: c.yaml\nexpect: {status: succeeded}\n")
    legion(home, "chain", "apply", str(ROOT / "chains" / "examples"))
    for command in ("validate", "plan", "apply"):
        proc = legion(home, "chain", command, str(empty), check=2)
        assert "no chain files" in proc.stderr
    pruned = legion(home, "chain", "apply", str(empty), "--prune", "--json", check=2)
    assert as_json(pruned)["error"]["code"] == "bad_input"
    legion(home, "chain", "validate", str(tmp_path / "only-rehearsals"), check=2)
    assert {c["name"] for c in as_json(legion(home, "chain", "list", "--json"))["data"]} == {"hello", "site-check", "summarise"}


def test_a_file_named_twice_is_one_file(home: Path) -> None:
    examples = ROOT / "chains" / "examples"
    proc = legion(home, "chain", "validate", str(examples), str(examples / "hello.yaml"), str(examples / "." / "hello.yaml"))
    assert "3 chain(s) valid" in proc.stdout
    applied = as_json(legion(home, "chain", "apply", str(examples / "hello.yaml"), str(examples), "--json"))["data"]["applied"]
    assert sorted(a["name"] for a in applied) == ["hello", "site-check", "summarise"]


@pytest.mark.parametrize("args", [
    ("run", "list", "--limit", "-1"),
    ("task", "list", "--limit", "0"),
    ("task", "list", "--limit", "10001"),
    ("run", "list", "--limit", "many"),
    ("task", "show", "99999999999999999999"),
    ("task", "show", "0"),
    ("task", "logs", "-5"),
    ("chain", "show", "hello", "--version", "0"),
    ("start", "--workers", "0"),
])
def test_bad_numbers_are_usage_errors(home: Path, args: tuple[str, ...]) -> None:
    proc = legion(home, *args, "--json", check=2)
    error = as_json(proc)["error"]
    assert error["code"] == "bad_input" and "argument" in error["message"]
    assert "internal error" not in error["message"]


def test_lex_create_in_a_folder_that_cannot_be_made(home: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = legion(home, "lex", "create", "tickets", "--path", str(blocker), check=2)
    assert str(blocker) in proc.stderr and "internal error" not in proc.stderr
    data = as_json(legion(home, "lex", "create", "tickets", "--path", str(blocker / "deeper"), "--json", check=2))
    assert data["error"]["code"] == "bad_input"


NO_TASKS = "from legion.engine.data.store import Store\nStore.run_tasks = lambda self, run_id: []"


def test_task_run_that_recorded_no_task(home: Path) -> None:
    proc = legion(home, "task", "run", "core.util.echo", "message=hi", patch=NO_TASKS, check=1)
    assert "recorded no task" in proc.stderr and "succeeded" in proc.stderr and "IndexError" not in proc.stderr
    error = as_json(legion(home, "task", "run", "core.util.echo", "message=hi", "--json", patch=NO_TASKS, check=1))["error"]
    assert error["details"]["status"] == "succeeded" and "recorded no task" in error["message"]


# The first read of the run sees it still running; by the time of the write it has ended.
def test_run_cancel_does_not_overwrite_a_run_that_just_ended(home: Path) -> None:
    legion(home, "chain", "apply", str(ROOT / "chains" / "examples"))
    run_id = as_json(legion(home, "chain", "run", "hello", "name=Ada", "--json"))["data"]["id"]
    proc = legion(home, "run", "cancel", run_id, check=2)
    assert "already ended (succeeded)" in proc.stderr
    assert as_json(legion(home, "run", "show", run_id, "--json"))["data"]["status"] == "succeeded"


def test_commands_run_in_one_process_leave_no_log_handler_behind(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from legion.engine.cli.main import main

    monkeypatch.setenv("LEGION_HOME", str(home))
    monkeypatch.delenv("LEGION_DATABASE_URL", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    assert main(["chain", "validate", str(home / "missing.yaml")]) == 2
    assert main(["lex", "list", "--json"]) == 0
    assert root.handlers == handlers and root.level == level
    assert "missing.yaml" in capsys.readouterr().err
