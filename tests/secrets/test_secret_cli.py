"""`legion secret ...` and secrets in chain runs, end to end: subprocesses, a fresh LEGION_HOME."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-value"
CHAINS = {
    "bearer.yaml": """
chain: bearer
steps:
  call:
    run: core.util.echo
    with: {message: "Bearer {{ secret('api#token') }}"}
output: {said: "{{ result }}"}
""",
    "plain.yaml": """
chain: plain
steps:
  call:
    run: core.util.echo
    with: {message: "{{ secret('api#token') }}"}
    next:
      - do: note
  note:
    run: core.util.log
    with: {message: "the token is {{ secret('api#token') }}"}
output: {said: "{{ ctx.get('x', 'none') }}"}
""",
    "missing.yaml": """
chain: missing
steps:
  call:
    run: core.util.echo
    with: {message: "{{ secret('api#nope') }}"}
""",
}


def legion(home: Path, *args: str, check: int | None = 0, env: dict[str, str] | None = None,
           stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, LEGION_HOME=str(home), **(env or {}))
    for name in ("LEGION_DATABASE_URL", "VAULT_ADDR", "VAULT_TOKEN", "LEGION_VAULT_MOUNT"):
        if name not in (env or {}):
            full_env.pop(name, None)
    proc = subprocess.run([sys.executable, "-m", "legion.engine.cli.main", *args], capture_output=True, text=True,
                          env=full_env, cwd=ROOT, timeout=120, input=stdin if stdin is not None else "")
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def data(proc: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(proc.stdout)["data"]


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "chains"
    folder.mkdir()
    for name, text in CHAINS.items():
        (folder / name).write_text(text)
    return tmp_path / "home"


# The token a chain renders: the reference and a MAC made with the process's key.
REFERENCE = r"Bearer «secret:api#token\|[0-9a-f]{24}»"


def test_a_secret_reaches_the_step_and_is_never_recorded_or_printed(home: Path) -> None:
    out = legion(home, "secret", "set", "api", "token", SECRET)
    assert SECRET not in out.stdout + out.stderr
    legion(home, "chain", "apply", str(home.parent / "chains"))
    run = data(legion(home, "chain", "run", "bearer", "--json"))
    assert run["status"] == "succeeded" and run["output"] == {"said": "Bearer ***"}
    shown = legion(home, "run", "show", run["id"], "--json")
    assert "***" in shown.stdout and SECRET not in shown.stdout
    task = data(shown)["tasks"][0]
    assert re.fullmatch(REFERENCE, task["args"]["message"])  # the reference, not the value
    assert task["result"] == "Bearer ***"
    text = legion(home, "run", "show", run["id"])
    assert 'output: {"said": "Bearer ***"}' in text.stdout and SECRET not in text.stdout
    # The database never holds the value: not in any row, not anywhere in the file.
    database = home / "legion.db"
    with sqlite3.connect(database) as db:
        for table in ("runs", "tasks", "task_logs"):
            assert SECRET not in repr(db.execute(f"select * from {table}").fetchall())
        args = db.execute("select args from tasks").fetchone()[0]
    assert re.fullmatch(REFERENCE, json.loads(args)["message"])
    assert SECRET.encode() not in database.read_bytes()


def test_values_a_step_returns_or_logs_are_masked_in_both_modes(home: Path) -> None:
    legion(home, "secret", "set", "api", "token", stdin=SECRET + "\n")  # from stdin, its newline dropped
    legion(home, "chain", "apply", str(home.parent / "chains"))
    waited = legion(home, "chain", "run", "plain", "--wait")
    assert "✓ call succeeded" in waited.stdout and SECRET not in waited.stdout + waited.stderr
    run = data(legion(home, "chain", "run", "plain", "--json"))
    tasks = data(legion(home, "task", "list", "--run", run["id"], "--json"))
    call = next(t for t in tasks if t["step"] == "call")
    note = next(t for t in tasks if t["step"] == "note")
    assert call["result"] == "***"  # the secret came back whole: stdin gave exactly the value
    for args in (["task", "show", str(call["id"])], ["task", "logs", str(note["id"])], ["task", "list"]):
        for mode in ([], ["--json"]):
            printed = legion(home, *args, *mode).stdout
            assert SECRET not in printed
    logs = data(legion(home, "task", "logs", str(note["id"]), "--json"))
    assert [entry["message"] for entry in logs] == ["the token is ***"]
    # Text that merely looks like a token (here an argument; it could be a run's input or a
    # step's result) is not resolved: only secret() in a chain makes a token.
    forged = data(legion(home, "task", "run", "core.util.echo", "message=«secret:api#token»", "--json"))
    assert forged["result"] == "«secret:api#token»" and SECRET not in json.dumps(forged)


def test_a_missing_secret_fails_the_step_with_secret_error(home: Path) -> None:
    legion(home, "chain", "apply", str(home.parent / "chains"))
    proc = legion(home, "chain", "run", "missing", "--json", check=1)
    error = data(proc)["error"]
    assert error["type"] == "SecretError" and error["step"] == "call"
    assert "'api#nope'" in error["message"] and "legion secret set api nope" in error["message"]


def test_secret_set_list_delete(home: Path) -> None:
    assert data(legion(home, "secret", "list", "--json"))["secrets"] == {}
    assert "no secrets" in legion(home, "secret", "list").stdout
    legion(home, "secret", "set", "api", "token", "--from-env", "THE_TOKEN", env={"THE_TOKEN": SECRET})
    legion(home, "secret", "set", "db", "password", stdin="pw-from-stdin")
    listed = legion(home, "secret", "list", "--json")
    assert data(listed)["secrets"] == {"api": ["token"], "db": ["password"]} and data(listed)["store"] == "embedded"
    assert SECRET not in listed.stdout and "pw-from-stdin" not in listed.stdout
    assert legion(home, "secret", "list").stdout.splitlines() == ["api: token", "db: password"]
    stored = json.loads((home / "secrets.json").read_text())
    assert stored == {"api": {"token": SECRET}, "db": {"password": "pw-from-stdin"}}
    assert oct((home / "secrets.json").stat().st_mode & 0o777) == "0o600"
    deleted = data(legion(home, "secret", "delete", "api", "token", "--json"))
    assert deleted["path"] == "api" and deleted["key"] == "token"
    legion(home, "secret", "delete", "db")
    assert data(legion(home, "secret", "list", "--json"))["secrets"] == {}


@pytest.mark.parametrize("args, stdin, message", [
    (["secret", "set", "api", "token"], "", "no value"),
    (["secret", "set", "api", "token", "v", "--from-env", "X"], None, "not both"),
    (["secret", "set", "api", "token", "--from-env", "SURELY_UNSET_VARIABLE"], None, "not set"),
    (["secret", "set", "a#b", "token", "v"], None, "without '#'"),
    (["secret", "delete", "nothing-here"], None, "nothing at path"),
    (["secret", "set", "api"], None, "key"),
])
def test_bad_input_exits_2(home: Path, args: list[str], stdin: str | None, message: str) -> None:
    proc = legion(home, *args, "--json", check=2, stdin=stdin)
    assert message in json.loads(proc.stdout)["error"]["message"]


def test_an_unreachable_vault_exits_3(home: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"VAULT_ADDR": f"http://127.0.0.1:{port}", "VAULT_TOKEN": "root"}
    proc = legion(home, "secret", "list", "--json", check=3, env=env)
    assert json.loads(proc.stdout)["error"]["code"] == "service_unavailable"
    proc = legion(home, "secret", "set", "api", "token", SECRET, check=3, env=env)
    assert "cannot be reached" in proc.stderr and SECRET not in proc.stderr
