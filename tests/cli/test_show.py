"""Run and task ids as people type them (unique prefixes, RUN_ID/NUMBER), and errors shown
with their origin: the step, the task, the exception and its traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helpers import ROOT, as_json, install_extension, legion

from legion.engine.data import Store

SCORE = '''
def score(item: dict) -> int:
    """Read the item's weight."""
    return item["weight"] * 2
'''

SCORING = """\
chain: scoring
steps:
  prepare: {run: core.util.set, with: {item: {size: 3}}, next: [{do: score, publish: {item: "{{ result.item }}"}}]}
  score: {run: probe.misc.score, with: {item: "{{ ctx.item }}"}}
"""

@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def store(home: Path) -> Store:
    return Store(f"sqlite:///{home / 'legion.db'}")


def hello_run(home: Path) -> dict[str, object]:
    legion(home, "chain", "apply", str(ROOT / "chains" / "examples" / "hello.yaml"))
    return dict(as_json(legion(home, "chain", "run", "hello", "name=Ada", "--json"))["data"])


def test_run_ids_may_be_shortened_to_a_unique_prefix(home: Path) -> None:
    run = hello_run(home)
    run_id = str(run["id"])
    for given in (run_id, run_id[:4], run_id[:8], run_id[:-1]):
        assert as_json(legion(home, "run", "show", given, "--json"))["data"]["id"] == run_id
    assert f"run {run_id}  chain hello v1  succeeded" in legion(home, "run", "show", run_id[:6]).stdout
    tasks = as_json(legion(home, "task", "list", "--run", run_id[:5], "--json"))["data"]
    assert sorted(t["step"] for t in tasks) == ["greet", "measure"]
    cancel = legion(home, "run", "cancel", run_id[:6], check=2)
    assert f"run {run_id} already ended (succeeded)" in cancel.stderr

    short = as_json(legion(home, "run", "show", run_id[:3], "--json", check=2))["error"]
    assert short["code"] == "bad_input" and "at least 4" in short["message"]
    other = "0000" if not run_id.startswith("0000") else "ffff"
    missing = as_json(legion(home, "run", "show", other, "--json", check=2))["error"]
    assert missing["code"] == "not_found" and repr(other) in missing["message"]
    assert as_json(legion(home, "run", "cancel", other, "--json", check=2))["error"]["code"] == "not_found"


def test_an_ambiguous_prefix_lists_the_candidates(home: Path) -> None:
    hello_run(home)  # the database exists
    with store(home) as db:
        for run_id in ("abcd1111-0000-4000-8000-000000000001", "abcd2222-0000-4000-8000-000000000002"):
            db.create_run({"id": run_id, "chain_name": "hello", "chain_version": 1, "status": "running"})
        db.create_run({"id": "abce0000-0000-4000-8000-000000000003", "chain_name": "hello", "chain_version": 1})
    for command in (("run", "show"), ("run", "cancel"), ("task", "list", "--run")):
        error = as_json(legion(home, *command, "abcd", "--json", check=2))["error"]
        assert error["code"] == "bad_input" and "ambiguous" in error["message"]
        assert "abcd1111-0000-4000-8000-000000000001 (hello, running)" in error["message"]
        assert error["details"]["candidates"] == ["abcd1111-0000-4000-8000-000000000001", "abcd2222-0000-4000-8000-000000000002"]
    text = legion(home, "task", "show", "abcd/1", check=2)
    assert "ambiguous" in text.stderr and "abcd2222-0000-4000-8000-000000000002" in text.stderr
    # One more character makes it unique; nothing was canceled by the refused attempts.
    assert as_json(legion(home, "run", "cancel", "abcd2", "--json"))["data"] == {"canceled": "abcd2222-0000-4000-8000-000000000002"}
    with store(home) as db:
        assert db.get_run("abcd1111-0000-4000-8000-000000000001")["status"] == "running"


def test_task_ids_and_run_id_slash_number(home: Path) -> None:
    run = hello_run(home)
    run_id = str(run["id"])
    shown = as_json(legion(home, "run", "show", run_id, "--json"))["data"]
    measure = next(t for t in shown["tasks"] if t["step"] == "measure")
    by_id = as_json(legion(home, "task", "show", str(measure["id"]), "--json"))["data"]
    for ref in (f"{run_id}/{measure['number']}", f"{run_id[:6]}/{measure['number']}"):
        assert as_json(legion(home, "task", "show", ref, "--json"))["data"] == by_id
        assert as_json(legion(home, "task", "logs", ref, "--json"))["data"] == []
    assert by_id["step"] == "measure" and by_id["result"] == {"greeting": "Hello, Ada!", "length": 11}

    text = legion(home, "task", "show", f"{run_id[:6]}/{measure['number']}").stdout
    assert text.startswith(f"task {measure['id']}  succeeded\n")
    for line in (f"run:      {run_id}, step run {measure['number']}", "step:     measure", "function: core.util.set",
                 "attempt:  1", 'args:     {"greeting": "Hello, Ada!", "length": 11}',
                 'result:   {"greeting": "Hello, Ada!", "length": 11}'):
        assert f"\n  {line}\n" in text + "\n", (line, text)

    missing = as_json(legion(home, "task", "show", f"{run_id[:6]}/99", "--json", check=2))["error"]
    assert missing["code"] == "not_found" and "no step run number 99" in missing["message"]
    for bad in ("/2", f"{run_id[:6]}/x", f"{run_id[:6]}/0", "twelve"):
        error = as_json(legion(home, "task", "show", bad, "--json", check=2))["error"]
        assert error["code"] == "bad_input" and "argument id" in error["message"], (bad, error)


def test_errors_show_their_origin(home: Path, tmp_path: Path) -> None:
    env = install_extension(tmp_path / "site", "probe", {"misc": SCORE})
    chain = tmp_path / "scoring.yaml"
    chain.write_text(SCORING)
    legion(home, "chain", "apply", str(chain), env=env)
    run = as_json(legion(home, "chain", "run", "scoring", "--json", env=env, check=1))["data"]
    failed = next(t for t in run["tasks"] if t["step"] == "score")
    assert run["error"]["type"] == "StepFailed" and run["error"]["step"] == "score" and failed["status"] == "failed"
    task_id = failed["id"]

    text = legion(home, "run", "show", str(run["id"])[:8]).stdout
    assert re.search(rf"^error: StepFailed \(KeyError\): 'weight' at step 'score', task {task_id} — legion task show {task_id}$",
                     text, re.M), text
    assert re.search(rf"^\s+2 score\s+failed\s+task {task_id}$", text, re.M), text
    task = legion(home, "task", "show", str(task_id)).stdout
    assert task.startswith(f"task {task_id}  failed\n") and "  function: probe.misc.score\n" in task
    assert '  args:     {"item": {"size": 3}}\n' in task

    # The engine records where the exception came from: the line of the extension's own file.
    source = tmp_path / "site" / "legion_probe" / "runners" / "misc.py"
    assert "\n  error:    StepFailed (KeyError): 'weight'\n  traceback:\n      Traceback (most recent call last):\n" in task
    assert f'        File "{source}", line 4, in score\n          return item["weight"] * 2\n' in task
    assert task.rstrip().endswith("      KeyError: 'weight'")
    full = as_json(legion(home, "task", "show", str(task_id), "--json"))["data"]
    assert full["error"]["exception"] == "KeyError" and f'File "{source}", line 4' in full["error"]["traceback"]
    assert "legion/engine" not in full["error"]["traceback"] and "/engine/" not in full["error"]["traceback"]
    assert as_json(legion(home, "run", "show", str(run["id"]), "--json"))["data"]["error"] == full["error"]


def test_a_run_level_error_names_no_task(home: Path) -> None:
    run = hello_run(home)
    error = {"type": "ExpressionError", "message": "chain 'hello', vars: boom", "step": None}
    with store(home) as db:
        db.update_run(str(run["id"]), status="failed", error=error)
    text = legion(home, "run", "show", str(run["id"])).stdout
    assert "\nerror: ExpressionError: chain 'hello', vars: boom\n" in text
