"""Masking: every known secret value becomes `***` in what the engine records and prints."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

from legion.dsl.budget import step_binding
from legion.dsl.tokens import make_token
from legion.engine.chains import apply_items, load_chains
from legion.engine.cli.output import MaskingFormatter, Output, table
from legion.engine.data.store import Store
from legion.engine.errors import LegionError
from legion.engine.recorder import Recorder
from legion.engine.registry import Registry
from legion.engine.runtime import Engine
from legion.engine.secrets import MASKER, EmbeddedSecrets, Masker, Resolver

SECRET = "s3cr3t-value"


# ---------------------------------------------------------------- the masker


def test_an_empty_masker_returns_values_untouched() -> None:
    masker = Masker()
    value = {"a": ["x", {"b": "y"}]}
    assert not masker.active
    assert masker.mask(value) is value
    row = {"result": "x"}
    assert masker.mask_fields(row, ("result",)) is row


def test_known_values_are_masked_at_any_depth_keys_too() -> None:
    masker = Masker()
    masker.remember(SECRET)
    value = {SECRET: [f"Bearer {SECRET}", {"b": SECRET}], "n": 1, "t": True, "z": None}
    assert masker.mask(value) == {"***": ["Bearer ***", {"b": "***"}], "n": 1, "t": True, "z": None}
    assert value["n"] == 1 and value[SECRET][1] == {"b": SECRET}  # the input is not changed


def test_short_values_are_not_masked() -> None:
    masker = Masker()
    masker.remember("abc")
    assert not masker.active and masker.text("abcdef") == "abcdef"


def test_the_longest_value_wins_and_json_escaped_forms_are_caught() -> None:
    masker = Masker()
    masker.remember("secret")
    masker.remember("secret-and-more")
    assert masker.text("x secret-and-more y secret") == "x *** y ***"
    masker.remember('pa"ss\\word')
    assert masker.text(json.dumps({"p": 'pa"ss\\word'})) == '{"p": "***"}'


def test_structured_secrets_mask_their_leaves() -> None:
    masker = Masker()
    masker.remember({"user": "admin-user", "port": 54321, "flags": [True, "long-flag"]})
    assert masker.text("admin-user:54321 long-flag True") == "***:*** *** True"


def test_only_the_fields_that_may_hold_values_are_masked() -> None:
    masker = Masker()
    masker.remember("core.util.echo")  # absurd, but a step name must survive it
    row = {"function": "core.util.echo", "result": "core.util.echo!"}
    assert masker.mask_fields(row, ("result",)) == {"function": "core.util.echo", "result": "***!"}


# ---------------------------------------------------------------- the recorder


class Capture:
    def __init__(self) -> None:
        self.runs: list[Any] = []
        self.tasks: list[Any] = []
        self.logs: list[Any] = []

    def record(self, run: Any, tasks: list[Any], logs: list[Any] | None = None) -> None:
        if run is not None:
            self.runs.append(run)
        self.tasks += tasks
        self.logs += logs or []


def test_the_recorder_masks_rows_before_they_are_written() -> None:
    MASKER.remember(SECRET)
    capture = Capture()
    recorder = Recorder(capture)
    recorder.task({"run_id": "r", "number": 1, "step": "s", "args": {"h": f"Bearer {SECRET}"},
                   "result": {"token": SECRET}, "error": {"type": "X", "message": f"bad {SECRET}"}})
    recorder.log({"run_id": "r", "number": 1, "level": "info", "message": f"using {SECRET}", "data": {"v": SECRET}})
    recorder.run({"id": "r", "status": "failed", "output": [SECRET], "error": {"message": SECRET}, "input": {"i": SECRET}})
    recorder.close()
    assert capture.tasks == [{"run_id": "r", "number": 1, "step": "s", "args": {"h": "Bearer ***"},
                              "result": {"token": "***"}, "error": {"type": "X", "message": "bad ***"}}]
    assert capture.logs == [{"run_id": "r", "number": 1, "level": "info", "message": "using ***", "data": {"v": "***"}}]
    assert capture.runs == [[{"id": "r", "status": "failed", "output": ["***"], "error": {"message": "***"}, "input": {"i": "***"}}]]


def test_the_embedded_runtime_never_writes_a_resolved_secret(tmp_path: Path) -> None:
    secrets = EmbeddedSecrets(tmp_path / "home")
    secrets.write("api", "token", SECRET)
    folder = tmp_path / "chains"
    folder.mkdir()
    (folder / "leaky.yaml").write_text("""
chain: leaky
steps:
  echo:
    run: core.util.echo
    with: {message: "{{ secret('api#token') }}"}
    next:
      - publish: {token: "{{ result }}"}
        do: sub
  sub:
    run: chain:inner
    with: {token: "{{ ctx.token }}"}
    next:
      - do: log
  log:
    run: core.util.log
    with: {message: "the token is {{ secret('api#token') }}", level: warning}
    next:
      - do: refuse
  refuse:
    run: core.util.fail
    with: {message: "refused {{ ctx.token }}"}
output: {token: "{{ ctx.token }}"}
""")
    (folder / "inner.yaml").write_text("""
chain: inner
steps:
  use:
    run: core.util.echo
    with: {message: "{{ input.token }}"}
output: {got: "{{ result }}"}
""")
    registry = Registry.discover()
    store = Store(f"sqlite:///{tmp_path / 'legion.db'}")
    files, _ = load_chains([folder], registry)
    store.apply_chains(apply_items(files))
    with Engine(registry, store, workers=2, secrets=Resolver(secrets)) as engine:
        run = engine.wait(engine.submit("leaky", {}), 20)
    tasks = store.run_tasks(run["id"])
    assert run["status"] == "failed" and run["output"] == {"token": "***"}
    assert run["error"]["message"] == "refused ***"
    by_step = {t["step"]: t for t in tasks}
    # Each step run's arguments hold a token bound to that step run (spec section 7).
    bound = {name: make_token("api#token", step_binding(run["id"], by_step[name]["number"])) for name in ("echo", "log")}
    assert by_step["echo"]["args"] == {"message": bound["echo"]} and by_step["echo"]["result"] == "***"
    assert by_step["log"]["args"] == {"message": f"the token is {bound['log']}", "level": "warning"}
    logs = store.task_logs(by_step["log"]["id"])
    assert [e["message"] for e in logs] == ["the token is ***"]
    assert by_step["sub"]["args"] == {"token": "***"}  # a value from a result, masked all the same
    children = [r for r in store.list_runs(limit=10) if r["parent_run_id"] == run["id"]]
    assert children and children[0]["input"] == {"token": "***"} and children[0]["output"] == {"got": "***"}
    assert SECRET.encode() not in (tmp_path / "legion.db").read_bytes()
    with sqlite3.connect(tmp_path / "legion.db") as db:
        for table_name in ("runs", "tasks", "task_logs"):
            rows = db.execute(f"select * from {table_name}").fetchall()
            assert rows and SECRET not in repr(rows)


# ---------------------------------------------------------------- what the CLI prints


def outputs(json_mode: bool) -> tuple[Output, io.StringIO]:
    buffer = io.StringIO()
    return Output(json_mode, buffer), buffer


def test_cli_output_is_masked_in_text_mode(capsys: Any) -> None:
    MASKER.remember(SECRET)
    out, buffer = outputs(False)
    out.data({"result": SECRET}, lambda: f"result: {SECRET}")
    out.data({"result": SECRET})  # the default rendering
    out.progress(f"  ✗ step failed: {SECRET}")
    out.error(LegionError(f"no good: {SECRET}"))
    assert SECRET not in buffer.getvalue() and buffer.getvalue().count("***") == 3
    assert capsys.readouterr().err == "error: no good: ***\n"


def test_cli_output_is_masked_in_json_mode_keeping_the_document_whole() -> None:
    MASKER.remember(SECRET)
    MASKER.remember("data")  # even a value that is one of the envelope's keys leaves the envelope alone
    out, buffer = outputs(True)
    out.data({"task": {"result": f"Bearer {SECRET}", "at": __import__("datetime").datetime(2024, 1, 1)}})
    out.error(LegionError(f"no good: {SECRET}", details={"value": SECRET}))
    first, second = (json.loads(line) for line in buffer.getvalue().splitlines())
    assert first == {"data": {"task": {"result": "Bearer ***", "at": "2024-01-01T00:00:00"}}}
    assert second["error"]["message"] == "no good: ***" and second["error"]["details"] == {"value": "***"}


def test_table_cells_are_masked_before_they_are_cut_short() -> None:
    MASKER.remember("x" * 50 + "tail-of-secret")
    cell = table([{"v": {"k": "x" * 50 + "tail-of-secret"}}], ["v"])
    assert "xxxxx" not in cell and "***" in cell


def test_log_lines_on_stderr_are_masked() -> None:
    MASKER.remember(SECRET)
    record = logging.LogRecord("legion", logging.WARNING, __file__, 1, "got %s", (SECRET,), None)
    assert MaskingFormatter("%(message)s").format(record) == "got ***"
