"""Item 8: bad input to the CLI is refused with exit 2 and a sentence naming the option (or
setting, or file:line:col) and saying what to give, never exit 1 with "internal error".

The bounds checked here are the documented ones (docs/cli.md, docs/settings.md): worker
threads 1 to 1024; durations and `--timeout` finite, at most 3650 days (ten years); input
files and stdin UTF-8, at most 8 MiB.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from legion.engine.cli.main import main

HELLO = "chain: hello\nsteps:\n  a:\n    run: core.util.echo\n"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("LEGION_HOME", str(home))
    for name in ("LEGION_DATABASE_URL", "LEGION_WORKERS", "VAULT_ADDR", "VAULT_TOKEN", "LEGION_VAULT_MOUNT"):
        monkeypatch.delenv(name, raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield home
    for handler in root.handlers[:]:  # main() adds one per call
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def legion(capsys: pytest.CaptureFixture[str], *args: str, stdin: bytes | None = None,
           monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str]:
    """Run `legion ARGS --json` in this process: its exit code and error message."""
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    code = main([*args, "--json"])
    out = capsys.readouterr().out
    error = json.loads(out).get("error") if out.strip() else None
    return code, error["message"] if error else ""


def refused(capsys: pytest.CaptureFixture[str], *args: str, says: tuple[str, ...], **kwargs: object) -> str:
    code, message = legion(capsys, *args, **kwargs)  # type: ignore[arg-type]
    assert code == 2, f"exit {code}: {message}"
    assert "internal error" not in message
    for part in says:
        assert part in message, f"{part!r} not in {message!r}"
    return message


@pytest.fixture
def applied(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    chain = tmp_path / "hello.yaml"
    chain.write_text(HELLO)
    assert main(["chain", "apply", str(chain)]) == 0
    capsys.readouterr()
    return chain


def run_count(capsys: pytest.CaptureFixture[str]) -> int:
    assert main(["run", "list", "--json"]) == 0
    return len(json.loads(capsys.readouterr().out)["data"])


# -- the reported cases -----------------------------------------------------------------


def test_item8_input_files_that_are_not_utf8(applied: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff\xfe")
    refused(capsys, "chain", "run", "hello", "--input", f"@{bad}", says=("--input @", "not UTF-8", "give the input as UTF-8"))
    refused(capsys, "chain", "run", "hello", "--input-json", str(bad), says=("--input-json", "not UTF-8"))
    refused(capsys, "task", "run", "core.util.echo", "--input-json", str(bad), says=("--input-json", "not UTF-8"))
    refused(capsys, "chain", "run", "hello", "--input-json", "-", stdin=b"{\"a\": \"\xff\"}", monkeypatch=monkeypatch,
            says=("--input-json - (stdin)", "not UTF-8", "offset 7"))
    assert run_count(capsys) == 0


def test_item8_input_files_past_the_size_bound(applied: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from legion.engine.cli.args import MAX_INPUT_BYTES

    big = tmp_path / "big.json"
    big.write_text('{"a": "' + "x" * MAX_INPUT_BYTES + '"}')
    refused(capsys, "chain", "run", "hello", "--input", f"@{big}", says=("--input @", "more than 8 MiB"))
    refused(capsys, "chain", "run", "hello", "--input-json", str(big), says=("--input-json", "more than 8 MiB"))


@pytest.mark.parametrize("value", ["1e308", "inf", "-inf", "nan", "-1", "0", "315360001"])
def test_item8_timeout_must_be_positive_finite_and_bounded(applied: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    refused(capsys, "chain", "run", "hello", f"--timeout={value}", says=("--timeout", "seconds"))
    assert run_count(capsys) == 0  # refused before any run was created


def test_item8_the_longest_timeout_is_accepted(applied: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, message = legion(capsys, "chain", "run", "hello", "--timeout", "315360000")
    assert code == 0, message


@pytest.mark.parametrize("value", ["99999999999999d", "inf", "1e308", "3651d", "nan", "-1", "1e999"])
def test_item8_purge_older_than_must_be_a_bounded_duration(home: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    refused(capsys, "task", "purge", f"--older-than={value}", says=("--older-than",))


def test_item8_purge_takes_the_longest_duration(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, message = legion(capsys, "task", "purge", "--older-than", "3650d")
    assert code == 0, message


@pytest.mark.parametrize("value", ["99999999999999", "1025", "0", "-1", "many"])
def test_item8_start_workers_is_bounded_and_starts_nothing(home: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    threads = threading.active_count()
    refused(capsys, "start", f"--workers={value}", "--no-apply", says=("--workers", "from 1 to 1024"))
    assert threading.active_count() == threads
    assert not home.exists()  # refused while parsing: no database was even opened


@pytest.mark.parametrize("value", ["99999999999999", "1025", "0", "many", "1_000", "4.0", "9" * 5000])
def test_item8_legion_workers_is_bounded(home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                         value: str) -> None:
    monkeypatch.setenv("LEGION_WORKERS", value)
    message = refused(capsys, "chain", "list", says=("LEGION_WORKERS=", "from 1 to 1024"))
    assert len(message) < 200  # the value is quoted cut short


def test_item8_legion_workers_takes_the_bound(home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from legion.engine.settings import Settings

    monkeypatch.setenv("LEGION_WORKERS", "1024")
    assert Settings.from_env().workers == 1024


# -- durations in chain files -----------------------------------------------------------


def test_item8_durations_in_chain_files_are_bounded_with_file_line_col(home: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    chain = tmp_path / "durations.yaml"
    chain.write_text(
        "chain: durations\n"
        "on:\n"
        "  schedule:\n"
        "    - every: 1e308\n"                                        # line 4
        "steps:\n"
        "  a:\n"
        "    run: core.util.echo\n"
        "    timeout: 99999999999999d\n"                              # line 8
        "    delay: 1e308s\n"                                         # line 9
        "    retry: {count: 2, delay: '1e308', max_delay: 3651d}\n"   # line 10
        "  b:\n"
        "    run: core.util.echo\n"
        "    delay: 3650d\n"
        "    retry: {count: 5000, backoff: 2}\n"                      # line 14
    )
    code = main(["chain", "validate", str(chain)])
    assert code == 2
    err = capsys.readouterr().err
    assert "internal error" not in err
    for where, says in (("4:14", "on.schedule.0.every: duration 1e+308 is too long; give at most 3650d"),
                        ("8:14", "steps.a.timeout: duration '99999999999999d' is too long"),
                        ("9:12", "steps.a.delay: '1e308s' is not a duration"),
                        ("10:30", "steps.a.retry.delay: duration '1e308' is too long"),
                        ("10:50", "steps.a.retry.max_delay: duration '3651d' is too long"),
                        ("14:12", "steps.b.retry: backoff 2 over 5000 retries grows past any number")):
        assert f"{chain}:{where}: error: {says}" in err, err
    assert "steps.b.delay" not in err  # 3650d is the longest accepted


# -- every other option and setting ------------------------------------------------------


def test_item8_status_must_be_a_known_status(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from legion.engine.cli.main import RUN_STATUSES, TASK_STATUSES
    from legion.engine.conductor import RUN_STATUSES as CONDUCTOR_RUNS
    from legion.engine.conductor import TASK_STATUSES as CONDUCTOR_TASKS

    assert (RUN_STATUSES, TASK_STATUSES) == (CONDUCTOR_RUNS, CONDUCTOR_TASKS)
    refused(capsys, "task", "list", "--status", "bogus", says=("--status", "invalid choice", "timed_out"))
    refused(capsys, "run", "list", "--status", "bogus", says=("--status", "invalid choice", "canceled"))


def test_item8_a_legion_home_that_cannot_be_a_folder(tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "a-file"
    file.write_text("")
    monkeypatch.setenv("LEGION_HOME", str(file))
    for command in (["chain", "list"], ["db", "upgrade"]):
        refused(capsys, *command, says=("LEGION_HOME=", "cannot create that folder"))


def test_item8_settings_that_are_not_utf8_text(home: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # Bytes that are not UTF-8 reach Python as lone surrogates (os.fsdecode).
    monkeypatch.setenv("LEGION_DATABASE_URL", "postgresql+psycopg://legion:\udcff@127.0.0.1:1/x")
    message = refused(capsys, "chain", "list", says=("LEGION_DATABASE_URL", "not UTF-8"))
    assert "\udcff" not in message  # a password is never shown
    monkeypatch.delenv("LEGION_DATABASE_URL")
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:1")
    monkeypatch.setenv("VAULT_TOKEN", "tok\udcff")
    refused(capsys, "secret", "list", says=("VAULT_TOKEN", "not UTF-8"))
    monkeypatch.setenv("VAULT_TOKEN", "jeton-\u00e9t\u00e9")
    refused(capsys, "secret", "list", says=("VAULT_TOKEN", "printable ASCII"))


def test_item8_database_url_options_a_driver_cannot_read(home: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGION_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:1/x?connect_timeout=1e308")
    refused(capsys, "chain", "list", says=("an option in the URL is not valid", "connect_timeout", "after `?`"))


def test_item8_secret_values_that_are_not_utf8(home: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    refused(capsys, "secret", "set", "app/db", "password", "x\udcff", says=("the value", "not UTF-8"))
    refused(capsys, "secret", "set", "app/\udcff", "password", "x", says=("PATH", "not UTF-8"))
    refused(capsys, "secret", "set", "app/db", "pass\udcff", "x", says=("KEY", "not UTF-8"))
    monkeypatch.setenv("FROM_ENV", "x\udcff")
    refused(capsys, "secret", "set", "app/db", "password", "--from-env", "FROM_ENV", says=("FROM_ENV", "not UTF-8"))
    refused(capsys, "secret", "set", "app/db", "password", stdin=b"x\xffy\n", monkeypatch=monkeypatch,
            says=("stdin", "not UTF-8"))
    stored = home / "secrets.json"
    assert not stored.exists() or "app/db" not in stored.read_text()  # nothing was written


@pytest.mark.parametrize(("name", "value"), [
    ("LEGION_AMQP_URL", "http://127.0.0.1:5672/"), ("LEGION_AMQP_URL", "127.0.0.1:5672"),
    ("LEGION_REDIS_URL", "memcached://127.0.0.1:11211"), ("LEGION_REDIS_URL", "redis-at-home"),
])
def test_a_service_url_of_an_unknown_scheme_is_refused(tmp_path: Path, name: str, value: str) -> None:
    from legion.engine.errors import ConfigError
    from legion.engine.settings import Settings

    with pytest.raises(ConfigError, match=f"{name} starts with .*which Legion does not speak"):
        Settings.from_env({"LEGION_HOME": str(tmp_path), name: value})
    assert Settings.from_env({"LEGION_HOME": str(tmp_path), "LEGION_AMQP_URL": "amqps://u:p@h/v",
                              "LEGION_REDIS_URL": "rediss://h:6380/0"}).redis_url == "rediss://h:6380/0"
