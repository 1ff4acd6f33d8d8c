"""The YAML loader: YAML 1.2, duplicate keys, and file:line:col on every problem."""

from __future__ import annotations

import datetime
import math
from pathlib import Path

import pytest

from legion.dsl import loader
from legion.dsl.errors import BadInput, Issue, LegionError, ValidationFailed
from legion.dsl.loader import Document, load_file, load_text


def _load_issue(text: str, file: str = "f.yaml") -> Issue:
    with pytest.raises(ValidationFailed) as info:
        load_text(text, file)
    issues = info.value.issues
    assert len(issues) == 1, issues
    return issues[0]


# ---------------------------------------------------------------- YAML 1.2


def test_yaml_1_2_keeps_on_yes_no_as_strings() -> None:
    doc = load_text("on: {events: [a.b.c]}\nyes: no\nflag: off\ny: n\n")
    assert doc.data == {"on": {"events": ["a.b.c"]}, "yes": "no", "flag": "off", "y": "n"}
    assert all(isinstance(k, str) for k in doc.data)


def test_yaml_1_2_booleans_and_null() -> None:
    doc = load_text("a: true\nb: false\nc: null\nd: ~\ne: True\n")
    assert doc.data == {"a": True, "b": False, "c": None, "d": None, "e": True}
    assert doc.data["a"] is True


def test_numbers_are_plain_python_numbers() -> None:
    doc = load_text("i: 42\nf: 1.5\nh: 0x1F\no: 0o17\ns: '42'\n")
    assert doc.data == {"i": 42, "f": 1.5, "h": 31, "o": 15, "s": "42"}
    assert type(doc.data["i"]) is int and type(doc.data["f"]) is float and type(doc.data["s"]) is str


def test_data_is_plain_dicts_and_lists() -> None:
    doc = load_text("a:\n  - {b: 1}\n  - [2, 3]\n")
    assert type(doc.data) is dict
    assert type(doc.data["a"]) is list and type(doc.data["a"][0]) is dict and type(doc.data["a"][1]) is list


@pytest.mark.parametrize(("text", "expected"), [
    ("d: 2024-01-01\n", "2024-01-01"),
    ("op: =\n", "="),
], ids=["date", "equals-sign"])
def test_scalars_outside_the_yaml_1_2_core_schema_stay_strings(text: str, expected: str) -> None:
    value = load_text(text).data[text.split(":")[0]]
    assert not isinstance(value, datetime.date)
    assert value == expected and type(value) is str


def test_anchors_aliases_and_merge_keys() -> None:
    doc = load_text("base: &b {x: 1}\ncopy: *b\nmerged:\n  <<: *b\n  y: 2\n")
    assert doc.data["copy"] == {"x": 1}
    assert doc.data["merged"] == {"x": 1, "y": 2}


def test_empty_text_loads_as_none() -> None:
    assert load_text("").data is None
    assert load_text("# only a comment\n").data is None


# ---------------------------------------------------------------- duplicate keys


def test_duplicate_top_level_key_points_at_the_second_one() -> None:
    issue = _load_issue("chain: a\nsteps: {}\nchain: b\n")
    assert (issue.file, issue.line, issue.col) == ("f.yaml", 3, 1)
    assert "duplicate key" in issue.message and '"chain"' in issue.message
    assert "remove or rename" in issue.message


def test_duplicate_nested_key_points_at_the_second_one() -> None:
    issue = _load_issue("steps:\n  a:\n    run: x.y.z\n    with: {}\n    run: x.y.w\n")
    assert (issue.line, issue.col) == (5, 5)
    assert '"run"' in issue.message


def test_duplicate_key_in_a_flow_mapping() -> None:
    issue = _load_issue("a: {b: 1, b: 2}\n")
    assert (issue.line, issue.col) == (1, 11)


def test_duplicate_step_names() -> None:
    issue = _load_issue("chain: a\nsteps:\n  s: {run: core.util.noop}\n  t: {run: core.util.noop}\n  s: {run: core.util.noop}\n")
    assert issue.line == 5 and issue.col == 3
    assert str(issue).startswith("f.yaml:5:3: error: duplicate key")


def test_same_key_in_different_mappings_is_fine() -> None:
    doc = load_text("a: {k: 1}\nb: {k: 2}\n")
    assert doc.data == {"a": {"k": 1}, "b": {"k": 2}}


# ---------------------------------------------------------------- syntax errors


def test_unclosed_flow_sequence() -> None:
    issue = _load_issue("a: [1, 2\nb: 3\n")
    assert issue.line == 2 and issue.col >= 1
    assert issue.message.startswith("YAML syntax error:")
    assert "fix the YAML" in issue.message


def test_tab_indentation() -> None:
    issue = _load_issue("a:\n\tb: 1\n")
    assert (issue.line, issue.col) == (2, 1)
    assert "'\\t'" in issue.message


def test_bad_indentation() -> None:
    issue = _load_issue("a: 1\n  b: 2\n")
    assert (issue.line, issue.col) == (2, 4)
    assert "mapping values are not allowed" in issue.message


def test_unterminated_quote() -> None:
    issue = _load_issue("a: 1\nb: 'open\n")
    assert issue.line >= 2 and "quoted scalar" in issue.message


def test_two_documents_are_an_error() -> None:
    issue = _load_issue("---\na: 1\n---\nb: 2\n")
    assert issue.line == 3
    assert "single document" in issue.message


def test_control_character_is_reported_with_its_line() -> None:
    issue = _load_issue("a: 1\nb: \x07\n")
    assert (issue.line, issue.col) == (2, 4)


def test_control_character_is_still_a_legion_error() -> None:
    issue = _load_issue("a: \x07\n")
    assert "YAML" in issue.message and issue.file == "f.yaml"


def test_deep_nesting_is_a_validation_error_not_a_crash() -> None:
    with pytest.raises(ValidationFailed):
        load_text("a: " + "[" * 600 + "]" * 600 + "\n")


# ---------------------------------------------------------------- the cron hint


def test_unquoted_cron_is_a_yaml_error_with_the_quote_hint() -> None:
    text = "chain: a\non:\n  schedule:\n    - cron: */5 * * * *\nsteps:\n  s: {run: core.util.noop}\n"
    issue = _load_issue(text, "chains/a.yaml")
    assert issue.file == "chains/a.yaml" and issue.line == 4
    assert issue.col >= 13
    assert "quote the cron expression" in issue.message
    assert 'cron: "*/5 * * * *"' in issue.message


def test_unquoted_cron_in_a_flow_mapping_gets_the_hint() -> None:
    issue = _load_issue("on: {schedule: [{cron: * * * * *}]}\n")
    assert issue.line == 1 and "quote the cron expression" in issue.message


def test_other_alias_errors_do_not_get_the_cron_hint() -> None:
    issue = _load_issue("message: * hello\n")
    assert "cron" not in issue.message
    assert "fix the YAML" in issue.message


def test_cron_that_does_not_start_with_a_star_is_plain_yaml() -> None:
    doc = load_text("cron: 0 */2 * * *\n")
    assert doc.data == {"cron": "0 */2 * * *"}


# ---------------------------------------------------------------- errors


def test_validation_failed_is_a_bad_input_legion_error() -> None:
    with pytest.raises(ValidationFailed) as info:
        load_text("a: [\n", "x.yaml")
    exc = info.value
    assert isinstance(exc, BadInput) and isinstance(exc, LegionError)
    assert exc.exit_code == 2 and exc.code == "validation_failed"
    assert "1 problem(s) found" in exc.message and "x.yaml:" in exc.message
    assert exc.to_dict()["details"][0]["file"] == "x.yaml"
    assert exc.details[0]["line"] == exc.issues[0].line >= 1


def test_issue_string_and_dict() -> None:
    issue = Issue("boom", file="c.yaml", line=3, col=7, path=("steps", "a", 0))
    assert str(issue) == "c.yaml:3:7: error: boom"
    assert Issue("boom", file="c.yaml").__str__() == "c.yaml: error: boom"
    assert issue.to_dict() == {
        "file": "c.yaml", "line": 3, "col": 7, "severity": "error", "message": "boom", "path": ["steps", "a", 0],
    }


def test_validation_failed_counts_errors_not_warnings() -> None:
    exc = ValidationFailed([Issue("w", severity="warning", line=1), Issue("e", line=2), Issue("e2", line=3)])
    assert exc.message.startswith("2 problem(s) found:")
    assert exc.message.splitlines()[1:] == ["<chain>:2:0: error: e", "<chain>:3:0: error: e2"]
    assert len(exc.details) == 3


# ---------------------------------------------------------------- files


def test_load_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("a: 1\na: 2\n", encoding="utf-8")
    with pytest.raises(ValidationFailed) as info:
        load_file(path)
    assert str(info.value.issues[0]).startswith(f"{path}:2:1: error: duplicate key")


def test_load_file_reads_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("message: héllo ✓\n", encoding="utf-8")
    doc = load_file(path)
    assert doc.data == {"message": "héllo ✓"} and doc.file == str(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as info:
        load_file(tmp_path / "nope.yaml")
    issue = info.value.issues[0]
    assert issue.file.endswith("nope.yaml") and "cannot read the file" in issue.message


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("a: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValidationFailed) as info:
        load_file(path)
    assert "not UTF-8" in info.value.issues[0].message


# ---------------------------------------------------------------- positions


POSITIONS = """\
chain: a
steps:
  first:
    run: core.util.noop
    next:
      - do: second
      - when: failed
        do: [second, fail]
  second: {run: core.util.echo, with: {message: hi}}
"""


@pytest.fixture()
def doc() -> Document:
    return load_text(POSITIONS, "p.yaml")


def test_position_of_keys(doc: Document) -> None:
    assert doc.position(("chain",)) == (1, 1)
    assert doc.position(("steps", "first")) == (3, 3)
    assert doc.position(("steps", "first", "run")) == (4, 5)
    assert doc.position(("steps", "first", "next", 1)) == (7, 9)
    assert doc.position(("steps", "first", "next", 1, "when")) == (7, 9)
    assert doc.position(("steps", "first", "next", 1, "do", 1)) == (8, 22)
    assert doc.position(("steps", "second", "with", "message")) == (9, 40)


def test_position_of_values(doc: Document) -> None:
    assert doc.value_position(("chain",)) == (1, 8)
    assert doc.value_position(("steps", "first", "run")) == (4, 10)
    assert doc.value_position(("steps", "first", "next", 1, "when")) == (7, 15)
    assert doc.value_position(("steps", "second", "with", "message")) == (9, 49)


def test_position_falls_back_to_the_deepest_existing_part(doc: Document) -> None:
    assert doc.position(("steps", "first", "retry", "count")) == (3, 3)
    assert doc.position(("steps", "first", "next", 9)) == (5, 5)
    assert doc.value_position(("steps", "first", "timeout")) == (3, 3)
    assert doc.position(()) == (1, 1)


def test_issue_uses_key_or_value_position(doc: Document) -> None:
    at_key = doc.issue(("steps", "first", "run"), "m")
    at_value = doc.issue(("steps", "first", "run"), "m", value=True, severity="warning")
    assert (at_key.line, at_key.col, at_key.file) == (4, 5, "p.yaml")
    assert (at_value.line, at_value.col, at_value.severity) == (4, 10, "warning")
    assert at_key.path == ("steps", "first", "run")


# ---------------------------------------------------------------- libyaml and ruamel.yaml agree
#
# Files are read by libyaml (`loader._fast`); ruamel.yaml (`loader._load_ruamel`), which read
# every file before, still judges errors and rare constructs. Both must give the same data and
# the same places.


def _ruamel(text: str) -> Document:
    """The document as ruamel.yaml reads it (as it read every file before)."""
    saved = loader._CParser
    loader._CParser = None  # type: ignore[misc,assignment]
    try:
        data, positions = loader._parse(text, "f.yaml")
    finally:
        loader._CParser = saved  # type: ignore[misc]
    return Document("f.yaml", data, text, positions)


def _fast(text: str) -> Document:
    data, positions = loader._fast(text)
    return Document("f.yaml", data, text, positions)


def _same(value: object, other: object) -> bool:
    if isinstance(value, float) and isinstance(other, float) and math.isnan(value):
        return math.isnan(other)
    return type(value) is type(other) and value == other


SCALARS = [
    ("yes", "yes"), ("no", "no"), ("on", "on"), ("off", "off"), ("y", "y"), ("Yes", "Yes"),
    ("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False), ("FALSE", False), ("tRUE", "tRUE"),
    ("null", None), ("Null", None), ("NULL", None), ("~", None), ("", None), ("nUll", "nUll"), ("none", "none"),
    ("0", 0), ("-0", 0), ("+12", 12), ("42", 42), ("010", 10), ("-012", -12), ("00012", 12), ("1_000", 1000),
    ("0o17", 15), ("+0o7", 7), ("0O17", "0O17"), ("0o8", "0o8"), ("0o", "0o"), ("0x1F", 31), ("-0x1F", -31), ("0xABCDEF", 0xABCDEF),
    ("0x", "0x"), ("0b101", 5),
    ("1.5", 1.5), (".5", 0.5), ("+.5", 0.5), ("-.5e-3", -0.0005), ("5.", 5.0), ("0.", 0.0), ("1e3", 1000.0), ("12e03", 12000.0),
    ("1.5e+3", 1500.0), ("1.0E5", 100000.0), ("6.8523015e+5", 685230.15), ("685.230_15e+03", 685230.15), ("1e", "1e"),
    (".inf", math.inf), ("+.inf", math.inf), ("-.Inf", -math.inf), (".INF", math.inf), (".nan", math.nan), (".NaN", math.nan),
    (".NAN", math.nan), ("-.nan", "-.nan"), (".", "."),
    ("1:20", "1:20"), ("190:20:30", "190:20:30"), ("2024-01-01", "2024-01-01"), ("=", "="), ("<<x", "<<x"),
    ("core.util.noop", "core.util.noop"), ("'42'", "42"), ('"true"', "true"), ("'null'", "null"), ("'~'", "~"),
]


@pytest.mark.parametrize(("written", "expected"), SCALARS, ids=[w or "empty" for w, _ in SCALARS])
def test_scalars_follow_the_yaml_1_2_core_schema_as_ruamel_yaml_reads_it(written: str, expected: object) -> None:
    text = f"v: {written}\nl: [{written}]\n" if written else "v:\n"
    fast, slow = _fast(text).data, _ruamel(text).data
    for data in (fast, slow):
        assert _same(data["v"], expected), data
        assert not written or _same(data["l"][0], expected), data


def test_non_string_keys_become_strings_and_ruamel_yaml_duplicates_still_count() -> None:
    text = "1: a\n1.5: b\nfalse: c\nnull: d\n"
    assert _fast(text).data == _ruamel(text).data == {"1": "a", "1.5": "b", "False": "c", "None": "d"}
    assert load_text("1: a\n'1': b\n").data == {"1": "b"}
    issue = _load_issue("1: a\ntrue: b\n")
    assert (issue.line, issue.col) == (2, 1) and 'duplicate key "True"' in issue.message


PLACES = """\
chain: places
defaults: &defaults
  retry: &retry {count: 2, delay: 1s}
  with: {message: hi}
steps:
  first:
    <<: *defaults
    run: core.util.echo
    next:
      - do: second
      -
      - when:
  second:
    run: core.util.echo
    retry: *retry
    timeout:
    with: {message: , level: info}   # a comment
  third:
    <<: [*defaults, {run: core.util.noop}]
    when: # empty, with a comment
    after: x
empty:
"""


def _paths(value: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found = [path, (*path, "missing"), (*path, 99)]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*path, i))
    return found


def test_places_are_those_ruamel_yaml_gives_for_aliases_merges_and_empty_values() -> None:
    fast, slow = _fast(PLACES), _ruamel(PLACES)
    assert fast.data == slow.data
    assert fast.data["steps"]["first"] == {"retry": {"count": 2, "delay": "1s"}, "with": {"message": "hi"}, "run": "core.util.echo",
                                           "next": [{"do": "second"}, None, {"when": None}]}
    assert list(fast.data["steps"]["third"]) == ["when", "after", "retry", "with", "run"]
    paths = _paths(fast.data)
    assert len(paths) > 60
    for path in paths:
        assert fast.position(path) == slow.position(path), path
        assert fast.value_position(path) == slow.value_position(path), path
    assert fast.value_position(("steps", "second", "retry")) == (3, 10)  # an alias is placed where its value was written
    assert fast.position(("steps", "first", "run")) == (8, 5)


def test_an_alias_is_a_copy() -> None:
    doc = load_text("a: &a {x: [1]}\nb: *a\n")
    doc.data["b"]["x"].append(2)
    assert doc.data["a"] == {"x": [1]}


def test_duplicate_key_messages_show_both_values() -> None:
    issue = _load_issue("a: {x: [1, 2]}\na: {y: 3}\n")
    assert issue.message.startswith("""duplicate key "a" with value "{'y': 3}" (original value: "{'x': [1, 2]}"): """)
    assert (issue.line, issue.col) == (2, 1)
    # The first duplicate whose value is complete, as ruamel.yaml reported it: the inner one.
    issue = _load_issue("a: 1\na: {x: 1, x: 2}\n")
    assert (issue.line, issue.col) == (2, 11)


@pytest.mark.parametrize("text", [
    "a: !!str 5\n", "a: !custom x\n", "a: !!value x\n", "a: !!int '7'\n", "a: ! x\n", "a: !!binary aGk=\n",
    "%YAML 1.1\n---\na: yes\n", "? [a, b]\n: 1\n", "a: 2001-12-14t21:59:43.10-05:00\n", "a: 2024-13-45\n",
    "a:\tb\n", "a: x\t# c\n", "m: {<<: 5}\n", "a: &a {x: 1}\nm: {<<: *a, <<: {y: 1}}\n", "a: ._\n", "{&nd: a}\n",
], ids=["str-tag", "custom-tag", "value-tag", "int-tag", "bang", "binary", "yaml-1.1", "complex-key", "timestamp", "bad-date",
        "tab", "tab-comment", "merge-scalar", "two-merges", "underscore-float", "anchor-colon"])
def test_what_libyaml_leaves_to_ruamel_yaml_loads_as_before(text: str) -> None:
    with pytest.raises(Exception):  # noqa: B017 - the fast path hands these on
        loader._fast(text)
    try:
        expected: object = ("data", _ruamel(text).data)
    except ValidationFailed as exc:
        expected = ("issues", [str(i) for i in exc.issues])
    try:
        got: object = ("data", load_text(text, "f.yaml").data)
    except ValidationFailed as exc:
        got = ("issues", [str(i) for i in exc.issues])
    assert got == expected


def test_the_tag_refusal_and_the_1_1_directive() -> None:
    assert "YAML tag !custom on 'x' is not supported" in _load_issue("a: !custom x\n").message
    assert load_text("%YAML 1.1\n---\na: yes\n").data == {"a": True}
    assert load_text("a: !!value x\n").data == {"a": "x"}


def test_without_libyaml_ruamel_yaml_reads_every_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "_CParser", None)
    doc = load_text(POSITIONS, "p.yaml")
    assert doc.position(("steps", "first", "next", 1, "do", 1)) == (8, 22)
    assert load_text("a: 0o17\nb: on\n").data == {"a": 15, "b": "on"}


def test_a_sub_document_keeps_the_places_of_its_part(doc: Document) -> None:
    sub = doc.sub("steps")
    assert sub.file == "p.yaml" and sub.text is None
    assert sub.data == doc.data["steps"] and sub.data is not doc.data["steps"]
    assert sub.position(("first", "run")) == (4, 5)
    assert sub.value_position(("second", "with", "message")) == (9, 49)
    assert doc.sub("chain").position(("x",)) == (1, 1)


def test_many_lookups_in_a_large_mapping() -> None:
    text = "steps:\n" + "".join(f"  s{i}: {{run: core.util.noop}}\n" for i in range(2000))
    doc = load_text(text)
    assert [doc.position(("steps", f"s{i}", "run")) for i in (0, 1999)] == [(2, 8), (2001, 11)]
