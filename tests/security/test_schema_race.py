"""Item 7: the first use of a fresh database by many processes at once.

Before the migration lock, MariaDB let concurrent first commands each run the migrations
(its DDL commits as it goes): `Table 'extensions' already exists`. After an apply, concurrent
`chain run`s each inserted the missing extensions: `Duplicate entry 'core' for key
'uq_extensions_name'`. Now every first use takes the migration lock, checks and migrates
under it, and the registry sync retries a lost race.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from legion.engine.data import schema
from legion.engine.data.schema import SCHEMA_HEAD
from legion.engine.data.store import Store
from legion.engine.errors import ServiceUnavailable

pytest_plugins = ["security_databases"]  # fresh_db_url: on SQLite, PostgreSQL and MariaDB

CHAIN = "chain: racy\nsteps:\n  a:\n    run: core.util.echo\n    with: {message: hi}\n"

# `legion` commands, each in its own process, all released at once. One interpreter imports
# everything and forks the others (imports cost a second of CPU a process; a fork costs
# next to nothing), so every process reaches the database in the same instant: the race is
# in what the commands do, not in how fast they start.
RACER = """
import json, os, sys, time
from pathlib import Path
import legion.engine.cli.commands, legion.engine.cli.chains, legion.engine.data.store, legion.engine.runtime
from legion.engine.cli.main import main
from legion.engine.registry import Registry
Registry.discover()  # the extensions' modules, imported once for all
go, out = Path(sys.argv[1]), Path(sys.argv[2])
children = []
for i, command in enumerate(json.loads(sys.argv[3])):
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            for fd, name in ((1, "out"), (2, "err")):
                os.dup2(os.open(out / f"{i}.{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            while not go.exists():
                time.sleep(0.001)
            code = main(command)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    children.append(pid)
(out / "ready").touch()
print(json.dumps([os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]))
"""


def race(tmp_path: Path, url: str, commands: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Run each `legion` command in its own process, all released at once; their outcomes."""
    env = dict(os.environ, LEGION_DATABASE_URL=url, LEGION_HOME=str(tmp_path / "home"))
    out = tmp_path / f"race-{secrets.token_hex(4)}"
    out.mkdir()
    go = out / "go"
    proc = subprocess.Popen([sys.executable, "-c", RACER, str(go), str(out), json.dumps(commands)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "ready").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the racing processes did not start"
            time.sleep(0.01)
        go.touch()
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    codes = json.loads(stdout.splitlines()[-1])
    return [subprocess.CompletedProcess(command, code, (out / f"{i}.out").read_text(), (out / f"{i}.err").read_text())
            for i, (command, code) in enumerate(zip(commands, codes, strict=True))]


def schema_rows(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()


def test_item7_many_processes_first_using_a_fresh_database_all_succeed(fresh_db_url: str, tmp_path: Path) -> None:
    chain = tmp_path / "racy.yaml"
    chain.write_text(CHAIN)
    # First use: the schema. Every process finds no schema and migrates, or waits for the
    # one that does; the applies of one chain agree on one version.
    outcomes = race(tmp_path, fresh_db_url, [["db", "upgrade"]] * 2 + [["chain", "apply", str(chain)]] * 4)
    failed = [f"{' '.join(o.args)} -> exit {o.returncode}: {o.stderr.strip()}" for o in outcomes if o.returncode != 0]
    assert not failed, "\n".join(failed)
    assert schema_rows(fresh_db_url) == [SCHEMA_HEAD]  # migrated once, to head
    with Store(fresh_db_url, upgrade=False) as store:
        assert [v["version"] for v in store.chain_history("racy")] == [1]
        assert store.list_extensions(include_inactive=True) == []  # what the runs below fill in

    # The reported case: runs at once after the apply, each syncing the installed extensions
    # into the empty registry tables.
    outcomes = race(tmp_path, fresh_db_url, [["chain", "run", "racy", "--json"]] * 6)
    failed = [f"exit {o.returncode}: {o.stderr.strip() or o.stdout.strip()}" for o in outcomes if o.returncode != 0]
    assert not failed, "\n".join(failed)
    runs = [json.loads(o.stdout)["data"] for o in outcomes]
    assert [(r["status"], r["tasks"][0]["result"]) for r in runs] == [("succeeded", "hi")] * 6
    with Store(fresh_db_url, upgrade=False) as store:
        names = [e["name"] for e in store.list_extensions(include_inactive=True)]
        assert sorted(names) == sorted(set(names)) and "core" in names
    assert schema_rows(fresh_db_url) == [SCHEMA_HEAD]


def test_item7_db_upgrade_migrates_a_fresh_database_then_finds_it_current(
        fresh_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from legion.engine.cli.main import main

    monkeypatch.setenv("LEGION_DATABASE_URL", fresh_db_url)
    monkeypatch.setenv("LEGION_HOME", str(tmp_path / "home"))
    assert main(["db", "upgrade", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["data"]
    assert first["from"] is None and first["to"] == SCHEMA_HEAD and first["migrated"] is True
    assert main(["db", "upgrade"]) == 0
    assert f"is current (revision {SCHEMA_HEAD})" in capsys.readouterr().out
    assert schema_rows(fresh_db_url) == [SCHEMA_HEAD]


@pytest.mark.integration
@pytest.mark.parametrize("db_backend", ["postgresql", "mariadb"])
def test_item7_first_use_waits_for_the_migration_lock(fresh_db_url: str, db_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock is real: while another session holds it, opening a fresh database waits
    (here: gives up after a short wait) and creates nothing; once it is free, the open
    migrates."""
    monkeypatch.setattr(schema, "MIGRATE_WAIT_S", 0.5)
    holder = create_engine(fresh_db_url)
    try:
        with holder.connect() as conn:
            if db_backend == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": schema.PG_LOCK_KEY})
            else:
                name = schema._mysql_lock_name(conn.execute(text("SELECT DATABASE()")).scalar())
                assert conn.execute(text("SELECT GET_LOCK(:name, 0)"), {"name": name}).scalar() == 1
            conn.commit()
            with pytest.raises(ServiceUnavailable, match="migration lock"):
                Store(fresh_db_url)
            assert not holder.dialect.has_table(conn, "alembic_version")
            conn.rollback()
        # The holder's connection went back to the pool still holding the lock: drop it.
        holder.dispose()
        with Store(fresh_db_url) as store:
            assert store.list_runs() == []
        assert schema_rows(fresh_db_url) == [SCHEMA_HEAD]
    finally:
        holder.dispose()
