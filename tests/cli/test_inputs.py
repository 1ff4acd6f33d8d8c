"""`key=value` arguments typed by the schema they feed, `--input-json`, and run inputs that do
not fit the chain's `input` schema refused before a run exists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import as_json, install_extension, legion

TYPED_CHAIN = """\
chain: typed
input:
  type: object
  required: [n]
  properties:
    n: {type: integer}
    ratio: {type: number}
    file: {type: string}
    flag: {type: boolean}
    tags: {type: array, items: {type: string}}
    opts: {type: object}
    maybe: {type: [integer, "null"]}
    either: {anyOf: [{type: integer}, {type: string}]}
    anything: {}
steps:
  s: {run: core.util.noop}
"""

PROBE = '''
def kinds(file: str, n: int, items: list[int], flag: bool = False, maybe: int | None = 1, note: str = "") -> dict:
    """Each argument with the name of its Python type."""
    return {name: [value, type(value).__name__] for name, value in locals().items()}
'''


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture()
def typed(home: Path, tmp_path: Path) -> Path:
    chain = tmp_path / "typed.yaml"
    chain.write_text(TYPED_CHAIN)
    legion(home, "chain", "apply", str(chain))
    return chain


def runs(home: Path) -> list[dict[str, object]]:
    return list(as_json(legion(home, "run", "list", "--json"))["data"])


def test_chain_run_values_are_typed_by_the_input_schema(home: Path, typed: Path) -> None:
    data = as_json(legion(home, "chain", "run", "typed", "--json", "n=50", "ratio:2.5", "file=123", "flag=true",
                          'tags=["a", "b"]', 'opts={"k": 1}', "maybe=null", "either=7", "anything=[1]",
                          "other=8", "note:x #y: z"))["data"]
    assert data["status"] == "succeeded"
    assert data["input"] == {
        "n": 50, "ratio": 2.5, "file": "123", "flag": True, "tags": ["a", "b"], "opts": {"k": 1}, "maybe": None,
        "either": "7",  # the schema admits a string: the text is kept
        "anything": "[1]",  # no type: text
        "other": "8",  # a key the schema does not describe: text
        "note": "x #y: z",  # nothing is read as YAML: no comment, no mapping
    }
    # --input key=value is typed the same way; JSON documents keep their own types.
    data = as_json(legion(home, "chain", "run", "typed", "--json", "--input", "n=7", "--input", '{"file": 5, "n": 1}',
                          "--input", "file=6"))["data"]
    assert data["input"] == {"n": 1, "file": "6"}


@pytest.mark.parametrize(("pair", "problem"), [
    ("n=5x", "at n: '5x' is not of type 'integer'"),  # not JSON: kept as text, reported by validation
    ("n=2.5", "at n: 2.5 is not of type 'integer'"),
    ("tags=[a, b]", "at tags: '[a, b]' is not of type 'array'"),  # YAML flow, not JSON
    ("ratio=1e999", "at ratio: '1e999' is not of type 'number'"),  # no JSON number is infinite
    ('tags=["a", 2]', "at tags/1: 2 is not of type 'string'"),
])
def test_input_that_does_not_fit_is_refused_before_a_run_exists(home: Path, typed: Path, pair: str, problem: str) -> None:
    args = [pair] if pair.startswith("n=") else ["n=1", pair]
    error = as_json(legion(home, "chain", "run", "typed", *args, "--json", check=2))["error"]
    assert error["code"] == "bad_input"
    assert error["message"].startswith("run input of chain 'typed' does not fit its input schema " + problem), error["message"]
    assert runs(home) == []


def test_every_problem_is_in_the_details(home: Path, typed: Path) -> None:
    error = as_json(legion(home, "chain", "run", "typed", "flag=maybe", "--json", check=2))["error"]
    assert "at flag: 'maybe' is not of type 'boolean'" in error["message"]  # the first, in input order
    assert {(p["path"], p["message"]) for p in error["details"]["problems"]} == {
        ("flag", "'maybe' is not of type 'boolean'"), ("n", "'n' is a required property")}
    text = legion(home, "chain", "run", "typed", "flag=maybe", "--wait", check=2)
    assert "at flag: 'maybe' is not of type 'boolean'" in text.stderr and text.stdout == ""  # no progress: nothing started
    assert runs(home) == []


def test_input_json_from_a_file_and_from_stdin(home: Path, typed: Path, tmp_path: Path) -> None:
    document = tmp_path / "input.json"
    document.write_text(json.dumps({"n": 3, "opts": {"deep": [1, {"x": None}]}, "file": "a.txt"}))
    data = as_json(legion(home, "chain", "run", "typed", "--input-json", str(document), "file=b.txt", "--json"))["data"]
    assert data["input"] == {"n": 3, "opts": {"deep": [1, {"x": None}]}, "file": "b.txt"}  # pairs override its keys
    data = as_json(legion(home, "chain", "run", "typed", "--input-json", "-", "--json", input='{"n": 4, "tags": ["t"]}'))["data"]
    assert data["input"] == {"n": 4, "tags": ["t"]}


@pytest.mark.parametrize(("content", "problem"), [
    ("[1, 2]", "the input must be a JSON object"),
    ("{n: 1}", "not JSON"),
    ('{"n": NaN}', "not JSON"),
    (None, "cannot read it"),
])
def test_bad_input_json(home: Path, typed: Path, tmp_path: Path, content: str | None, problem: str) -> None:
    document = tmp_path / "input.json"
    if content is not None:
        document.write_text(content)
    for command in (("chain", "run", "typed"), ("task", "run", "core.util.set")):
        error = as_json(legion(home, *command, "--input-json", str(document), "--json", check=2))["error"]
        assert error["code"] == "bad_input" and "--input-json" in error["message"] and problem in error["message"]
    assert runs(home) == []


def test_task_run_values_are_typed_by_the_function_signature(home: Path, tmp_path: Path) -> None:
    env = install_extension(tmp_path / "site", "probe", {"misc": PROBE})
    task = as_json(legion(home, "task", "run", "probe.misc.kinds", "file=123", "n=5", "items=[1, 2]", "flag:true",
                          "maybe=null", "note:x #y", "--json", env=env))["data"]
    assert task["status"] == "succeeded", task
    assert task["result"] == {"file": ["123", "str"], "n": [5, "int"], "items": [[1, 2], "list"], "flag": [True, "bool"],
                              "maybe": [None, "NoneType"], "note": ["x #y", "str"]}
    echoed = as_json(legion(home, "task", "run", "core.util.echo", "message:x #y", "--json"))["data"]
    assert echoed["result"] == "x #y"
    document = tmp_path / "args.json"
    document.write_text(json.dumps({"file": "f", "n": 1, "items": [3]}))
    task = as_json(legion(home, "task", "run", "probe.misc.kinds", "--input-json", str(document), "n=2", "--json", env=env))["data"]
    assert (task["result"]["items"], task["result"]["n"]) == ([[3], "list"], [2, "int"])
    # A value that is neither text for a string nor JSON is passed as text, and the check says why.
    bad = legion(home, "task", "run", "probe.misc.kinds", "file=f", "n=five", "items=[1]", env=env, check=2)
    assert "argument 'n' of probe.misc.kinds expects an integer" in bad.stderr
