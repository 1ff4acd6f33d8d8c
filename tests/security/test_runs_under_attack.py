"""Runs fed hostile chains and inputs (issue cases 1, 2 and 3): a looping template holds up
neither other runs, nor a cancel, nor Ctrl-C; a secret reference resolves only in the step run
that made it; a value that cannot be stored fails its step or run, recorded, and a run that
loses a record is never `succeeded`."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_until

from legion.dsl.budget import Evaluation, Limits, configure, limits
from legion.dsl.validate import load_chain
from legion.engine.conductor import ChainProgram
from legion.engine.data.store import Store
from legion.engine.registry import Registry
from legion.engine.runtime import Engine
from legion.engine.sdk import Extension

REGISTRY = Registry.discover()
SPIN = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}x"
SPIN_CHAIN = f"""
chain: spin
steps:
  spin:
    run: core.util.echo
    timeout: 2s
    with: {{message: "{SPIN}"}}
"""


@pytest.fixture(autouse=True)
def default_limits() -> Iterator[None]:
    before = limits()
    yield
    configure(before)


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'legion.db'}")


def program(text: str, registry: Registry = REGISTRY) -> ChainProgram:
    chain, issues = load_chain("test.yaml", text=text, functions=registry.catalog())
    assert chain is not None, issues
    return ChainProgram(chain, functions=registry.catalog())


def trace(store: Store, run_id: str) -> dict[str, dict[str, Any]]:
    return {t["step"]: t for t in store.run_tasks(run_id)}


# ---------------------------------------------------------------- 1. a template that spins


def test_a_spinning_template_holds_up_neither_other_runs_nor_a_cancel(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The spinning run's render is held at its checkpoint (so nothing here depends on how
    fast the machine is) while another run completes and the spinning run is canceled."""
    configure(Limits(time=0.05, steps=10**12))
    rendering, release = threading.Event(), threading.Event()
    check = Evaluation.check

    def held(self: Evaluation) -> None:
        if self.binding.startswith(spinning_id + "/"):
            rendering.set()
            release.wait(30)
        check(self)

    spinning_id = "spinning-run"
    monkeypatch.setattr(Evaluation, "check", held)
    with Engine(REGISTRY, store, workers=2) as engine:
        engine.start_program(program(SPIN_CHAIN), {}, run_id=spinning_id)
        assert rendering.wait(30), "the spinning template never started rendering"
        other = engine.wait(engine.start_program(program("chain: other\nsteps:\n  a: {run: core.util.noop}\n"), {}), 30)
        assert other["status"] == "succeeded"
        canceling = threading.Thread(target=engine.cancel, args=(spinning_id,))
        canceling.start()
        canceling.join(10)
        assert not canceling.is_alive(), "cancel waited for the template"
        assert not release.is_set()  # the template was still rendering all along
        release.set()
        spun = engine.wait(spinning_id, 30)
    assert spun["status"] == "canceled"
    assert trace(store, spinning_id)["spin"]["status"] == "canceled"  # it never started


def test_a_spinning_template_fails_its_run_naming_the_budget(store: Store) -> None:
    configure(Limits(time=0.1))
    with Engine(REGISTRY, store, workers=2) as engine:
        run = engine.wait(engine.start_program(program(SPIN_CHAIN), {}), 30)
    assert run["status"] == "failed" and run["error"]["type"] == "ExpressionError"
    message = run["error"]["message"]
    assert "chain 'spin', step 'spin', with:" in message and "budget" in message and "LEGION_EXPRESSION_" in message
    assert trace(store, run["id"])["spin"]["status"] == "failed"


def test_ctrl_c_stops_legion_start_while_a_chain_spins(tmp_path: Path) -> None:
    chains = tmp_path / "chains"
    chains.mkdir()
    (chains / "spin.yaml").write_text(f"""
chain: spin
on:
  schedule:
    - every: 1s
steps:
  spin:
    run: core.util.echo
    with: {{message: "{SPIN}"}}
""")
    (chains / "beat.yaml").write_text("chain: beat\non:\n  schedule:\n    - every: 1s\nsteps:\n  tick: {run: core.util.noop}\n")
    env = dict(os.environ, LEGION_HOME=str(tmp_path / "home"), LEGION_EXPRESSION_TIMEOUT="2s",
               LEGION_EXPRESSION_MAX_STEPS="1000000000", LEGION_WORKERS="2")
    env.pop("LEGION_DATABASE_URL", None)
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "legion.engine.cli.main", "start", "--chains", str(chains)],
                                env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        database = tmp_path / "home" / "legion.db"
        wait_until(lambda: proc.poll() is None and database.exists(), timeout=60, what="legion start to be up")
        store = Store(f"sqlite:///{database}")

        def both() -> bool:
            assert proc.poll() is None, errors.read_text()
            return (len(store.list_runs(chain="beat", status="succeeded")) >= 2
                    and len(store.list_runs(chain="spin", status="failed")) >= 1)

        wait_until(both, timeout=90, what="beats to succeed while spins fail on their budget")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            # The drain is 10 s; each spinning render gives up within its 2 s budget.
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("legion start did not stop on Ctrl-C") from None
    assert proc.returncode == 0, errors.read_text()
    spun = store.list_runs(chain="spin", status="failed")[0]
    assert spun["error"]["type"] == "ExpressionError" and "time budget of 2000 ms" in spun["error"]["message"]


# ---------------------------------------------------------------- 3. values that cannot be stored


def test_a_huge_integer_in_with_fails_the_run_with_its_trace(store: Store) -> None:
    with Engine(REGISTRY, store, workers=2) as engine:
        run = engine.wait(engine.start_program(program("""
chain: big
steps:
  a:
    run: core.util.echo
    with: {message: "{{ 10**5000 }}"}
"""), {}), 30)
    assert run["status"] == "failed" and run["error"]["type"] == "ExpressionError" and "digits" in run["error"]["message"]
    assert trace(store, run["id"])["a"]["status"] == "failed"


def test_a_huge_integer_in_output_fails_the_run_and_keeps_its_row(store: Store) -> None:
    with Engine(REGISTRY, store, workers=2) as engine:
        run = engine.wait(engine.start_program(program("""
chain: big
steps:
  a: {run: core.util.noop}
output: {n: "{{ 10**5000 }}"}
"""), {}), 30)
    assert run["status"] == "failed" and run["output"] is None
    assert run["error"]["type"] == "ExpressionError" and "output" in run["error"]["message"]
    assert trace(store, run["id"])["a"]["status"] == "succeeded"


def test_a_huge_input_number_squared_fails_the_run_with_its_trace(store: Store) -> None:
    with Engine(REGISTRY, store, workers=2) as engine:
        run = engine.wait(engine.start_program(program("""
chain: square
steps:
  a:
    run: core.util.echo
    with: {message: "{{ input.n * input.n }}"}
"""), {"n": int("7" * 3999)}), 30)
    assert run["status"] == "failed" and "digits" in run["error"]["message"]
    assert trace(store, run["id"])["a"]["status"] == "failed"
    assert store.get_run(run["id"])["input"] == {"n": int("7" * 3999)}


def test_an_input_that_cannot_be_stored_is_refused_before_the_run_exists(store: Store) -> None:
    from legion.engine.errors import BadInput

    configure(Limits(value=10_000))
    with Engine(REGISTRY, store, workers=1) as engine:
        with pytest.raises(BadInput, match="cannot be stored.*LEGION_MAX_VALUE_SIZE"):
            engine.start_program(program("chain: c\nsteps:\n  a: {run: core.util.noop}\n"), {"s": "x" * 20_000})
    assert store.list_runs() == []


def probe_registry(tmp_path: Path) -> Registry:
    """The built-ins and extension `probe` whose runner `probe.make` returns what it is asked."""
    path = tmp_path / "probe_make.py"
    path.write_text("def huge_int() -> int:\n    return 10 ** 5000\n\n\ndef text(n: int) -> str:\n    return 'x' * n\n")
    spec = importlib.util.spec_from_file_location("probe.runners.make", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Registry([*REGISTRY.extensions.values(), Extension("probe", runners=[module])])


def test_a_result_that_cannot_be_stored_fails_its_step_run_as_an_ordinary_failure(store: Store, tmp_path: Path) -> None:
    configure(Limits(value=10_000))
    registry = probe_registry(tmp_path)
    with Engine(registry, store, workers=2) as engine:
        run = engine.wait(engine.start_program(program("""
chain: results
steps:
  number:
    run: probe.make.huge_int
    next:
      - when: failed
        do: text
  text:
    run: probe.make.text
    with: {n: 20000}
    next:
      - when: failed
        publish: {why: "{{ error.type }}"}
""", registry), {}), 30)
    steps = trace(store, run["id"])
    assert steps["number"]["status"] == "failed" and steps["number"]["error"]["type"] == "ResultInvalid"
    assert "digits" in steps["number"]["error"]["message"]
    assert steps["text"]["status"] == "failed" and steps["text"]["error"]["type"] == "ResultTooLarge"
    assert run["status"] == "succeeded"  # both failures were handled by edges, and both are in the trace


def test_a_run_that_loses_a_record_is_failed_not_succeeded(tmp_path: Path) -> None:
    class Losing(Store):
        """A database that refuses the finished row of step `b`, every time."""

        def record(self, run: Any, tasks: list[Any], logs: Any = None) -> None:
            if any(t.get("step") == "b" and t.get("status") == "succeeded" for t in tasks):
                raise RuntimeError("disk full")
            super().record(run, tasks, logs)

    store = Losing(f"sqlite:///{tmp_path / 'legion.db'}")
    with Engine(REGISTRY, store, workers=2) as engine:
        run_id = engine.start_program(program("""
chain: lossy
steps:
  a:
    run: core.util.noop
    next: [{do: b}]
  b:
    run: core.util.noop
    next: [{do: c}]
  c: {run: core.util.noop}
"""), {})
        engine.wait(run_id, 30)
        engine.recorder.flush()
    run = store.get_run(run_id)
    assert run["status"] == "failed" and run["error"]["type"] == "RecordLost"
    assert "step run 2" in run["error"]["message"] and "disk full" in run["error"]["message"]


# ---------------------------------------------------------------- 2. secret references are bound


def legion(home: Path, *args: str, env: dict[str, str], check: int = 0) -> Any:
    full = dict(os.environ, LEGION_HOME=str(home), **env)
    full.pop("LEGION_DATABASE_URL", None)
    proc = subprocess.run([sys.executable, "-m", "legion.engine.cli.main", *args, "--json"], capture_output=True,
                          text=True, env=full, timeout=120)
    assert proc.returncode == check, proc.stdout + proc.stderr
    return json.loads(proc.stdout)["data"] if check == 0 else json.loads(proc.stdout)


def test_a_token_copied_from_a_record_never_resolves_elsewhere(tmp_path: Path) -> None:
    secret = "s3cr3t-replayed-value"
    home, chains = tmp_path / "home", tmp_path / "chains"
    chains.mkdir()
    (chains / "uses.yaml").write_text("""
chain: uses
steps:
  call:
    run: core.util.echo
    with: {message: "{{ secret('api#token') }}"}
    next:
      - publish: {copied: "{{ secret('api#token') }}"}
        do: again
  again:
    run: core.util.echo
    with: {message: "{{ ctx.copied }}"}
""")
    (chains / "replay.yaml").write_text("chain: replay\nsteps:\n  call:\n    run: core.util.echo\n    with: {message: \"{{ input.t }}\"}\n")
    # One key for every process: the deployment-wide case, where a token would otherwise travel.
    env = {"LEGION_SECRET_TOKEN_KEY": "one-key-for-the-whole-deployment"}
    legion(home, "secret", "set", "api", "token", secret, env=env)
    legion(home, "chain", "apply", str(chains), env=env)
    first = legion(home, "chain", "run", "uses", env=env)
    shown = legion(home, "run", "show", first["id"], env=env)
    steps = {t["step"]: t for t in shown["tasks"]}
    token = steps["call"]["args"]["message"]
    assert token.startswith("«secret:api#token|") and steps["call"]["result"] == "***"  # it resolved where it was made
    assert steps["again"]["result"] == steps["again"]["args"]["message"] != "***"  # published: never resolved
    replayed = legion(home, "chain", "run", "replay", f"t={token}", env=env)
    assert replayed["status"] == "succeeded" and replayed["output"] is None
    shown = legion(home, "run", "show", replayed["id"], env=env)
    assert shown["tasks"][0]["result"] == token  # the step got the token's text, not the secret
    task = legion(home, "task", "run", "core.util.echo", f"message=x {token}", env=env)
    assert task["result"] == f"x {token}"
    # The database holds no trace of the value.
    assert secret.encode() not in (home / "legion.db").read_bytes()


def test_a_token_signed_with_another_key_never_resolves() -> None:
    from legion.dsl import tokens
    from legion.dsl.budget import step_binding
    from legion.engine.secrets import resolve_tokens

    binding = step_binding("run-1", 1)
    restore = tokens.use_key(lambda: b"another deployment's key")  # restored after: tokens other tests made keep verifying
    foreign = tokens.make_token("api#token", binding)
    tokens.use_key(lambda: b"this deployment's key")
    try:
        ours = tokens.make_token("api#token", binding)
        seen: list[str] = []
        assert resolve_tokens({"a": foreign}, seen.append, binding) == {"a": foreign} and seen == []
        resolve_tokens({"a": ours}, seen.append, binding)
        assert seen == ["api#token"]
    finally:
        restore()
