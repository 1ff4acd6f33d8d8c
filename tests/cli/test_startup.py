"""What commands import before they work, and the shortcuts that keep it small.

Timing belongs in `bench/startup.py`; these tests check the causes instead (which modules a
command loads), which does not depend on the machine's speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version as metadata_version
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from legion.engine.cli.main import _version
from legion.engine.data import Store
from legion.engine.data.urls import sqlite_path

ONE_STEP = "chain: one\nsteps:\n  hello:\n    run: core.util.echo\n    with: {message: hi}\n"


def loaded_after(code: str, home: Path, cwd: Path) -> set[str]:
    """The top-level packages loaded by a fresh interpreter after running `code`."""
    report = "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    env = dict(os.environ, LEGION_HOME=str(home))
    for name in ("LEGION_DATABASE_URL", "VAULT_ADDR"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-c", code + report], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.splitlines()[-1]))


def run_cli(*args: str) -> str:
    return f"from legion.engine.cli.main import main\nassert main({list(args)!r}) == 0"


def test_version_loads_neither_the_runtime_nor_importlib_metadata(tmp_path: Path) -> None:
    code = ("import sys\nfrom legion.engine.cli.main import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "assert 'importlib.metadata' not in sys.modules, 'importlib.metadata was imported'")
    loaded = loaded_after(code, tmp_path / "home", tmp_path)
    assert not loaded & {"sqlalchemy", "jinja2", "pydantic", "jsonschema", "httpx", "croniter"}


def test_validate_in_a_home_without_a_database_does_not_import_sqlalchemy(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(ONE_STEP)
    loaded = loaded_after(run_cli("chain", "validate", "one.yaml"), tmp_path / "home", tmp_path)
    assert not loaded & {"sqlalchemy", "croniter", "jinja2"}  # (no template in the chain, so no Jinja2)
    assert not (tmp_path / "home").exists()  # and it created nothing


def test_jinja_loads_with_the_first_template(tmp_path: Path) -> None:
    code = ("import sys\nfrom legion.dsl.expressions import Condition, Template, compile_value, json_value\n"
            "compile_value({'a': [1, 'b']})({}); Condition('succeeded and result.ok'); json_value({'x': ['y']})\n"
            "assert 'jinja2' not in sys.modules\n"
            "assert Template('{{ a | length }}').render({'a': 'abc'}) == 3")
    assert "jinja2" in loaded_after(code, tmp_path, tmp_path)


def test_masking_and_secret_stores_load_without_jinja(tmp_path: Path) -> None:
    loaded = loaded_after("import legion.engine.cli.output, legion.engine.secrets, legion.engine.settings",
                          tmp_path, tmp_path)
    assert not loaded & {"jinja2", "simpleeval", "sqlalchemy", "pydantic"}


def test_validation_needs_jsonschema_only_for_input_schemas(tmp_path: Path) -> None:
    code = ("from legion.dsl.validate import load_chain\n"
            "load_chain('one.yaml', text='chain: one\\nsteps: {a: {run: core.util.echo}}\\n')")
    assert "jsonschema" not in loaded_after(code, tmp_path, tmp_path)


def test_a_sqlite_store_loads_neither_the_orm_nor_other_backends(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/legion.db"
    Store(url).close()  # created and migrated here: migrating imports alembic, and alembic the ORM
    code = (f"import sys\nfrom legion.engine.data import Store\nstore = Store({url!r})\n"
            "store.apply_chains([]); store.event_chains(); store.sync_registry([])\n"
            "assert not [m for m in sys.modules if m.startswith(('sqlalchemy.orm', 'sqlalchemy.dialects.postgresql'))]")
    loaded_after(code, tmp_path, tmp_path)


# -- the version without importlib.metadata ---------------------------------------------


def dist_info(folder: Path, name: str, version: str) -> Path:
    info = folder / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nVersion: not this\n")
    return info


def test_the_version_is_the_installed_one() -> None:
    assert _version() == metadata_version("legion")


@pytest.mark.parametrize(("layout", "expected"), [
    ("dist-info", "9.1.dev3"), ("capitalised", "9.2"), ("egg-info first", "9.3"), ("other packages", "7.0"),
    ("no metadata file", None),
])
def test_the_version_is_what_importlib_metadata_finds_first(layout: str, expected: str | None, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    dist_info(second, "legion", "7.0")
    if layout == "dist-info":
        dist_info(first, "legion", "9.1.dev3")
    elif layout == "capitalised":
        dist_info(first, "Legion", "9.2")
    elif layout == "egg-info first":
        (first / "legion.egg-info").mkdir()
        (first / "legion.egg-info" / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: legion\nVersion: 9.3\n")
    elif layout == "other packages":
        dist_info(first, "legion_tickets", "1.0")
        dist_info(first, "legionella", "2.0")
    elif layout == "no metadata file":
        (first / "legion-9.4.dist-info").mkdir()
    monkeypatch.setattr(sys, "path", [str(tmp_path / "missing"), str(first), str(second), *sys.path])
    try:
        found = metadata_version("legion")
    except TypeError:  # once a library imported the importlib_metadata backport, its finder raises on a bare dist-info
        found = None
    assert found == expected
    assert _version() == expected


# -- a SQLite URL read without SQLAlchemy ---------------------------------------------------


@pytest.mark.parametrize("url", [
    "sqlite:///legion.db", "sqlite:////var/lib/legion/legion.db", "sqlite+pysqlite:////tmp/x.db",
    "sqlite:///:memory:", "sqlite:///", "sqlite:////tmp/a%20b/c%25d.db", "sqlite:////tmp/x.db?mode=ro&cache=shared",
    "sqlite:///file:data.db?mode=ro&uri=true", "sqlite:////tmp/é/legion.db",
])
def test_a_plain_sqlite_url_reads_as_sqlalchemy_reads_it(url: str) -> None:
    assert sqlite_path(url) == make_url(url).database


@pytest.mark.parametrize("url", [
    "sqlite://", "sqlite://?mode=memory", "sqlite://host/x.db", "postgresql+psycopg://u:p@h/db",
    "mysql+pymysql://root@127.0.0.1:3306/test", "not a url", "SQLITE:///x.db", "sqlitex:///x.db",
])
def test_other_urls_are_left_to_sqlalchemy(url: str) -> None:
    assert sqlite_path(url) is None


def test_a_bare_dist_info_is_no_version_even_with_the_importlib_metadata_backport(tmp_path: Path,
                                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a library imported the importlib_metadata backport, its finder raises TypeError on
    a dist-info without METADATA; `legion --version` must not."""
    pytest.importorskip("importlib_metadata")
    (tmp_path / "legion-9.4.dist-info").mkdir()
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    assert _version() is None
