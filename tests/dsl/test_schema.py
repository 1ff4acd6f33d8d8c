"""The JSON Schemas in schemas/: in step with the model, accepted by editors' validators, strict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from legion.dsl import schema as schema_mod
from legion.dsl.loader import load_file, load_text
from legion.dsl.model import Chain, Rehearsal
from legion.dsl.validate import schema_issues

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas"
CONFORMANCE = Path(os.environ["LEGION_CONFORMANCE"])
CHAIN_FILES = sorted((CONFORMANCE / "chains").glob("*.yaml"))
REHEARSAL_FILES = sorted((CONFORMANCE / "rehearsals").glob("*.yaml"))
REGENERATE = "run `python -m legion.dsl.schema` to regenerate schemas/ from the model"


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def chain_validator() -> jsonschema.Draft202012Validator:
    return _validator(schema_mod.chain_schema())


@pytest.fixture(scope="module")
def rehearsal_validator() -> jsonschema.Draft202012Validator:
    return _validator(schema_mod.rehearsal_schema())


def _errors(validator: jsonschema.Draft202012Validator, text: str) -> list[str]:
    return [e.message for e in validator.iter_errors(load_text(text).data)]


# ---------------------------------------------------------------- the files on disk


@pytest.mark.parametrize(
    ("name", "build"),
    [("chain.schema.json", schema_mod.chain_schema), ("rehearsal.schema.json", schema_mod.rehearsal_schema)],
)
def test_schema_files_match_the_model(name: str, build: Any) -> None:
    path = SCHEMAS / name
    assert path.exists(), f"{path} is missing; {REGENERATE}"
    on_disk = path.read_text(encoding="utf-8")
    assert on_disk == schema_mod.render(build()), f"{path} is out of date with legion.dsl.model; {REGENERATE}"


def test_schema_files_are_sorted_json_with_one_trailing_newline() -> None:
    for name in ("chain.schema.json", "rehearsal.schema.json"):
        text = (SCHEMAS / name).read_text(encoding="utf-8")
        assert text.endswith("}\n") and not text.endswith("\n\n")
        data = json.loads(text)
        assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_write_schemas_writes_both_files(tmp_path: Path) -> None:
    paths = schema_mod.write_schemas(tmp_path / "out")
    assert [p.name for p in paths] == ["chain.schema.json", "rehearsal.schema.json"]
    assert json.loads(paths[0].read_text()) == schema_mod.chain_schema()
    assert json.loads(paths[1].read_text()) == schema_mod.rehearsal_schema()


def test_module_command_regenerates_into_a_directory(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "legion.dsl.schema", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    for name in ("chain.schema.json", "rehearsal.schema.json"):
        assert (tmp_path / name).read_text() == (SCHEMAS / name).read_text()
    assert str(tmp_path / "chain.schema.json") in done.stdout


def test_module_command_default_directory_is_the_repository_schemas() -> None:
    assert schema_mod.DEFAULT_DIR == SCHEMAS


# ---------------------------------------------------------------- shape for editors


@pytest.mark.parametrize("build", [schema_mod.chain_schema, schema_mod.rehearsal_schema])
def test_schemas_are_valid_draft_2020_12(build: Any) -> None:
    schema = build()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] and schema["title"] and schema["description"]
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("build", [schema_mod.chain_schema, schema_mod.rehearsal_schema])
def test_every_model_object_forbids_unknown_keys_and_describes_its_keys(build: Any) -> None:
    schema = build()
    definitions = {"#": schema, **{f"#/$defs/{k}": v for k, v in schema["$defs"].items()}}
    for where, definition in definitions.items():
        assert definition["type"] == "object", where
        assert definition["additionalProperties"] is False, f"{where} allows unknown keys"
        assert definition.get("title") and definition.get("description"), where
        for key, prop in definition["properties"].items():
            assert prop.get("description"), f"{where}/properties/{key} has no description"
            assert "title" not in prop, f"{where}/properties/{key} keeps pydantic's generated title"


def test_chain_schema_names_with_by_its_alias() -> None:
    step = schema_mod.chain_schema()["$defs"]["Step"]
    assert "with" in step["properties"]
    assert "with_" not in step["properties"]


def test_rehearsal_schema_is_self_contained_and_embeds_the_chain_schema() -> None:
    schema = schema_mod.rehearsal_schema()
    chain = schema["properties"]["chain"]
    assert {"type": "string", "description": chain["anyOf"][0]["description"]} == chain["anyOf"][0]
    assert chain["anyOf"][1] == {"$ref": "#/$defs/Chain"}
    embedded = dict(schema["$defs"]["Chain"])
    standalone = {k: v for k, v in schema_mod.chain_schema().items() if k not in ("$defs", "$schema", "$id")}
    assert embedded == standalone
    refs: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            refs.extend([node["$ref"]] if "$ref" in node else [])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(schema)
    assert refs and all(r.startswith("#/$defs/") and r[len("#/$defs/"):] in schema["$defs"] for r in refs)


# ---------------------------------------------------------------- conformance files


@pytest.mark.parametrize("path", CHAIN_FILES, ids=[p.name for p in CHAIN_FILES])
def test_conformance_chain_validates_against_the_chain_schema(path: Path, chain_validator: Any) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in chain_validator.iter_errors(load_file(path).data)]
    assert errors == []


@pytest.mark.parametrize("path", REHEARSAL_FILES, ids=[p.name for p in REHEARSAL_FILES])
def test_conformance_rehearsal_validates_against_the_rehearsal_schema(path: Path, rehearsal_validator: Any) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in rehearsal_validator.iter_errors(load_file(path).data)]
    assert errors == []


def _spec_yaml_blocks() -> list[str]:
    text = (Path(__file__).resolve().parents[2] / "docs" / "chains.md").read_text(encoding="utf-8")
    return [block.split("```", 1)[0] for block in text.split("```yaml\n")[1:]]


def test_the_spec_examples_validate(chain_validator: Any, rehearsal_validator: Any) -> None:
    blocks = _spec_yaml_blocks()
    chain_text = next(b for b in blocks if b.startswith("# yaml-language-server"))
    rehearsal_text = next(b for b in blocks if b.startswith("rehearsal:"))
    assert _errors(chain_validator, chain_text) == []
    assert _errors(rehearsal_validator, rehearsal_text) == []
    assert schema_issues(load_text(chain_text), Chain)[1] == []
    assert schema_issues(load_text(rehearsal_text), Rehearsal)[1] == []


def test_conformance_suite_is_present() -> None:
    assert len(CHAIN_FILES) >= 10 and len(REHEARSAL_FILES) >= 10


@pytest.mark.parametrize("path", CHAIN_FILES[:3], ids=[p.name for p in CHAIN_FILES[:3]])
def test_a_conformance_chain_inline_in_a_rehearsal_validates(path: Path, rehearsal_validator: Any) -> None:
    rehearsal = {"chain": load_file(path).data, "expect": {"status": "succeeded"}}
    assert list(rehearsal_validator.iter_errors(rehearsal)) == []


# ---------------------------------------------------------------- rejections

GOOD_CHAIN = """\
chain: ok
steps:
  a:
    run: core.util.echo
    with: {message: hi}
    timeout: 30s
    retry: {count: 2, delay: 250ms, max_delay: 1m}
    next:
      - when: succeeded
        do: b
  b:
    run: core.util.noop
    delay: 2
"""


def test_the_good_chain_is_accepted(chain_validator: Any) -> None:
    assert _errors(chain_validator, GOOD_CHAIN) == []


BAD_CHAINS = {
    "unknown top-level key": "chain: x\nstepz: {}\nsteps: {a: {run: core.util.noop}}\n",
    "unknown step key": "chain: x\nsteps: {a: {run: core.util.noop, retries: 3}}\n",
    "unknown edge key": "chain: x\nsteps: {a: {run: core.util.noop, next: [{if: succeeded}]}}\n",
    "unknown retry key": "chain: x\nsteps: {a: {run: core.util.noop, retry: {tries: 3}}}\n",
    "unknown trigger key": "chain: x\non: {cron: '* * * * *'}\nsteps: {a: {run: core.util.noop}}\n",
    "unknown schedule key": "chain: x\non: {schedule: [{every: 5s, at: noon}]}\nsteps: {a: {run: core.util.noop}}\n",
    "missing chain": "steps: {a: {run: core.util.noop}}\n",
    "missing steps": "chain: x\n",
    "no steps": "chain: x\nsteps: {}\n",
    "steps is a list": "chain: x\nsteps: [{run: core.util.noop}]\n",
    "run is a number": "chain: x\nsteps: {a: {run: 5}}\n",
    "run has two parts": "chain: x\nsteps: {a: {run: core.noop}}\n",
    "with is a string": "chain: x\nsteps: {a: {run: core.util.noop, with: hello}}\n",
    "priority is a word": "chain: x\nsteps: {a: {run: core.util.noop, priority: high}}\n",
    "priority above 9": "chain: x\nsteps: {a: {run: core.util.noop, priority: 10}}\n",
    "join zero": "chain: x\nsteps: {a: {run: core.util.noop, join: 0}}\n",
    "join any": "chain: x\nsteps: {a: {run: core.util.noop, join: any}}\n",
    "negative timeout": "chain: x\nsteps: {a: {run: core.util.noop, timeout: -1}}\n",
    "timeout in weeks": "chain: x\nsteps: {a: {run: core.util.noop, timeout: 2w}}\n",
    "next is a mapping": "chain: x\nsteps: {a: {run: core.util.noop, next: {do: a}}}\n",
    "when is a number": "chain: x\nsteps: {a: {run: core.util.noop, next: [{when: 3}]}}\n",
    "do is a number": "chain: x\nsteps: {a: {run: core.util.noop, next: [{do: 3}]}}\n",
    "bad chain name": "chain: My Chain\nsteps: {a: {run: core.util.noop}}\n",
    "bad step name": "chain: x\nsteps: {1st: {run: core.util.noop}}\n",
    "reserved step name": "chain: x\nsteps: {fail: {run: core.util.noop}}\n",
    "cron and every": "chain: x\non: {schedule: [{cron: '* * * * *', every: 5s}]}\nsteps: {a: {run: core.util.noop}}\n",
    "neither cron nor every": "chain: x\non: {schedule: [{input: {}}]}\nsteps: {a: {run: core.util.noop}}\n",
    "cron with four fields": "chain: x\non: {schedule: [{cron: '* * * *'}]}\nsteps: {a: {run: core.util.noop}}\n",
    "every zero": "chain: x\non: {schedule: [{every: 0}]}\nsteps: {a: {run: core.util.noop}}\n",
    "event not a function": "chain: x\non: {events: [push]}\nsteps: {a: {run: core.util.noop}}\n",
    "max_steps zero": "chain: x\nmax_steps: 0\nsteps: {a: {run: core.util.noop}}\n",
    "vars is a list": "chain: x\nvars: [1]\nsteps: {a: {run: core.util.noop}}\n",
    "input is a string": "chain: x\ninput: object\nsteps: {a: {run: core.util.noop}}\n",
    "backoff below 1": "chain: x\nsteps: {a: {run: core.util.noop, retry: {backoff: 0.5}}}\n",
    "concurrency zero": "chain: x\nsteps: {a: {run: core.util.noop, for_each: [1], concurrency: 0}}\n",
}


@pytest.mark.parametrize("text", list(BAD_CHAINS.values()), ids=list(BAD_CHAINS))
def test_bad_chain_is_rejected_by_the_schema_and_the_model(text: str, chain_validator: Any) -> None:
    assert _errors(chain_validator, text), "the JSON Schema accepts it"
    _, issues = schema_issues(load_text(text), Chain)
    assert issues, "the model accepts it"


GOOD_VARIANTS = {
    "do as one name": "chain: x\nsteps: {a: {run: core.util.noop, next: [{do: b}]}, b: {run: core.util.noop}}\n",
    "do with fail": "chain: x\nsteps: {a: {run: core.util.noop, next: [{when: failed, do: [fail]}]}}\n",
    "start as one name": "chain: x\nstart: a\nsteps: {a: {run: core.util.noop}}\n",
    "when true": "chain: x\nsteps: {a: {run: core.util.noop, next: [{when: true}]}}\n",
    "durations as numbers": "chain: x\nsteps: {a: {run: core.util.noop, timeout: 1.5, delay: 0}}\n",
    "join all": "chain: x\nsteps: {a: {run: core.util.noop, join: all}}\n",
    "sub-chain": "chain: x\nsteps: {a: {run: 'chain:other'}}\n",
    "schedule": "chain: x\non: {schedule: [{cron: '*/5 * * * *', tz: Europe/Paris}, {every: 30s, input: {n: 1}}], events: [core.util.echo]}\nsteps: {a: {run: core.util.noop}}\n",
    "for_each list": "chain: x\nsteps: {a: {run: core.util.noop, for_each: [1, 2], concurrency: 2}}\n",
    "output any": "chain: x\nsteps: {a: {run: core.util.noop}}\noutput: [1, '{{ result }}']\n",
    "key named on": "chain: x\non: {events: [core.util.echo]}\nsteps: {a: {run: core.util.noop}}\n",
}


@pytest.mark.parametrize("text", list(GOOD_VARIANTS.values()), ids=list(GOOD_VARIANTS))
def test_good_variant_is_accepted_by_the_schema_and_the_model(text: str, chain_validator: Any) -> None:
    assert _errors(chain_validator, text) == []
    _, issues = schema_issues(load_text(text), Chain)
    assert issues == []


@pytest.mark.parametrize("text", [
    "chain: x\nsteps: {a: {run: core.util.noop, join: true}}\n",
    "chain: x\nsteps: {a: {run: core.util.noop, retry: {jitter: no}}}\n",
    "chain: x\nsteps: {a: {run: core.util.noop, priority: '3'}}\n",
], ids=["join-true", "jitter-no", "priority-string"])
def test_model_rejects_what_the_schema_rejects(text: str, chain_validator: Any) -> None:
    assert _errors(chain_validator, text)
    _, issues = schema_issues(load_text(text), Chain)
    assert issues


def test_the_python_field_name_with_underscore_is_an_unknown_key(chain_validator: Any) -> None:
    text = "chain: x\nsteps: {a: {run: core.util.noop, with_: {}}}\n"
    assert _errors(chain_validator, text)
    _, issues = schema_issues(load_text(text), Chain)
    assert [i.message for i in issues if "with_" in i.message]


def test_unknown_key_error_names_the_key(chain_validator: Any) -> None:
    errors = _errors(chain_validator, BAD_CHAINS["unknown step key"])
    assert any("retries" in e for e in errors)


BAD_REHEARSALS = {
    "unknown top-level key": "chain: c.yaml\nexpect: {status: succeeded}\nexpected: {}\n",
    "missing expect": "chain: c.yaml\n",
    "missing status": "chain: c.yaml\nexpect: {sequence: [a]}\n",
    "bad status": "chain: c.yaml\nexpect: {status: ok}\n",
    "unknown expect key": "chain: c.yaml\nexpect: {status: failed, errors: {}}\n",
    "unknown mock key": "chain: c.yaml\nmocks: {a: [{value: 1}]}\nexpect: {status: succeeded}\n",
    "mock not a list": "chain: c.yaml\nmocks: {a: {result: 1}}\nexpect: {status: succeeded}\n",
    "bad mock status": "chain: c.yaml\nmocks: {a: [{status: broken}]}\nexpect: {status: succeeded}\n",
    "chain is a number": "chain: 5\nexpect: {status: succeeded}\n",
    "inline chain with unknown key": "chain: {chain: x, steps: {a: {run: core.util.noop}}, stepz: 1}\nexpect: {status: succeeded}\n",
    "inline chain without steps": "chain: {chain: x}\nexpect: {status: succeeded}\n",
}


@pytest.mark.parametrize("text", list(BAD_REHEARSALS.values()), ids=list(BAD_REHEARSALS))
def test_bad_rehearsal_is_rejected_by_the_schema(text: str, rehearsal_validator: Any) -> None:
    assert _errors(rehearsal_validator, text)


@pytest.mark.parametrize("name", [n for n in BAD_REHEARSALS if not n.startswith("inline")])
def test_bad_rehearsal_is_rejected_by_the_model(name: str) -> None:
    _, issues = schema_issues(load_text(BAD_REHEARSALS[name]), Rehearsal)
    assert issues


def test_inline_chain_rehearsal_is_accepted(rehearsal_validator: Any) -> None:
    text = (
        "rehearsal: inline\n"
        "chain:\n  chain: x\n  steps:\n    a: {run: core.util.echo, with: {message: hi}}\n"
        "input: {n: 1}\n"
        "mocks:\n  a: [{result: 1}, {status: failed, error: boom}, {status: failed, error: {type: T, message: m}}]\n"
        "expect: {status: succeeded, sequence: [a], output: null, error: {type: StepFailed}}\n"
    )
    assert _errors(rehearsal_validator, text) == []
    _, issues = schema_issues(load_text(text), Rehearsal)
    assert issues == []
