"""`legion schema export`: the exported schemas check chain files as `legion chain validate`
does, where a schema can: an unknown function and an argument the function does not take are
found by both, at the same place."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from cli_helpers import as_json, legion

from legion.dsl.loader import load_file
from legion.dsl.schema import chain_schema

BROKEN = """\
chain: broken
steps:
  a:
    run: core.util.ecko
    next:
      - do: b
  b:
    run: core.util.echo
    with: {mesage: hi}
  c:
    run: http.request.get
    with: {url: "{{ input.url }}", timeout: many, params: "{{ input.p }}"}
"""

GOOD = """\
chain: good
steps:
  a:
    run: core.util.echo
    with: {message: "{{ input.x }}"}
    next:
      - do: b
  b:
    run: http.request.get
    with: {url: "https://example.test/", timeout: 5}
  c:
    run: chain:good
"""


def test_the_exported_schema_and_validate_find_the_same_problems(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = tmp_path / "schemas"
    written = as_json(legion(home, "schema", "export", "--with-extensions", "--out", str(out), "--json"))["data"]["written"]
    assert sorted(Path(p).name for p in written) == ["chain.schema.json", "rehearsal.schema.json"]
    schema = json.loads((out / "chain.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    checker = jsonschema.Draft202012Validator(schema)
    broken, good = tmp_path / "broken.yaml", tmp_path / "good.yaml"
    broken.write_text(BROKEN)
    good.write_text(GOOD)

    found = sorted(tuple(e.absolute_path) for e in checker.iter_errors(load_file(broken).data))
    issues = as_json(legion(home, "chain", "validate", str(broken), "--json", check=2))["error"]["details"]
    validated = sorted(tuple(i["path"]) for i in issues)
    # every problem validate finds, the schema finds at the same step field (or the key in it)
    assert validated == [("steps", "a", "run"), ("steps", "b", "with", "mesage"), ("steps", "c", "with", "timeout")]
    assert found == [("steps", "a", "run"), ("steps", "b", "with"), ("steps", "c", "with", "timeout")]
    assert [v[:3] for v in validated] == [f[:3] for f in found]

    assert list(checker.iter_errors(load_file(good).data)) == []  # templates and sub-chains pass
    legion(home, "chain", "validate", str(good))


def test_without_extensions_the_export_is_the_shipped_schema(tmp_path: Path) -> None:
    legion(tmp_path / "home", "schema", "export", "--out", str(tmp_path / "s"))
    assert json.loads((tmp_path / "s" / "chain.schema.json").read_text()) == chain_schema()
    assert legion(tmp_path / "home", "schema", "export", "--out", "/proc/nope", check=2).returncode == 2
