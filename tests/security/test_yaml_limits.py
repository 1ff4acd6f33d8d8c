"""What a YAML file may make the loader do is bounded (docs/chains.md section 1, "Limits"): the
size of the file, how deep it nests, how many aliases it has and how many values they expand
to. Each refusal is a validation error (exit 2) naming the file, and the place when there is
one, and saying what to do."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from legion.dsl import loader
from legion.dsl.errors import Issue, ValidationFailed
from legion.dsl.loader import MAX_ALIASES, MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES, load_file, load_text
from legion.engine.registry import Registry
from legion.engine.rehearsal import run_rehearsal

# Ten anchors, each a list of ten aliases of the one before: 10^9 values once expanded, in
# under 700 bytes. Unbounded, `legion chain validate` ran for minutes and took gigabytes.
BILLION_LAUGHS = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 10))

# Shares a `retry` and a `with` among steps, as chains do.
WITH_ALIASES = """\
chain: shared
steps:
  first:
    run: core.util.echo
    with: &greeting {message: "hello {{ input.name }}"}
    retry: &retry {count: 2, delay: 1s}
    next: [{do: second}]
  second:
    run: core.util.echo
    with: *greeting
    retry: *retry
    next: [{do: third}]
  third:
    run: core.util.echo
    with:
      <<: *greeting
    retry: *retry
"""


def legion(cwd: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """`legion ARGS` as a user runs it. The timeout and the 4 GB address-space cap only stop
    a run that has lost its bounds: they never decide a test that works."""

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))

    env = dict(os.environ)
    env.pop("LEGION_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "legion.engine.cli.main", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, preexec_fn=cap_memory)


def refusal(text: str, file: str = "f.yaml") -> Issue:
    with pytest.raises(ValidationFailed) as info:
        load_text(text, file)
    assert len(info.value.issues) == 1, info.value.issues
    issue = info.value.issues[0]
    assert issue.file == file and issue.severity == "error"
    return issue


def test_the_limits_admit_what_a_large_chain_needs() -> None:
    # A chain of 50,000 steps is about 17 MB, 1.6 million values, seven levels deep (bench/validate.py).
    assert MAX_FILE_BYTES >= 32 * 2**20 and MAX_VALUES >= 5_000_000 and MAX_DEPTH >= 64 and MAX_ALIASES >= 100_000


# ---------------------------------------------------------------- aliases


def test_billion_laughs_is_refused_at_once_with_exit_2_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(BILLION_LAUGHS, encoding="utf-8")
    proc = legion(tmp_path, "chain", "validate", "bomb.yaml")
    assert proc.returncode == 2, proc.stderr
    first = proc.stderr.splitlines()[0]
    # The alias that takes the data past the limit: the fourth *a5 (1,111,111 values each) in a6.
    assert first.startswith("bomb.yaml:7:25: error: alias *a5 takes the data past 5,000,000 values"), first
    assert "write the values out" in first


def test_expansion_is_measured_without_expanding() -> None:
    # 10^15 values: refused as fast as the small bomb, since nothing is expanded.
    text = BILLION_LAUGHS + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(10, 16))
    issue = refusal(text)
    assert (issue.line, issue.col) == (7, 25) and "alias *a5" in issue.message


def test_too_many_aliases_names_the_first_one_past_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_ALIASES", 5)
    issue = refusal("base: &b 1\nuses:\n  - *b\n  - *b\n  - *b\n  - *b\n  - *b\n  - *b\n")
    assert (issue.line, issue.col) == (8, 5)
    assert "more than 5 aliases" in issue.message and "write the values out" in issue.message


def test_as_many_aliases_as_the_limit_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_ALIASES", 5)
    doc = load_text("base: &b 1\nuses: [*b, *b, *b, *b, *b]\n")
    assert doc.data == {"base": 1, "uses": [1, 1, 1, 1, 1]}


def test_a_file_without_aliases_past_the_value_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_VALUES", 10)
    issue = refusal("a: [1, 2, 3]\nb: [4, 5, 6]\nc: [7, 8]\n")
    assert (issue.line, issue.col) == (2, 11)  # the mapping, a, its list and 1..6: 6 is the 11th value
    assert "more than 10 values" in issue.message and "split it" in issue.message


def test_an_alias_inside_what_it_names_is_refused() -> None:
    issue = refusal("a: &a\n  b: [1, *a]\n")
    assert (issue.line, issue.col) == (2, 10)
    assert "alias *a is inside the value it names" in issue.message


def test_undefined_alias_is_still_the_yaml_error() -> None:
    issue = refusal("a: *nowhere\n")
    assert "undefined alias" in issue.message and issue.line == 1


# ---------------------------------------------------------------- nesting


def test_nesting_past_the_limit_names_the_node() -> None:
    text = "a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n"  # the root mapping is level 1
    issue = refusal(text)
    assert (issue.line, issue.col) == (1, 4 + MAX_DEPTH - 1)
    assert f"more than {MAX_DEPTH} levels" in issue.message and "flatten it" in issue.message


def test_nesting_at_the_limit_loads() -> None:
    depth = MAX_DEPTH - 1
    doc = load_text("a: " + "[" * depth + "]" * depth + "\n")
    value = doc.data["a"]
    for _ in range(depth - 1):
        value = value[0]
    assert value == []


def test_deep_block_nesting_names_its_line() -> None:
    text = "".join(" " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 5))
    issue = refusal(text)
    assert issue.line == MAX_DEPTH and "levels" in issue.message


def test_aliases_cannot_nest_past_the_limit() -> None:
    half = MAX_DEPTH // 2 + 2  # each half within the limit, the two together past it
    text = "a: &deep " + "[" * half + "]" * half + "\nb: " + "[" * half + "*deep" + "]" * half + "\n"
    issue = refusal(text)
    assert issue.line == 2 and issue.col == 4 + half
    assert "alias *deep nests the data more than" in issue.message


# ---------------------------------------------------------------- size


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: made at once, and never read
    with pytest.raises(ValidationFailed) as info:
        load_file(path)
    issue = info.value.issues[0]
    assert issue.file == str(path)
    assert f"{MAX_FILE_BYTES + 1:,} bytes, more than the {MAX_FILE_BYTES:,} bytes" in issue.message
    assert "split it into smaller files" in issue.message


def test_every_refusal_is_reported_with_exit_2_in_text_and_json(tmp_path: Path) -> None:
    with (tmp_path / "huge.yaml").open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    (tmp_path / "deep.yaml").write_text("a: " + "[" * 100 + "]" * 100 + "\n", encoding="utf-8")
    (tmp_path / "bomb.yaml").write_text(BILLION_LAUGHS, encoding="utf-8")
    proc = legion(tmp_path, "--json", "chain", "validate", "huge.yaml", "deep.yaml", "bomb.yaml")
    assert proc.returncode == 2, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == "validation_failed"
    assert [(d["file"], d["line"], d["col"]) for d in error["details"]] == [("huge.yaml", 0, 0), ("deep.yaml", 1, 4 + MAX_DEPTH - 1),
                                                                            ("bomb.yaml", 7, 25)]
    assert error["details"][0]["message"].startswith(f"the file is {MAX_FILE_BYTES + 1:,} bytes")


def test_text_over_the_size_limit_is_refused() -> None:
    issue = refusal("#" * (MAX_FILE_BYTES + 1))
    assert "more than the" in issue.message and issue.line == 0


def test_a_file_at_the_size_limit_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 12)
    path = tmp_path / "a.yaml"
    path.write_text("a: 1\nb: 222\n", encoding="utf-8")  # 12 bytes
    assert load_file(path).data == {"a": 1, "b": 222}
    path.write_text("a: 1\nb: 2222\n", encoding="utf-8")
    with pytest.raises(ValidationFailed, match="13 bytes"):
        load_file(path)


# ---------------------------------------------------------------- every place YAML is read


def test_a_rehearsal_file_is_bounded_too(tmp_path: Path) -> None:
    path = tmp_path / "bomb.test.yaml"
    path.write_text("chain: c.yaml\nexpect: {status: succeeded}\n" + BILLION_LAUGHS, encoding="utf-8")
    report = run_rehearsal(path, Registry.discover())
    assert not report.passed
    assert [(i.line, i.col) for i in report.issues] == [(9, 25)] and "alias *a5" in report.issues[0].message


def test_chain_test_refuses_a_bomb_chain_that_a_rehearsal_names(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("chain: c\nsteps: {s: {run: core.util.noop}}\n" + BILLION_LAUGHS, encoding="utf-8")
    (tmp_path / "c.test.yaml").write_text("chain: c.yaml\nexpect: {status: succeeded}\n", encoding="utf-8")
    proc = legion(tmp_path, "chain", "test", ".")
    assert proc.returncode == 1, proc.stderr
    assert "FAIL" in proc.stdout and "c.yaml:9:25: error: alias *a5" in proc.stdout


# ---------------------------------------------------------------- what real chains do still works


def test_a_chain_with_a_few_anchors_and_aliases_validates(tmp_path: Path) -> None:
    (tmp_path / "shared.yaml").write_text(WITH_ALIASES, encoding="utf-8")
    proc = legion(tmp_path, "chain", "validate", "shared.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "1 chain(s) valid" in proc.stdout


def test_aliases_expand_to_copies_of_what_they_name() -> None:
    data = load_text(WITH_ALIASES).data
    steps = data["steps"]
    assert steps["second"]["with"] == steps["third"]["with"] == {"message": "hello {{ input.name }}"}
    assert steps["third"]["retry"] == {"count": 2, "delay": "1s"}
