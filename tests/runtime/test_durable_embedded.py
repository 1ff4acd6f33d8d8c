"""The embedded runtime keeps a run's state with its rows: a process killed with SIGKILL
leaves its runs to the next process on the host, which continues them from where they were
(a retry still waiting, a sub-chain still running) without running again what had
succeeded. And the run control API: retry of a failed run, pause and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import types
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli.cli_helpers import LEGION, install_extension, legion
from probe import PROBE, names
from waiting import wait_until

from legion.dsl.validate import load_chain
from legion.engine.chains import apply_items, load_chains
from legion.engine.conductor import ChainProgram
from legion.engine.data.store import Store
from legion.engine.registry import Registry
from legion.engine.runtime import MAX_CLAIMS, Engine
from legion.engine.sdk import Extension
from legion.sdk import Failure

DURABLE = """
chain: durable
input: {type: object, required: [log, flag]}
steps:
  first:
    run: durable.probe.mark
    with: {name: first, log: "{{ input.log }}"}
    next: [{do: flaky}]
  flaky:
    run: durable.probe.once
    with: {name: flaky, log: "{{ input.log }}", flag: "{{ input.flag }}"}
    retry: {count: 1, delay: 3s, jitter: false}
    next: [{publish: {flaky: "{{ result }}"}, do: sub}]
  sub:
    run: "chain:napper"
    with: {log: "{{ input.log }}"}
    next: [{publish: {napped: "{{ result.napped }}"}, do: last}]
  last:
    run: durable.probe.mark
    with: {name: last, log: "{{ input.log }}"}
output: {flaky: "{{ ctx.flaky }}", napped: "{{ ctx.napped }}", last: "{{ result }}"}
"""

NAPPER = """
chain: napper
input: {type: object, required: [log]}
steps:
  nap:
    run: durable.probe.nap
    with: {name: nap, log: "{{ input.log }}", seconds: 3}
output: {napped: "{{ result }}"}
"""

DOOMED = """
chain: doomed
input: {type: object, required: [log]}
steps:
  fatal:
    run: durable.probe.die
    with: {name: fatal, log: "{{ input.log }}"}
"""

# The first process: an embedded engine that starts the run, then lives until it is killed.
FIRST = """
import json, sys, threading
from legion.engine.data.store import Store
from legion.engine.registry import Registry
from legion.engine.runtime import MAX_CLAIMS, Engine
engine = Engine(Registry.discover(), Store(sys.argv[1]), workers=2).start()
print(engine.submit(sys.argv[2], json.loads(sys.argv[3])), flush=True)
threading.Event().wait()
"""


class Processes:
    """The subprocesses a test starts, killed (by their PIDs) if the test ends first."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp, self.env, self.started = tmp, env, []

    def start(self, name: str, args: list[str]) -> subprocess.Popen[str]:
        out = (self.tmp / f"{name}.out").open("w")
        err = (self.tmp / f"{name}.err").open("w")
        proc = subprocess.Popen(args, env=self.env, stdout=subprocess.PIPE if name == "first" else out, stderr=err, text=True)
        out.close()
        err.close()
        self.started.append((name, proc))
        return proc

    def alive(self, name: str, proc: subprocess.Popen[str]) -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited with {proc.returncode}:\n{(self.tmp / f'{name}.err').read_text()[-3000:]}")
        return True

    def kill(self, proc: subprocess.Popen[str]) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def close(self) -> None:
        for _, proc in self.started:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)


def embedded_home(tmp_path: Path, *chain_texts: str) -> tuple[str, Store, Processes]:
    """A Legion home with the probe extension and `chain_texts` applied: its database URL,
    store, and the test's processes (which run with that home)."""
    home, chains = tmp_path / "home", tmp_path / "chains"
    chains.mkdir()
    for i, text in enumerate(chain_texts):
        (chains / f"chain{i}.yaml").write_text(text)
    env = install_extension(tmp_path / "site", "durable", {"probe": PROBE})
    legion(home, "chain", "apply", str(chains), env=env)
    full_env = dict(os.environ, LEGION_HOME=str(home), **env)
    full_env.pop("LEGION_DATABASE_URL", None)
    url = f"sqlite:///{home / 'legion.db'}"
    return url, Store(url), Processes(tmp_path, full_env)


def test_a_run_continues_after_its_processes_are_killed(tmp_path: Path) -> None:
    log, flag = tmp_path / "calls.log", tmp_path / "flag"
    url, store, procs = embedded_home(tmp_path, DURABLE, NAPPER)

    def calls() -> list[str]:
        return names(log)

    def tasks(run_id: str) -> list[tuple[str, int, str]]:
        return [(t["step"], t["attempt"], t["status"]) for t in store.run_tasks(run_id)]

    try:
        # 1. The first process starts the run; it is killed while the retry of `flaky` waits.
        first = procs.start("first", [sys.executable, "-c", FIRST, url, "durable", json.dumps({"log": str(log), "flag": str(flag)})])
        assert first.stdout is not None
        run_id = first.stdout.readline().strip()
        assert run_id, (tmp_path / "first.err").read_text()

        def retry_waiting() -> bool:
            procs.alive("first", first)
            state = store.get_run(run_id).get("state") or {}
            return (("flaky", 1, "failed") in tasks(run_id)
                    and any(w[2] == "retry" for w in state.get("waits", [])))

        wait_until(retry_waiting, timeout=20, what="the retry of flaky to wait")
        procs.kill(first)
        assert calls() == ["first", "flaky"]

        # 2. A second process continues it: the retry is made when due, the sub-chain starts;
        # it is killed while the sub-chain's step sleeps.
        second = procs.start("second", [*LEGION, "start", "--no-apply", "--workers", "2"])

        def child_napping() -> dict[str, Any] | None:
            procs.alive("second", second)
            for child in store.list_runs(chain="napper"):
                # (its row says running before its function logs that it began: wait for both)
                if tasks(child["id"]) == [("nap", 1, "running")] and calls()[-1:] == ["nap"]:
                    return child
            return None

        child_id = wait_until(child_napping, timeout=30, what="the sub-chain's nap to run")["id"]
        procs.kill(second)
        assert calls() == ["first", "flaky", "flaky", "nap"]

        # 3. A third process carries both runs to their end.
        third = procs.start("third", [*LEGION, "start", "--no-apply", "--workers", "2"])
        ended = wait_until(lambda: procs.alive("third", third) and store.get_run(run_id)["status"] in ("succeeded", "failed", "canceled")
                           and store.get_run(run_id), timeout=30, what="the run to end")
        third.send_signal(signal.SIGINT)
        third.wait(timeout=30)
    finally:
        procs.close()

    assert (ended["status"], ended["error"]) == ("succeeded", None), ended
    assert ended["output"] == {"flaky": "flaky", "napped": "nap", "last": "last"}
    # What had succeeded before a kill never ran again; the step sleeping at the second kill
    # ran once more; the retry was made once.
    assert Counter(calls()) == {"first": 1, "flaky": 2, "nap": 2, "last": 1}
    assert tasks(run_id) == [("first", 1, "succeeded"), ("flaky", 1, "failed"), ("flaky", 2, "succeeded"),
                             ("sub", 1, "succeeded"), ("last", 1, "succeeded")]
    child = store.get_run(child_id)
    assert child["status"] == "succeeded" and child["parent_run_id"] == run_id
    assert tasks(child_id) == [("nap", 1, "succeeded")]
    assert [r["id"] for r in store.list_runs(chain="napper")] == [child_id]  # the sub-chain was started once


def test_a_step_that_kills_its_process_each_time_fails_after_max_claims(tmp_path: Path) -> None:
    """No crash loop: a step run in flight at each of MAX_CLAIMS deaths of its process fails
    with WorkerLost when the next process picks the run up."""
    log = tmp_path / "calls.log"
    url, store, procs = embedded_home(tmp_path, DOOMED)
    try:
        first = procs.start("first", [sys.executable, "-c", FIRST, url, "doomed", json.dumps({"log": str(log)})])
        assert first.stdout is not None
        run_id = first.stdout.readline().strip()
        assert run_id, (tmp_path / "first.err").read_text()
        assert first.wait(timeout=30) == -signal.SIGKILL
        deaths = 1
        while True:  # each next process takes the run up and dies of the step again, until one fails it
            proc = procs.start(f"next-{deaths}", [*LEGION, "start", "--no-apply", "--workers", "1"])
            wait_until(lambda p=proc: p.poll() is not None or store.get_run(run_id)["status"] == "failed",
                       timeout=120, what="the process to die or the run to fail")
            if proc.poll() is None:
                break
            assert proc.returncode == -signal.SIGKILL, (tmp_path / f"next-{deaths}.err").read_text()
            deaths += 1
            assert deaths <= MAX_CLAIMS + 1, "a crash loop"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        procs.close()
    ended = store.get_run(run_id)
    assert ended["error"]["type"] == "WorkerLost", ended["error"]
    # The first death may come before the first batch of rows is written (embedded rows are
    # written behind), so it may go uncounted; from the first recovery on, a begin is written
    # before the function runs, and every death counts.
    assert deaths in (MAX_CLAIMS, MAX_CLAIMS + 1)
    assert names(log) == ["fatal"] * deaths
    (task,) = store.run_tasks(run_id)
    assert (task["status"], task["claims"], task["error"]["type"]) == ("failed", MAX_CLAIMS, "WorkerLost")


# ------------------------------------------------------------------------------ in one process

REGISTRY = Registry.discover()


class Gate:
    """A step's behaviour a test changes between attempts, and its calls."""

    def __init__(self) -> None:
        self.broken = True
        self.calls: list[str] = []
        self.release = threading.Event()


@pytest.fixture()
def gate() -> Gate:
    return Gate()


@pytest.fixture()
def engine(tmp_path: Path, gate: Gate) -> Iterator[Engine]:
    def note(name: str) -> str:
        """Note the call.

        Args:
            name: what to note
        """
        gate.calls.append(name)
        return name

    def check(name: str) -> str:
        """Fail while the gate is broken.

        Args:
            name: what to note
        """
        gate.calls.append(name)
        if gate.broken:
            raise Failure("still broken")
        return name

    def hold(name: str) -> str:
        """Wait for the gate to open.

        Args:
            name: what to note
        """
        gate.calls.append(name)
        assert gate.release.wait(20), "the test never released the step"
        return name

    module = types.ModuleType("gate.runners.gate")
    for fn in (note, check, hold):
        fn.__module__ = module.__name__
        setattr(module, fn.__name__, fn)
    registry = Registry([*REGISTRY.extensions.values(), Extension("gate", runners=[module])])
    eng = Engine(registry, Store(f"sqlite:///{tmp_path / 'legion.db'}"), workers=2).start()
    yield eng
    gate.release.set()
    eng.stop()


def _program(engine: Engine, text: str) -> ChainProgram:
    chain, _ = load_chain("test.yaml", text=text, functions=engine.registry.catalog())
    return ChainProgram(chain)


def _apply(engine: Engine, folder: Path, text: str) -> str:
    """Apply a chain (a run of it can be taken up again from the store once it left the
    engine) and return its name."""
    folder.mkdir(exist_ok=True)
    (folder / "chain.yaml").write_text(text)
    files, _ = load_chains([folder], engine.registry)
    engine.store.apply_chains(apply_items(files))
    return files[0].chain.chain


def test_engine_retry_continues_a_failed_run_from_its_failed_step(tmp_path: Path, engine: Engine, gate: Gate) -> None:
    run_id = engine.submit(_apply(engine, tmp_path / "chains", """
chain: mend
steps:
  fetch:
    run: gate.gate.note
    with: {name: fetch}
    next: [{publish: {got: "{{ result }}"}, do: check}]
  check:
    run: gate.gate.check
    with: {name: "check {{ ctx.got }}"}
output: {got: "{{ ctx.got }}", checked: "{{ result }}"}
"""), {})
    failed = engine.wait(run_id, 10)
    # once it has left the engine, the retry takes it up again from its stored state
    wait_until(lambda: run_id not in engine.runs, what="the failed run to leave the engine")
    assert failed["status"] == "failed"
    assert failed["error"] == {"type": "Failure", "message": "still broken", "step": "check"}
    assert gate.calls == ["fetch", "check fetch"]

    gate.broken = False
    assert engine.retry(run_id)
    done = engine.wait(run_id, 10)
    assert (done["status"], done["error"]) == ("succeeded", None)
    assert done["output"] == {"got": "fetch", "checked": "check fetch"}
    assert gate.calls == ["fetch", "check fetch", "check fetch"]  # fetch did not run again
    assert engine.recorder.flush(timeout=10)
    tasks = engine.store.run_tasks(run_id)
    assert [(t["step"], t["status"]) for t in tasks] == [("fetch", "succeeded"), ("check", "failed"), ("check", "succeeded")]
    assert not engine.retry(run_id)  # succeeded: nothing to run again


def test_engine_pause_holds_queued_steps_and_resume_releases_them(engine: Engine, gate: Gate) -> None:
    run_id = engine.start_program(_program(engine, """
chain: hold
steps:
  slow:
    run: gate.gate.hold
    with: {name: slow}
    next: [{do: after}]
  after:
    run: gate.gate.note
    with: {name: after}
output: {last: "{{ result }}"}
"""), {})
    active = engine.runs[run_id]
    wait_until(lambda: gate.calls == ["slow"], what="the first step to run")
    assert engine.pause(run_id)
    assert active.state.status == "paused"
    gate.release.set()  # the running step finishes while the run is paused

    def after_held() -> bool:
        with active.lock:
            return any(sr.step == "after" and sr.status == "held" for sr in active.state.active.values())

    wait_until(after_held, what="the next step to be held")
    assert engine.recorder.flush(timeout=10)
    row = engine.store.get_run(run_id)
    assert row["status"] == "paused"
    assert [(t["step"], t["status"]) for t in engine.store.run_tasks(run_id)] == [("slow", "succeeded"), ("after", "queued")]
    assert gate.calls == ["slow"]

    assert engine.resume(run_id)
    done = engine.wait(run_id, 10)
    assert (done["status"], done["output"]) == ("succeeded", {"last": "after"})
    assert gate.calls == ["slow", "after"]
    assert engine.recorder.flush(timeout=10)
    assert [(t["step"], t["status"]) for t in engine.store.run_tasks(run_id)] == [("slow", "succeeded"), ("after", "succeeded")]


def test_engine_retry_of_a_run_canceled_while_paused_runs_the_held_step_and_ends(tmp_path: Path, engine: Engine, gate: Gate) -> None:
    run_id = engine.submit(_apply(engine, tmp_path / "chains", """
chain: held-then-canceled
steps:
  slow:
    run: gate.gate.hold
    with: {name: slow}
    next: [{do: after}]
  after:
    run: gate.gate.note
    with: {name: after}
output: {last: "{{ result }}"}
"""), {})
    active = engine.runs[run_id]
    wait_until(lambda: gate.calls == ["slow"], what="the first step to run")
    assert engine.pause(run_id)
    gate.release.set()

    def after_held() -> bool:
        with active.lock:
            return any(sr.step == "after" and sr.status == "held" for sr in active.state.active.values())

    wait_until(after_held, what="the next step to be held")
    assert engine.cancel(run_id)
    assert engine.wait(run_id, 10)["status"] == "canceled"
    wait_until(lambda: run_id not in engine.runs, what="the canceled run to leave the engine")

    assert engine.retry(run_id)
    done = engine.wait(run_id, 10)
    assert (done["status"], done["output"]) == ("succeeded", {"last": "after"})
    assert gate.calls == ["slow", "after"]
    assert engine.recorder.flush(timeout=10)
    # the held step run was recorded canceled and never started; the retry's ran
    assert [(t["step"], t["status"], t["started_at"] is not None) for t in engine.store.run_tasks(run_id)] == [
        ("slow", "succeeded", True), ("after", "succeeded", True), ("after", "canceled", False)]
