"""The worked example of docs/extensions.md, as a user follows it: `legion lex create`,
install the package, list it, rehearse its chain, run it, run its unit tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def legion(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "legion.engine.cli.main", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    work = tmp_path_factory.mktemp("example")
    env = dict(os.environ, LEGION_HOME=str(work / "home"))
    created = legion("lex", "create", "tickets", "--path", str(work), env=env, cwd=work)
    assert created.returncode == 0, created.stderr
    site = work / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                          str(work / "lex-tickets")], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return work, env


def test_the_docs_show_the_scaffolded_runner(installed: tuple[Path, dict[str, str]]) -> None:
    work, _ = installed
    guide = (ROOT / "docs" / "extensions.md").read_text(encoding="utf-8")
    runner = (work / "lex-tickets" / "legion_tickets" / "runners" / "greeting.py").read_text(encoding="utf-8")
    assert runner.strip() in guide


def test_the_installed_extension_is_listed_with_its_schema(installed: tuple[Path, dict[str, str]]) -> None:
    work, env = installed
    listed = legion("lex", "list", "--json", env=env, cwd=work)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["data"]
    tickets = next(r for r in rows if r["name"] == "tickets")
    hello = tickets["runners"][0]["functions"][0]
    assert hello["ref"] == "tickets.greeting.hello"
    assert hello["args_schema"]["properties"] == {
        "name": {"type": "string", "description": "who to greet"},
        "punctuation": {"type": "string", "maxLength": 3, "default": "!",
                        "description": "what ends the greeting (at most three characters)"},
    }


def test_its_rehearsal_passes_and_its_chain_runs(installed: tuple[Path, dict[str, str]]) -> None:
    work, env = installed
    chains = work / "lex-tickets" / "chains"
    rehearsed = legion("chain", "test", str(chains), env=env, cwd=work)
    assert rehearsed.returncode == 0 and "1 passed, 0 failed" in rehearsed.stdout, rehearsed.stdout + rehearsed.stderr
    applied = legion("chain", "apply", str(chains), env=env, cwd=work)
    assert applied.returncode == 0, applied.stderr
    ran = legion("--json", "chain", "run", "tickets-hello", "--input", '{"name": "Ada"}', "--wait", env=env, cwd=work)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    run = json.loads(ran.stdout)["data"]
    assert run["output"] == {"greeting": "Hello, Ada!"}
    logs = legion("--json", "task", "logs", str(run["tasks"][0]["id"]), env=env, cwd=work)
    assert [e["message"] for e in json.loads(logs.stdout)["data"]] == ["greeting Ada"]


def test_a_value_outside_the_declared_constraint_is_refused(installed: tuple[Path, dict[str, str]]) -> None:
    work, env = installed
    ran = legion("--json", "task", "run", "tickets.greeting.hello", "name=Ada", "punctuation=!!!!", env=env, cwd=work)
    assert ran.returncode == 2  # literal arguments are checked before any run is made
    error = json.loads(ran.stdout)["error"]
    assert "argument 'punctuation' of tickets.greeting.hello expects a string, got a string" in error["message"]
    assert "at most 3 characters" in error["message"]


def test_its_unit_tests_pass(installed: tuple[Path, dict[str, str]]) -> None:
    work, env = installed
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(work / "lex-tickets" / "tests")],
                           capture_output=True, text=True, env=env, cwd=work / "lex-tickets", timeout=120)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout
