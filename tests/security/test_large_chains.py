"""Large chain files: a 10,000-step chain validates, and what validation costs grows with the
file, not faster. No test here times anything: each checks a count that a superlinear path
would change (how often a file is parsed, how many templates are compiled, how many names a
hint compares), so none depends on how busy the machine is. `bench/validate.py` prints the
figures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from legion.dsl import loader, validate
from legion.dsl.errors import ValidationFailed
from legion.dsl.validate import HINT_COMPARISONS, LISTED_STEPS, load_chain
from legion.engine.cli.main import main
from legion.engine.registry import Registry

CATALOG = Registry.discover().catalog()


def sequence(n: int, *, with_: str = "", edges: str = "", extra: str = "") -> str:
    """A chain of `n` steps s0 -> s1 -> ... in flow style, one line a step (the cheapest to
    parse). `with_` (formatted with the step's number `i`) and `edges` (edges before the one to
    the next step) are added to every step, `extra` (more steps) at the end."""
    lines = ["chain: big", "steps:"]
    for i in range(n):
        run = "core.util.set" if with_ else "core.util.noop"
        args = f", with: {{{with_.format(i=i)}}}" if with_ else ""
        following = [edges] if edges else []
        following += [f"{{do: s{i + 1}}}"] if i + 1 < n else []
        lines.append(f"  s{i}: {{run: {run}{args}" + (f", next: [{', '.join(following)}]" if following else "") + "}")
    return "\n".join(lines) + "\n" + extra


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """How many times the loader parsed each text (libyaml, and ruamel.yaml when it judges an error)."""
    counts: Counter[str] = Counter()
    parse = loader._parse

    def counting(text: str, file: str) -> Any:
        counts[text] += 1
        return parse(text, file)

    monkeypatch.setattr(loader, "_parse", counting)
    yield counts


def test_a_10000_step_chain_validates_parsed_once(tmp_path: Path, parses: Counter[str], capsys: pytest.CaptureFixture[str]) -> None:
    text = sequence(10_000)
    (tmp_path / "big.yaml").write_text(text, encoding="utf-8")
    assert main(["chain", "validate", str(tmp_path / "big.yaml")]) == 0, capsys.readouterr()
    assert capsys.readouterr().out.strip() == "1 chain(s) valid"
    assert parses[text] == 1


# ---------------------------------------------------------------- each file parsed once


def folder_of_files(root: Path) -> dict[str, str]:
    files = {
        "a.yaml": "chain: a\nsteps:\n  s: {run: core.util.echo, with: {message: hi}, next: [{do: t}]}\n  t: {run: 'chain:b'}\n",
        "b.yaml": "chain: b\nsteps: {u: {run: core.util.noop}}\n",
        "a.test.yaml": "chain: a.yaml\nmocks: {s: [{result: 1}]}\nexpect: {status: succeeded, sequence: [s, t]}\n",
        "a-again.test.yaml": "chain: a.yaml\nexpect: {status: succeeded, sequence: [s, t]}\n",
        "notes.yaml": "just: some other YAML\n",
    }
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return files


def test_chain_validate_parses_each_file_once(tmp_path: Path, parses: Counter[str], capsys: pytest.CaptureFixture[str]) -> None:
    files = folder_of_files(tmp_path)
    # The folder, and one of its files named again: still one file, parsed once.
    assert main(["chain", "validate", str(tmp_path), str(tmp_path / "a.yaml")]) == 0, capsys.readouterr()
    assert "2 chain(s) valid" in capsys.readouterr().out
    assert {name: parses[text] for name, text in files.items()} == dict.fromkeys(files, 1)


def test_chain_validate_parses_a_broken_file_once(tmp_path: Path, parses: Counter[str], capsys: pytest.CaptureFixture[str]) -> None:
    broken = "chain: c\nsteps: [\n"
    (tmp_path / "c.yaml").write_text(broken, encoding="utf-8")
    assert main(["chain", "validate", str(tmp_path / "c.yaml")]) == 2
    assert "YAML syntax error" in capsys.readouterr().err
    assert parses[broken] == 1


def test_chain_test_parses_each_file_once(tmp_path: Path, parses: Counter[str], capsys: pytest.CaptureFixture[str]) -> None:
    files = folder_of_files(tmp_path)
    assert main(["chain", "test", str(tmp_path)]) == 0, capsys.readouterr()
    assert "2 passed, 0 failed" in capsys.readouterr().out
    assert {name: parses[text] for name, text in files.items()} == dict.fromkeys(files, 1)


def test_a_file_reached_by_two_paths_keeps_the_name_it_is_asked_by(tmp_path: Path) -> None:
    from legion.engine.yamlfiles import YamlFiles

    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "c.yaml").write_text("chain: [\n", encoding="utf-8")
    files = YamlFiles()
    first, second = files.get(tmp_path / "x" / "c.yaml"), files.get(tmp_path / "x" / ".." / "x" / "c.yaml")
    assert first.kind == second.kind == "broken"
    assert first.issues[0].file == str(tmp_path / "x" / "c.yaml")
    assert second.issues[0].file == str(tmp_path / "x" / ".." / "x" / "c.yaml")


# ---------------------------------------------------------------- what validation does per step


def test_each_distinct_template_is_checked_once_and_none_is_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    from legion.dsl import expressions, sandbox

    compiled: Counter[str] = Counter()
    checked = sandbox.template_names

    def counting(source: str) -> frozenset[str]:
        compiled[source] += 1
        return checked(source)

    def never(source: str) -> Any:
        raise AssertionError(f"validation compiled {source!r}")

    monkeypatch.setattr(sandbox, "template_names", counting)
    monkeypatch.setattr(expressions.Template, "__init__", never)
    text = sequence(300, with_="message: '{{{{ input.x }}}}', n: '{{{{ input.n + {i} }}}}'")
    chain, issues = load_chain("big.yaml", text=text, functions=CATALOG)
    assert issues == []
    assert compiled["{{ input.x }}"] == 1  # the one every step has
    assert len(compiled) == 301 and set(compiled.values()) == {1}


def test_misspelt_targets_in_a_large_chain_cost_a_bounded_number_of_comparisons(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[int] = []
    close_matches = validate.difflib.get_close_matches

    def counting(word: str, candidates: list[str], *args: Any, **kwargs: Any) -> list[str]:
        compared.append(len(candidates))
        return close_matches(word, candidates, *args, **kwargs)

    monkeypatch.setattr(validate.difflib, "get_close_matches", counting)
    n = 1_000
    text = sequence(n).replace("do: s", "do: x")  # every target misspelt
    with pytest.raises(ValidationFailed) as info:
        load_chain("big.yaml", text=text, functions=CATALOG)
    issues = [i for i in info.value.issues if "which is not a step" in i.message]
    assert len(issues) == n - 1  # every problem is reported...
    assert sum(compared) <= HINT_COMPARISONS  # ...the hints within their budget
    assert len(compared) == HINT_COMPARISONS // n
    assert 0 < sum("did you mean 's" in i.message for i in issues) <= len(compared)
    assert max(len(i.message) for i in issues) < 100  # no message lists the thousand steps


def test_a_small_chain_still_lists_its_steps_when_no_name_is_close() -> None:
    with pytest.raises(ValidationFailed) as info:
        load_chain("c.yaml", text=sequence(LISTED_STEPS).replace(f"do: s{LISTED_STEPS - 1}", "do: zzz"), functions=CATALOG)
    (issue,) = info.value.issues
    assert "`do` names 'zzz', which is not a step; steps: s0, s1, s10," in issue.message


def test_a_step_that_every_step_leads_to_has_each_predecessor_once() -> None:
    text = sequence(300, edges="{when: failed, do: [notify, fail]}, {when: failed, do: notify}",
                    extra="  notify: {run: core.util.noop, join: 300}\n")
    chain, issues = load_chain("c.yaml", text=text, functions=CATALOG)
    assert issues == []
    assert chain.predecessors()["notify"] == [f"s{i}" for i in range(300)]
    with pytest.raises(ValidationFailed, match="join: 301 waits for more predecessors than step 'notify' has \\(300\\)"):
        load_chain("c.yaml", text=text.replace("join: 300", "join: 301"), functions=CATALOG)
