"""The schema: migrations agree with the models, opening is cheap, errors are clear."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from legion.engine.data import Store, default_url
from legion.engine.data.models import metadata
from legion.engine.data.schema import SCHEMA_HEAD, alembic_config
from legion.engine.errors import ConfigError, ServiceUnavailable


def test_migrations_match_the_models(store: Store) -> None:
    # The store built its tables by running the migrations, never from the models.
    with store._engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_schema_head_names_the_newest_migration(store: Store) -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == SCHEMA_HEAD
    with store._engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_HEAD


def test_reopening_a_current_database_does_not_import_alembic(tmp_path: Path) -> None:
    url = default_url(tmp_path)
    Store(url).close()
    probe = (
        "import sys\nfrom legion.engine.data import Store\n"
        f"Store({url!r}).close()\nprint('alembic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_downgrade_and_upgrade_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    Store(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    with Store(url) as store:
        assert store.list_chains() == []


def test_sqlite_is_tuned(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'x.db'}") as store, store._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_default_url_creates_the_home(tmp_path: Path) -> None:
    home = tmp_path / "a" / "home"
    url = default_url(home)
    assert home.is_dir()
    assert url == f"sqlite:///{home.resolve() / 'legion.db'}"
    with Store.open(url) as store:
        assert store.dialect == "sqlite"
    assert (home / "legion.db").exists()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://legion:s3cret@127.0.0.1:1/legion",
        "mysql+pymysql://legion:s3cret@127.0.0.1:1/legion",
    ],
)
def test_unreachable_database_is_service_unavailable_without_the_password(url: str) -> None:
    with pytest.raises(ServiceUnavailable) as caught:
        Store(url)
    message = str(caught.value)
    assert "s3cret" not in message
    assert "legion:***@127.0.0.1:1/legion" in message
    assert caught.value.exit_code == 3


def test_sqlite_in_a_missing_directory_is_service_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ServiceUnavailable, match="no/such/dir"):
        Store(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}")


@pytest.mark.parametrize("url", ["not a url", "postgresql+nosuchdriver://u@h/db"])
def test_bad_url_is_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        Store(url)


def test_upgrade_false_insists_on_a_current_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(ConfigError, match="revision none"):
        Store(url, upgrade=False)
    Store(url).close()
    Store(url, upgrade=False).close()


def test_a_schema_from_a_newer_legion_is_config_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    Store(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(ConfigError, match="newer Legion"):
        Store(url)


def test_in_memory_sqlite_keeps_its_tables_across_calls(chain_item: object) -> None:
    with Store("sqlite://") as store:
        assert callable(chain_item)
        store.apply_chains([chain_item("alpha")])
        assert [c["name"] for c in store.list_chains()] == ["alpha"]


OPEN_AND_READ = """
import sys, time
from pathlib import Path
from legion.engine.data import Store
url, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
while not go.exists():
    time.sleep(0.001)
with Store(url) as store:
    store.list_runs()
"""


def test_processes_opening_a_fresh_sqlite_file_at_once_all_succeed(tmp_path: Path) -> None:
    # Like several `legion` commands started at once on a fresh home: each migrates or waits.
    url = f"sqlite:///{tmp_path / 'legion.db'}"
    go = tmp_path / "go"
    readies = [tmp_path / f"ready-{i}" for i in range(6)]
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_AND_READ, url, str(ready), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for ready in readies]
    try:
        deadline = time.monotonic() + 60
        while not all(r.exists() for r in readies) and time.monotonic() < deadline:
            time.sleep(0.01)
        go.touch()  # all imported: open the store in the same instant
        outcomes = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [code for code, _ in outcomes] == [0] * 6, "\n".join(err for _, err in outcomes)
    with Store(url, upgrade=False) as store, store._engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_HEAD
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
