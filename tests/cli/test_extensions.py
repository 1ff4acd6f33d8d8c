"""`legion lex list` and `legion doctor` with extensions that work, one that fails to load and
one whose function cannot be read; every other command keeps working beside them."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest
from cli_helpers import ROOT, as_json, install_extension, legion

PROBE = '''
from typing import Annotated

from pydantic import Field

from legion.sdk import function


@function(expose=False, timeout="30s", retry=2)
def sync(account: str, pages: Annotated[int, Field(ge=1, description="how many pages")] = 3, dry_run: bool = False) -> dict:
    """Sync an account.

    Args:
        account: the account's name
        dry_run: only say what would change
    """
    return {"account": account, "pages": pages}


def ping() -> str:
    """Answer pong."""
    return "pong"
'''

ODD = '''
from typing import Annotated

from pydantic import Field


def fine(x: int) -> int:
    return x


def unreadable(code: Annotated[str, Field(pattern="(")]) -> str:
    return code
'''

MISSING = "legion_missing_dependency_xyz"


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture()
def site(tmp_path: Path) -> dict[str, str]:
    """Three extensions installed beside the built-ins: `probe` works, `broken` fails to load
    (a missing module), `odd` loads but one of its functions has a signature that cannot be read."""
    site = tmp_path / "site"
    install_extension(site, "probe", {"misc": PROBE})
    install_extension(site, "broken", {"x": "def y() -> None: ...\n"}, init=f"import {MISSING}\n")
    return install_extension(site, "odd", {"sig": ODD})


def test_lex_list_shows_parameters_options_and_broken_extensions(home: Path, site: dict[str, str]) -> None:
    text = legion(home, "lex", "list", env=site).stdout  # exit 0: the others are fine
    assert ("    probe.misc.sync(account: string, pages?: integer, dry_run?: boolean)  "
            "[timeout 30s, retry 2, not exposed (API, MCP)]  - Sync an account.\n"
            "        account: string (required) — the account's name\n"
            "        pages: integer = 3 — how many pages\n"
            "        dry_run: boolean = false — only say what would change\n"
            "    probe.misc.ping()  - Answer pong.\n") in text
    assert "    core.util.log(message: string, level?: \"debug\"|\"info\"|\"warning\"|\"error\")" in text
    assert '        level: "debug"|"info"|"warning"|"error" = "info" — the log level\n' in text
    assert "    odd.sig.fine(x: integer)\n        x: integer (required)\n" in text
    assert "    odd.sig.unreadable  BROKEN: function odd.sig.unreadable: its signature cannot be read" in text
    assert ("broken extensions (they failed to load; the others work):\n"
            f"  broken (legion_broken:extension): ModuleNotFoundError: No module named '{MISSING}'\n"
            f"      hint: install the missing module '{MISSING}'") in text


def test_lex_list_json(home: Path, site: dict[str, str]) -> None:
    rows = {row["name"]: row for row in as_json(legion(home, "lex", "list", "--json", env=site))["data"]}
    shipped = {ep.name for ep in entry_points(group="legion.extensions") if ep.value.startswith("legion.extensions.")}
    assert {"core", "http", "llm", "claude", "openai", "gemini"} <= shipped
    assert {name: row["status"] for name, row in rows.items()} == {
        **{name: "ok" for name in shipped}, "broken": "broken", "odd": "ok", "probe": "ok"}
    broken = rows["broken"]
    assert broken["entry_point"] == "legion_broken:extension" and broken["runners"] == []
    assert broken["error"] == f"ModuleNotFoundError: No module named '{MISSING}'" and MISSING in broken["hint"]
    sync, ping = rows["probe"]["runners"][0]["functions"]
    assert sync["params"] == [
        {"name": "account", "type": "string", "schema": {"type": "string", "description": "the account's name"},
         "required": True, "default": None, "description": "the account's name"},
        {"name": "pages", "type": "integer", "schema": {"type": "integer", "minimum": 1, "description": "how many pages", "default": 3},
         "required": False, "default": 3, "description": "how many pages"},
        {"name": "dry_run", "type": "boolean", "schema": {"type": "boolean", "description": "only say what would change", "default": False},
         "required": False, "default": False, "description": "only say what would change"},
    ]
    assert (sync["returns"], sync["timeout"], sync["retry"], sync["expose"]) == (
        {"type": "object", "additionalProperties": True}, 30.0, {"count": 2}, False)
    assert sync["args_schema"]["required"] == ["account"] and sync["error"] is None
    assert (ping["params"], ping["returns"], ping["expose"], ping["timeout"], ping["retry"]) == ([], {"type": "string"}, True, None, None)
    unreadable = next(f for f in rows["odd"]["runners"][0]["functions"] if f["name"] == "unreadable")
    assert "signature cannot be read" in unreadable["error"] and unreadable["args_schema"] is None


def test_a_broken_extension_does_not_break_other_commands(home: Path, site: dict[str, str], tmp_path: Path) -> None:
    examples = ROOT / "chains" / "examples"
    assert "3 chain(s) valid" in legion(home, "chain", "validate", str(examples), env=site).stdout
    assert as_json(legion(home, "task", "run", "core.util.echo", "message=hi", "--json", env=site))["data"]["result"] == "hi"
    assert as_json(legion(home, "task", "run", "probe.misc.ping", "--json", env=site))["data"]["result"] == "pong"
    legion(home, "chain", "apply", str(examples), env=site)
    assert as_json(legion(home, "chain", "run", "hello", "name=Ada", "--json", env=site))["data"]["status"] == "succeeded"
    uses = tmp_path / "uses-broken.yaml"
    uses.write_text("chain: uses-broken\nsteps:\n  a: {run: broken.x.y}\n")
    proc = legion(home, "chain", "validate", str(uses), env=site, check=2)
    assert f"{uses}:3:12: error: 'broken.x.y' cannot be used: its extension 'broken' failed to load" in proc.stderr
    assert f"No module named '{MISSING}'" in proc.stderr
    refused = legion(home, "task", "run", "broken.x.y", "--json", env=site, check=None)
    assert refused.returncode != 0 and "'broken.x.y' cannot be used" in as_json(refused)["error"]["message"]


def test_doctor_reports_each_check(home: Path, site: dict[str, str]) -> None:
    proc = legion(home, "doctor", env=site, check=1)
    lines = proc.stdout.splitlines()
    assert lines[0] == f"ok    settings   home {home}, 4 worker thread(s), node " + lines[0].rsplit(" ", 1)[-1]
    assert f"ok    database   sqlite:///{home}/legion.db: no database yet; the first command that needs one creates it" in lines
    assert not home.exists()  # the doctor created nothing
    assert "ok    rabbitmq   LEGION_AMQP_URL not set: steps run in this process on the in-memory transport" in lines
    assert "ok    redis      LEGION_REDIS_URL not set: locks are in-process" in lines
    assert f"ok    vault      VAULT_ADDR not set: secrets in the embedded store ({home}/secrets.json)" in lines
    assert (f"fail  extension  broken (legion_broken:extension) failed to load: ModuleNotFoundError: No module named '{MISSING}'"
            in lines)
    assert f"                 hint: install the missing module '{MISSING}' into this environment, or uninstall the extension" in lines
    assert any(line.startswith("fail  extension  odd: 1 of 2 function(s) cannot be used: function odd.sig.unreadable") for line in lines)
    assert "ok    extension  probe: 1 runner(s), 2 function(s)" in lines
    assert "ok    extension  core: 1 runner(s), 6 function(s)" in lines
    assert lines[-1] == "2 check(s) failed (-v shows the tracebacks)"
    assert "Traceback" not in proc.stdout
    verbose = legion(home, "doctor", "-v", env=site, check=1).stdout
    assert "                 Traceback (most recent call last):\n" in verbose
    assert f"                 ModuleNotFoundError: No module named '{MISSING}'\n" in verbose

    data = as_json(legion(home, "doctor", "--json", env=site, check=1))["data"]
    assert (data["ok"], data["failed"]) == (False, 2)
    broken = next(c for c in data["checks"] if c["status"] == "fail" and "broken" in c["message"])
    assert broken["name"] == "extension" and MISSING in broken["hint"] and MISSING in broken["detail"]

    legion(home, "chain", "apply", str(ROOT / "chains" / "examples"))
    healthy = legion(home, "doctor")  # exit 0: the built-ins alone, and a database
    assert f"ok    database   sqlite:///{home}/legion.db: reachable, schema current (revision " in healthy.stdout
    assert healthy.stdout.rstrip().endswith("no check failed")
    assert as_json(legion(home, "doctor", "--json"))["data"]["ok"] is True


def test_doctor_with_an_unreachable_database_and_bad_settings(home: Path, site: dict[str, str]) -> None:
    env = dict(site, LEGION_DATABASE_URL="postgresql+psycopg://legion@127.0.0.1:1/legion")
    proc = legion(home, "doctor", env=env, check=1)
    assert "fail  database   postgresql+psycopg://legion@127.0.0.1:1/legion: cannot connect: " in proc.stdout
    assert "hint: check LEGION_DATABASE_URL and that the database server is running" in proc.stdout
    assert "ok    extension  probe" in proc.stdout and proc.stderr == ""
    data = as_json(legion(home, "doctor", "--json", env=env, check=1))["data"]
    assert [c["status"] for c in data["checks"] if c["name"] == "database"] == ["fail"]

    bad = as_json(legion(home, "doctor", "--json", env={"LEGION_WORKERS": "many"}, check=1))["data"]
    settings = [c for c in bad["checks"] if c["name"] == "settings"]
    assert settings[0]["status"] == "fail" and "LEGION_WORKERS='many'" in settings[0]["message"]
    assert {c["name"]: c["status"] for c in bad["checks"] if c["name"] in ("database", "vault")} == {"database": "warn", "vault": "warn"}
    missing = as_json(legion(home, "doctor", "--json", env={"LEGION_DATABASE_URL": "env://LEGION_TEST_NO_SUCH_VAR"}, check=1))["data"]
    assert "LEGION_TEST_NO_SUCH_VAR" in missing["checks"][0]["message"]
