"""Masking every form a known secret can take (spec section 7): as a number, as a mapping key,
JSON-escaped, Python-repr, URL-encoded and base64, in what the engine stores and prints, and
printed JSON that stays JSON.

The end-to-end tests run one chain that turns two secrets (a string with quotes, a backslash,
non-ASCII and URL-reserved characters, and a PIN) into each form. It runs on the embedded
runtime in this process (the rows are read from the database, and by `legion run show` in
another process, which knows no secret), and in a `legion chain run` process (what the
process that resolved the secrets prints).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legion.engine.chains import apply_items, load_chains
from legion.engine.cli.output import Output, dumps, table
from legion.engine.data.store import Store
from legion.engine.errors import LegionError
from legion.engine.recorder import Recorder
from legion.engine.registry import Registry
from legion.engine.runtime import Engine
from legion.engine.sdk import Extension
from legion.engine.secrets import MASK, MASKER, MIN_MASKED, EmbeddedSecrets, Masker, Resolver, _alternation

ROOT = Path(__file__).resolve().parents[2]
# A quote of each kind is not in it at once: repr() of it uses double quotes; repr() of it
# with a `"` after it uses single quotes, so both quote styles show up. The control character
# is escaped differently by json.dumps (`\u0001`) and repr (`\x01`); the base64 of the whole
# has `+` (`-` URL-safe) and padding.
SECRET = "pä's\\wörd\x01 <&>?+/=~1"
PIN = "4821"
# A secret's token in a task's args is its reference, not its value; left out when looking
# for the PIN, since the token's MAC (hex) could hold the digits by chance.
TOKEN = re.compile("«secret:[^«»]*»")


def forms(value: str) -> dict[str, str]:
    """Every form of `value` that must never be stored or printed, by name, made here with the
    standard library (not with the masker's own list)."""
    raw = value.encode()
    found = {
        "raw": value,
        "json_ascii": json.dumps(value)[1:-1],
        "json_unicode": json.dumps(value, ensure_ascii=False)[1:-1],
        "tojson": json.dumps(value)[1:-1].replace("<", "\\u003c").replace(">", "\\u003e")
        .replace("&", "\\u0026").replace("'", "\\u0027"),
        "repr_double": repr(value)[1:-1],
        "repr_single": repr(value + '"')[1:-2],
        "quote": quote(value),
        "quote_plus": quote_plus(value),
        "quote_safe_empty": quote(value, safe=""),
        "base64": base64.b64encode(raw).decode(),
        "base64_unpadded": base64.b64encode(raw).decode().rstrip("="),
        "base64_urlsafe": base64.urlsafe_b64encode(raw).decode(),
        "base64_urlsafe_unpadded": base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    return found


FORMS = forms(SECRET)


def test_the_secret_has_distinct_forms() -> None:
    """The test secret is chosen so that the forms differ (otherwise a form would go untested)."""
    assert repr(SECRET)[0] == '"' and repr(SECRET + '"')[0] == "'"
    assert len(set(FORMS.values())) == len(FORMS), FORMS


@pytest.fixture(autouse=True)
def fresh_masker() -> Iterator[None]:
    MASKER.forget()
    yield
    MASKER.forget()


# ---------------------------------------------------------------- the masker


@pytest.mark.parametrize("name", sorted(FORMS))
def test_each_form_is_masked_in_text_and_in_strings(name: str) -> None:
    masker = Masker()
    masker.remember(SECRET)
    form = FORMS[name]
    assert masker.text(f"before {form} after") == "before *** after"
    assert masker.mask({"v": [f"before {form} after"]}) == {"v": ["before *** after"]}


def test_jinja_and_python_containers_show_the_forms_masked() -> None:
    masker = Masker()
    masker.remember(SECRET)
    assert masker.text(repr({"k": SECRET, "l": [SECRET]})) == "{'k': \"***\", 'l': [\"***\"]}"
    assert masker.text(repr([SECRET + '"'])) == "['***\"']"
    assert json.loads(masker.text(json.dumps({"k": SECRET}))) == {"k": MASK}


def test_a_number_whose_text_is_a_secret_becomes_the_mask() -> None:
    masker = Masker()
    masker.remember(PIN)  # a string secret that a template turns into a number (`| int`)
    masker.remember(73519.25)  # a number secret
    value = {"pin": 4821, "float": 4821.0, "other": 73519.25, "longer": 148210, "part": 4821.5, "small": 482,
             "flag": True, "none": None}
    # A number whose text holds a secret becomes its text masked, a string.
    assert masker.mask(value) == {"pin": MASK, "float": MASK, "other": MASK, "longer": "1***0", "part": "***.5",
                                  "small": 482, "flag": True, "none": None}
    assert masker.mask([4821, [4821]]) == [MASK, [MASK]]


def test_a_numeric_secret_is_also_masked_as_the_number_it_becomes() -> None:
    masker = Masker()
    masker.remember("004821")
    assert masker.mask({"int": 4821, "float": 4821.0}) == {"int": MASK, "float": MASK}


def test_forms_shorter_than_min_masked_are_not_masked() -> None:
    masker = Masker()
    masker.remember("abc")  # too short: neither it nor its base64 "YWJj" is masked
    assert not masker.active and masker.text("abc YWJj") == "abc YWJj"
    masker.remember("0042")  # its `| int` form, 42, is too short to mask
    assert masker.mask({"n": 42, "s": "0042", "f": 42.0}) == {"n": 42, "s": MASK, "f": MASK}
    assert MIN_MASKED == 4  # as docs/chains.md section 7 says


def test_mapping_keys_are_renamed_distinct_and_in_order() -> None:
    masker = Masker()
    masker.remember(SECRET)
    masker.remember(PIN)
    value = {"***": "kept", SECRET: 1, FORMS["json_ascii"]: 2, "plain": 3, f"x-{PIN}": 4, 4821: 5, "***#2": "kept too"}
    masked = masker.mask(value)
    assert masked == {"***": "kept", "***#3": 1, "***#4": 2, "plain": 3, "x-***": 4, "***#5": 5, "***#2": "kept too"}
    assert list(masked) == ["***", "***#3", "***#4", "plain", "x-***", "***#5", "***#2"]
    assert masker.mask(value) == masked  # the same mapping is always masked the same way


def test_the_longest_form_wins() -> None:
    masker = Masker()
    masker.remember("secret")
    masker.remember("secret-and-more")
    masker.remember("secret-and")
    assert masker.text("secret-and-more secret-and-m secret") == "*** ***-m ***"


@settings(max_examples=300, deadline=None)
@given(st.sets(st.text("ab\\|(.", min_size=1, max_size=6), min_size=1, max_size=8), st.text("ab\\|(.x", max_size=40))
def test_the_one_alternation_matches_as_a_flat_one_sorted_longest_first(words: set[str], text: str) -> None:
    """The masker's alternation is shaped as a trie (for speed); it must match exactly what a
    flat alternation of the same words, longest first, matches."""
    flat = re.compile("|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w))))
    assert _alternation(words).sub("*", text) == flat.sub("*", text)


def test_forms_nested_deeper_than_re_can_parse_still_compile() -> None:
    words = {"x" * n + "y" for n in range(4, 1500)} | {"x" * n for n in range(4, 1500)}
    assert _alternation(words).sub("*", "a" + "x" * 1000 + "y" + "x" * 3 + "b") == "a*xxxb"


# ---------------------------------------------------------------- printing


def test_json_output_stays_json_for_numbers_keys_and_json_like_secrets() -> None:
    MASKER.remember(PIN)
    MASKER.remember("true")  # a secret that is also JSON syntax: the booleans stay booleans
    MASKER.remember(SECRET)
    buffer = io.StringIO()
    out = Output(True, buffer)
    out.data({"pin": 4821, "keys": {SECRET: 1, PIN: 2}, "flag": True, "text": f"say {FORMS['json_ascii']}"})
    out.error(LegionError(f"refused {SECRET!r}", details={"pin": 4821, SECRET: "x"}))
    first, second = (json.loads(line) for line in buffer.getvalue().splitlines())
    assert first == {"data": {"pin": MASK, "keys": {MASK: 1, "***#2": 2}, "flag": True, "text": "say ***"}}
    assert second["error"]["message"] == 'refused "***"' and second["error"]["details"] == {"pin": MASK, MASK: "x"}
    assert_no_form(buffer.getvalue(), FORMS)


def test_text_output_shows_json_masked_on_the_structure() -> None:
    MASKER.remember(PIN)
    MASKER.remember(SECRET)
    buffer = io.StringIO()
    out = Output(False, buffer)
    out.data({"pin": 4821}, lambda: "output: " + dumps({"pin": 4821, SECRET: [SECRET]}))
    out.data({"pin": 4821, "v": FORMS["base64"]})  # the default rendering
    printed = buffer.getvalue()
    assert printed.startswith('output: {"pin": "***", "***": ["***"]}\n')
    assert json.loads(printed.split("\n", 1)[1]) == {"pin": MASK, "v": MASK}
    rows = [{"n": 4821, "d": {"pin": 4821}}]
    assert '{"pin": "***"}' in table(rows, ["n", "d"])  # a cell's JSON is masked on the value
    out.data(rows, lambda: table(rows, ["n", "d"]))
    printed = buffer.getvalue()
    assert "4821" not in printed
    assert_no_form(printed, FORMS)


def test_the_recorder_masks_numbers_and_keys() -> None:
    MASKER.remember(PIN)

    class Capture:
        tasks: list[Any] = []

        def record(self, run: Any, tasks: list[Any], logs: list[Any] | None = None) -> None:
            self.tasks += tasks

    capture = Capture()
    recorder = Recorder(capture)
    recorder.task({"run_id": "r", "number": 1, "args": {"pin": 4821}, "result": {PIN: "the pin"}})
    recorder.close()
    assert capture.tasks == [{"run_id": "r", "number": 1, "args": {"pin": MASK}, "result": {MASK: "the pin"}}]


# ---------------------------------------------------------------- end to end

PROBE = '''
"""Functions that show a secret in other forms, as extension code might."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote, quote_plus

from legion.sdk import Context


def forms(value: str, ctx: Context) -> dict[str, Any]:
    """Return `value` in many forms, and log some."""
    raw = value.encode()
    ctx.log.warning("got %r, that is %s", value, json.dumps(value))
    return {
        "repr": f"value={value!r}",
        "repr_single": repr(value + '"'),
        "repr_list": repr([value]),
        "json_ascii": json.dumps({"v": value}),
        "json_unicode": json.dumps({"v": value}, ensure_ascii=False),
        "quote": "https://example.com/" + quote(value),
        "quote_plus": "q=" + quote_plus(value),
        "quote_safe_empty": "q=" + quote(value, safe=""),
        "base64": "Basic " + base64.b64encode(raw).decode(),
        "base64_unpadded": base64.b64encode(raw).decode().rstrip("="),
        "base64_urlsafe": base64.urlsafe_b64encode(raw).decode(),
        "base64_urlsafe_unpadded": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        value: "the value as a key",
    }


def refuse(value: str) -> None:
    """Fail, naming `value` as exceptions do."""
    raise ValueError(f"refused {value!r}, that is {json.dumps(value)}")
'''

CHAIN = """
chain: forms
steps:
  fetch:
    run: core.util.echo
    with: {message: {token: "{{ secret('api#token') }}", pin: "{{ secret('bank#pin') }}"}}
    next:
      - publish: {token: "{{ result.token }}", pin: "{{ result.pin }}"}
        do: python
  python:
    run: probe.forms.forms
    with: {value: "{{ ctx.token }}"}
    next:
      - do: jinja
  jinja:
    run: core.util.echo
    with:
      message:
        pin_int: "{{ ctx.pin | int }}"
        pin_float: "{{ ctx.pin | float }}"
        pin_text: "the pin is {{ ctx.pin | int }}"
        keys: "{{ {ctx.token: 'the token', ctx.pin: 'the pin', ('x-' ~ ctx.token): 'prefixed'} }}"
        tojson: "{{ ctx.token | tojson }}"
        repr: "{{ [ctx.token] | string }}"
        url: "{{ ctx.token | urlencode }}"
    next:
      - do: refuse
  refuse:
    run: probe.forms.refuse
    with: {value: "{{ ctx.token }}"}
output:
  pin: "{{ ctx.pin | int }}"
  keys: "{{ {ctx.token: 1, ctx.pin: 2} }}"
"""

# The chain's masked output: the numeric PIN a string `***`, the keys renamed.
OUTPUT = {"pin": MASK, "keys": {MASK: 1, "***#2": 2}}


def probe_module() -> types.ModuleType:
    module = types.ModuleType("legion_probe.runners.forms")
    exec(compile(PROBE, "probe/forms.py", "exec"), module.__dict__)
    return module


def install_probe(site: Path) -> dict[str, str]:
    """The probe as an installed extension (a package and its entry point, as pip would leave
    them); the environment that puts it on the path."""
    package = site / "legion_probe"
    (package / "runners").mkdir(parents=True)
    (package / "__init__.py").write_text("from legion.sdk import Extension\nfrom legion_probe.runners import forms\n"
                                         "extension = Extension('probe', runners=[forms], description='masking probe')\n")
    (package / "runners" / "__init__.py").write_text("")
    (package / "runners" / "forms.py").write_text(PROBE)
    info = site / "legion_probe-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: legion-probe\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[legion.extensions]\nprobe = legion_probe:extension\n")
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)}


def legion(home: Path, *args: str, check: int | None = 0, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, LEGION_HOME=str(home), **(env or {}))
    for name in ("LEGION_DATABASE_URL", "VAULT_ADDR", "VAULT_TOKEN", "LEGION_VAULT_MOUNT"):
        full_env.pop(name, None)
    proc = subprocess.run([sys.executable, "-m", "legion.engine.cli.main", *args], capture_output=True, text=True,
                          env=full_env, cwd=ROOT, timeout=120, input="")
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def assert_no_form(text: str, found: dict[str, str]) -> None:
    shown = {name: form for name, form in found.items() if form in text}
    assert not shown, f"forms of the secret shown: {sorted(shown)}\n{text}"


def texts(value: Any) -> Iterator[str]:
    """Every string, number (as text) and mapping key in a value, tokens left out."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts(item)
    elif isinstance(value, str):
        yield TOKEN.sub("", value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield repr(value)


def assert_no_pin(value: Any) -> None:
    shown = [text for text in texts(value) if PIN in text]
    assert not shown, f"the PIN shown in {shown}"


def check_run(run: dict[str, Any], tasks: list[dict[str, Any]]) -> None:
    """What the chain recorded, masked (from any reader)."""
    assert run["status"] == "failed" and run["output"] == OUTPUT
    assert run["error"]["message"] == 'refused "***", that is "***"'
    by_step = {t["step"]: t for t in tasks}
    assert by_step["fetch"]["result"] == {"token": MASK, "pin": MASK}
    python = by_step["python"]["result"]
    assert python["repr"] == 'value="***"' and python["repr_single"] == "'***\"'" and python["repr_list"] == '["***"]'
    assert json.loads(python["json_ascii"]) == json.loads(python["json_unicode"]) == {"v": MASK}
    assert python["quote"] == "https://example.com/***" and python["base64"] == "Basic ***"
    assert python[MASK] == "the value as a key"
    assert by_step["python"]["args"] == {"value": MASK}  # a value published from a result: masked all the same
    message = by_step["jinja"]["args"]["message"]
    assert message == {"pin_int": MASK, "pin_float": MASK, "pin_text": "the pin is ***",
                       "keys": {MASK: "the token", "***#2": "the pin", "x-***": "prefixed"},
                       "tojson": '"***"', "repr": '["***"]', "url": "***"}
    assert by_step["jinja"]["result"] == message
    error = by_step["refuse"]["error"]
    assert error["message"] == 'refused "***", that is "***"' and "***" in error["traceback"]
    for row in (run, *tasks):
        assert_no_pin({k: row.get(k) for k in ("input", "output", "error", "args", "result")})


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The chain run on the embedded runtime in this process, in a fresh LEGION_HOME, with the
    embedded secret store; what the database holds and what other processes print of it."""
    MASKER.forget()
    root = tmp_path_factory.mktemp("stored")
    home = root / "home"
    secrets = EmbeddedSecrets(home)
    secrets.write("api", "token", SECRET)
    secrets.write("bank", "pin", PIN)
    (root / "chains").mkdir()
    (root / "chains" / "forms.yaml").write_text(textwrap.dedent(CHAIN))
    registry = Registry([Registry.discover().extensions["core"], Extension("probe", runners=[probe_module()])])
    store = Store(f"sqlite:///{home / 'legion.db'}")
    files, issues = load_chains([root / "chains"], registry)
    assert not issues
    store.apply_chains(apply_items(files))
    with Engine(registry, store, workers=2, secrets=Resolver(secrets)) as engine:
        run = engine.wait(engine.submit("forms", {}), 30)
    tasks = store.run_tasks(run["id"])
    logs = store.task_logs(next(t["id"] for t in tasks if t["step"] == "python"))
    MASKER.forget()  # from here on this process knows no secret either: only the stored rows are masked
    with sqlite3.connect(home / "legion.db") as db:
        tables = {name: "\n".join(str(cell) for row in db.execute(f"select * from {name}") for cell in row)
                  for name in ("runs", "tasks", "task_logs")}
    shown_json = legion(home, "run", "show", run["id"], "--json")
    shown_text = legion(home, "run", "show", run["id"])
    logs_json = legion(home, "task", "logs", str(next(t["id"] for t in tasks if t["step"] == "python")), "--json")
    return {"run": run, "tasks": tasks, "logs": logs, "tables": tables, "database": (home / "legion.db").read_bytes(),
            "shown_json": shown_json.stdout, "shown_text": shown_text.stdout, "logs_json": logs_json.stdout}


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The chain run by `legion chain run`: what the process that resolved the secrets prints."""
    root = tmp_path_factory.mktemp("printed")
    home = root / "home"
    env = install_probe(root / "site")
    (root / "chains").mkdir()
    (root / "chains" / "forms.yaml").write_text(textwrap.dedent(CHAIN))
    secrets = EmbeddedSecrets(home)
    secrets.write("api", "token", SECRET)
    secrets.write("bank", "pin", PIN)
    legion(home, "chain", "apply", str(root / "chains"), env=env)
    return {"json": legion(home, "chain", "run", "forms", "--json", check=1, env=env).stdout,
            "text": legion(home, "chain", "run", "forms", "--wait", check=1, env=env).stdout}


def test_stored_rows_are_masked(stored: dict[str, Any]) -> None:
    check_run(stored["run"], stored["tasks"])
    assert [e["message"] for e in stored["logs"]] == ['got "***", that is "***"']


@pytest.mark.parametrize("name", sorted(FORMS))
def test_no_form_is_stored(stored: dict[str, Any], name: str) -> None:
    form = FORMS[name]
    for table_name, rows in stored["tables"].items():
        assert form not in rows, table_name
    assert form.encode() not in stored["database"]


def test_another_process_shows_the_stored_rows_as_json(stored: dict[str, Any]) -> None:
    shown = json.loads(stored["shown_json"])["data"]
    check_run(shown, shown["tasks"])
    assert [e["message"] for e in json.loads(stored["logs_json"])["data"]] == ['got "***", that is "***"']
    for printed in (stored["shown_json"], stored["logs_json"], stored["shown_text"]):
        assert_no_form(printed, FORMS)
    check_text(stored["shown_text"])


def check_text(text: str) -> None:
    """`legion run show` for people: the output line is JSON, the error line says `***`."""
    lines = text.splitlines()
    output = next(line for line in lines if line.startswith("output: "))
    assert json.loads(output[len("output: "):]) == OUTPUT
    error = next(line for line in lines if line.startswith("error: "))
    assert 'refused "***", that is "***"' in error and PIN not in output + error


@pytest.mark.parametrize("mode", ["json", "text"])
def test_the_resolving_process_prints_no_form(printed: dict[str, str], mode: str) -> None:
    output = printed[mode]
    assert_no_form(output, FORMS)
    if mode == "json":
        run = json.loads(output)["data"]  # one JSON document
        check_run(run, run["tasks"])
        assert_no_pin(run)
    else:
        check_text(output)
