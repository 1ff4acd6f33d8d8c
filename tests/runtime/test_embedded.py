"""The embedded runtime with real threads, real time and SQLite: the same semantics as the
rehearsals, plus what only a runtime has (timeouts in wall time, cancel, triggers, actors)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from conformance_order import output_matches
from waiting import wait_until

from legion.dsl.compile import compile_chain
from legion.dsl.loader import load_file
from legion.dsl.model import Rehearsal
from legion.dsl.validate import load_chain
from legion.engine.chains import apply_items, load_chains, schedule_rows
from legion.engine.conductor import ChainProgram
from legion.engine.data.store import Store
from legion.engine.registry import Registry
from legion.engine.runtime import Engine
from legion.engine.scheduler import Scheduler

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE = Path(os.environ["LEGION_CONFORMANCE"])
REGISTRY = Registry.discover()


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'legion.db'}")


@pytest.fixture()
def engine(store: Store) -> Iterator[Engine]:
    eng = Engine(REGISTRY, store, workers=4).start()
    yield eng
    eng.stop()


def program(text: str) -> ChainProgram:
    chain, _ = load_chain("test.yaml", text=text, functions=REGISTRY.catalog())
    return ChainProgram(chain)


def run(engine: Engine, text: str, input: dict[str, Any] | None = None, timeout: float = 20) -> dict[str, Any]:
    run_id = engine.start_program(program(text), input or {})
    return engine.wait(run_id, timeout)


def unmocked_rehearsals() -> list[Path]:
    found = []
    for path in sorted((CONFORMANCE / "rehearsals").glob("*.yaml")):
        data = load_file(path).data
        if not data.get("mocks"):
            found.append(path)
    return found


@pytest.mark.parametrize("path", unmocked_rehearsals(), ids=lambda p: p.stem)
def test_conformance_chains_in_the_embedded_runtime(path: Path, store: Store, engine: Engine) -> None:
    """With four concurrent workers the order may differ, never the outcome or the step runs."""
    rehearsal = Rehearsal.model_validate(load_file(path).data)
    files, _ = load_chains([CONFORMANCE / "chains"], REGISTRY)
    store.apply_chains(apply_items(files))
    chain_name = load_file(path.parent / rehearsal.chain).data["chain"]
    run_id = engine.submit(chain_name, dict(rehearsal.input))
    result = engine.wait(run_id, 20)
    tasks = store.run_tasks(run_id)
    assert result["status"] == rehearsal.expect.status
    if "output" in rehearsal.expect.model_fields_set:
        assert output_matches(path.stem, result["output"], rehearsal.expect.output), result["output"]
    assert Counter(t["step"] for t in tasks) == Counter(rehearsal.expect.sequence)
    assert all(t["status"] in ("succeeded", "failed") and t["finished_at"] is not None for t in tasks)


def test_retries_wait_outside_workers_and_are_recorded(engine: Engine, store: Store) -> None:
    started = time.monotonic()
    result = run(engine, """
chain: flaky
steps:
  call:
    run: core.util.fail
    with: {message: "attempt {{ attempt }}"}
    retry: {count: 2, delay: 100ms, backoff: 2.0, jitter: false}
""")
    elapsed = time.monotonic() - started
    assert result["status"] == "failed"
    assert result["error"] == {"type": "Failure", "message": "attempt 3", "step": "call"}
    tasks = store.run_tasks(result["id"])
    assert [(t["attempt"], t["status"]) for t in tasks] == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert elapsed >= 0.3  # 100 ms + 200 ms of waits: never early


def test_timeout_fails_the_attempt_in_wall_time(engine: Engine, store: Store) -> None:
    started = time.monotonic()
    result = run(engine, """
chain: slow
steps:
  nap:
    run: core.util.sleep
    with: {seconds: 3}
    timeout: 200ms
""")
    assert time.monotonic() - started < 2.5
    assert result["status"] == "failed" and result["error"]["type"] == "Timeout"
    assert store.run_tasks(result["id"])[0]["status"] == "timed_out"


def test_delay_and_for_each_concurrency(engine: Engine, store: Store) -> None:
    started = time.monotonic()
    result = run(engine, """
chain: batch
steps:
  wait:
    run: core.util.noop
    delay: 300ms
    next: [{do: each}]
  each:
    run: core.util.echo
    for_each: "{{ range(20) | list }}"
    concurrency: 3
    with: {message: "{{ item * 2 }}"}
output:
  doubled: "{{ result }}"
""")
    assert time.monotonic() - started >= 0.3
    assert result["status"] == "succeeded"
    assert result["output"] == {"doubled": [i * 2 for i in range(20)]}
    assert len(store.run_tasks(result["id"])) == 21


def test_cancel_stops_a_run(engine: Engine, store: Store) -> None:
    nap_started, nap_finished = threading.Event(), threading.Event()

    def listen(event: dict[str, Any]) -> None:
        if event.get("step") == "nap" and event["event"] == "step.started":
            nap_started.set()
        if event.get("step") == "nap" and event["event"] == "step.finished":
            nap_finished.set()

    run_id = engine.start_program(program("""
chain: long
steps:
  nap: {run: core.util.sleep, with: {seconds: 1}, next: [{do: after}]}
  after: {run: core.util.noop}
"""), {}, listener=listen)
    active = engine.runs[run_id]
    assert nap_started.wait(10), "the step never started"
    assert engine.cancel(run_id)  # while the sleep runs
    result = engine.wait(run_id, 5)
    assert result["status"] == "canceled"
    # The running sleep finishes; its result changes nothing. The engine takes the result
    # under the run's lock, so once the lock is free the result has been carried out.
    assert nap_finished.wait(10), "the running step never finished"
    with active.lock:
        pass
    assert engine.recorder.flush(timeout=10)
    assert store.get_run(run_id)["status"] == "canceled"
    assert [t["step"] for t in store.run_tasks(run_id)] == ["nap"]


def test_sub_chains_and_events(tmp_path: Path, engine: Engine, store: Store) -> None:
    (tmp_path / "greeter.yaml").write_text("""
chain: greeter
input: {type: object, required: [name]}
steps:
  greet: {run: core.util.echo, with: {message: "Hello, {{ input.name }}"}}
output: {greeting: "{{ result }}"}
""")
    (tmp_path / "caller.yaml").write_text("""
chain: caller
steps:
  call: {run: "chain:greeter", with: {name: "{{ input.who }}"}, timeout: 5s}
output: {greeting: "{{ result.greeting }}"}
""")
    (tmp_path / "listener.yaml").write_text("""
chain: listener
input: {type: object, required: [a]}
on: {events: [core.util.set]}
steps:
  seen: {run: core.util.echo, with: {message: "got {{ input.a }}"}}
output: {seen: "{{ result }}"}
""")
    files, _ = load_chains([tmp_path], REGISTRY)
    store.apply_chains(apply_items(files))
    engine.refresh_events()
    result = engine.wait(engine.submit("caller", {"who": "Ada"}), 10)
    assert result["status"] == "succeeded" and result["output"] == {"greeting": "Hello, Ada"}
    children = [r for r in store.list_runs(chain="greeter")]
    assert len(children) == 1 and children[0]["parent_run_id"] == result["id"] and children[0]["trigger"] == "sub-chain"

    engine.wait(engine.run_task("core.util.set", {"a": 1}), 5)
    engine.wait(engine.run_task("core.util.set", {"b": 2}), 5)  # does not fit the input: dropped
    wait_until(lambda: store.list_runs(chain="listener", status="succeeded"), what="a finished run of listener")
    listened = store.list_runs(chain="listener")
    assert [(r["trigger"], r["output"]) for r in listened] == [("event", {"seen": "got 1"})]


def test_scheduler_fires_due_entries_once_and_skips_overlap(tmp_path: Path, engine: Engine, store: Store) -> None:
    (tmp_path / "tick.yaml").write_text("""
chain: tick
on:
  schedule:
    - every: 1h
      input: {n: 1}
steps:
  nap: {run: core.util.sleep, with: {seconds: 2}}
""")
    files, _ = load_chains([tmp_path], REGISTRY)
    store.apply_chains(apply_items(files))
    applied_at = datetime.now(UTC)
    store.upsert_schedules("tick", schedule_rows(files[0].chain, applied_at))
    scheduler = Scheduler(engine, store)
    assert scheduler.run_due(applied_at + timedelta(minutes=30)) == []  # `every` counts from the apply
    much_later = applied_at + timedelta(hours=5)  # five slots missed: one run, not five
    first = scheduler.run_due(much_later)
    assert len(first) == 1
    entry = store.list_schedules()[0]
    assert entry["next_fire_at"] == much_later + timedelta(hours=1)
    # Another scheduler of the deployment (its engine holds no run) skips the slot as well:
    # the first run still sleeps, and the store says so.
    class Elsewhere:
        runs: dict[str, Any] = {}
        shared = False

        def submit(self, *args: Any, **kwargs: Any) -> str:
            raise AssertionError("the slot overlaps a running run: nothing may start")

    assert Scheduler(Elsewhere(), store).run_due(much_later + timedelta(hours=1)) == []
    engine.wait(first[0], 10)
    assert store.get_run(first[0])["input"] == {"n": 1}
    wait_until(lambda: first[0] not in engine.active_runs(), what="the first run to leave the engine")
    assert len(scheduler.run_due(much_later + timedelta(hours=2))) == 1


def test_step_limit_in_the_runtime(engine: Engine) -> None:
    result = run(engine, """
chain: spin
max_steps: 50
steps:
  a: {run: core.util.noop, next: [{do: a}]}
start: a
""")
    assert result["status"] == "failed" and result["error"]["type"] == "StepLimitExceeded"


def test_legion_start_applies_schedules_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    chains = tmp_path / "chains"
    chains.mkdir()
    (chains / "beat.yaml").write_text("""
chain: beat
on:
  schedule:
    - every: 1s
steps:
  tick: {run: core.util.noop}
""")
    env = dict(os.environ, LEGION_HOME=str(tmp_path / "home"))
    env.pop("LEGION_DATABASE_URL", None)
    stderr = tmp_path / "stderr.txt"
    started = time.monotonic()
    with stderr.open("w") as errors:
        proc = subprocess.Popen([sys.executable, "-m", "legion.engine.cli.main", "start", "--chains", str(chains)],
                                env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
    lines: list[str] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    def running() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"legion start exited early with {proc.returncode}:\n{stderr.read_text()}")
        return True

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    try:
        # Ctrl-C once it is up (the handler is set before this line is printed) and two runs
        # have fired: the scheduler ticks every second, so that takes about two seconds.
        wait_until(lambda: running() and "Ctrl-C stops it\n" in lines, timeout=60, what="legion start to be up")
        store = Store(f"sqlite:///{tmp_path / 'home' / 'legion.db'}")
        wait_until(lambda: running() and len(store.list_runs(chain="beat", status="succeeded")) >= 2, timeout=30,
                   what="two scheduled runs of beat")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()  # the process this test started, by its PID
            proc.wait()
            raise
        reader.join(timeout=10)
    elapsed = time.monotonic() - started
    out, err = "".join(lines), stderr.read_text()
    assert proc.returncode == 0, err
    assert "created   beat" in out and "Ctrl-C stops it" in out
    runs = store.list_runs(chain="beat")
    assert len(runs) >= 2 and all(r["trigger"] == "schedule" and r["status"] == "succeeded" for r in runs), runs
    # `every: 1s` fires at most once a second: a tick starts at most one run, and the next
    # tick comes a second after the previous tick's work is done (0.1 s of leeway for clocks).
    created = sorted(r["created_at"] for r in runs)
    gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(created)]
    assert min(gaps) >= 0.9, gaps
    assert len(runs) <= elapsed, (len(runs), elapsed)
    assert [n["status"] for n in store.list_nodes()] == ["stopped"]


def test_compile_is_stable_for_the_same_chain() -> None:
    text = (ROOT / "chains" / "examples" / "hello.yaml").read_text()
    a, _ = load_chain("a.yaml", text=text, functions=REGISTRY.catalog())
    b, _ = load_chain("b.yaml", text="# a comment\n" + text, functions=REGISTRY.catalog())
    assert compile_chain(a).content_hash == compile_chain(b).content_hash


def test_runs_of_a_dead_process_are_marked_interrupted(tmp_path: Path) -> None:
    """A process that dies mid-run leaves the run `running`; the next engine on the host fails it."""
    db = tmp_path / "legion.db"
    script = f"""
import os
from legion.dsl.validate import load_chain
from legion.engine.conductor import ChainProgram
from legion.engine.data.store import Store
from legion.engine.registry import Registry
from legion.engine.runtime import Engine
registry = Registry.discover()
chain, _ = load_chain("x", text="chain: doomed\\nsteps:\\n  nap: {{run: core.util.sleep, with: {{seconds: 30}}}}\\n", functions=registry.catalog())
engine = Engine(registry, Store("sqlite:///{db}"), workers=1).start()
run_id = engine.start_program(ChainProgram(chain), {{}})
import time; time.sleep(0.5)
engine.recorder.flush()
print(run_id, flush=True)
os._exit(0)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    run_id = done.stdout.strip()
    store = Store(f"sqlite:///{db}")
    assert store.get_run(run_id)["status"] == "running", done.stderr
    engine = Engine(REGISTRY, store, workers=1).start()
    engine.stop()
    run = store.get_run(run_id)
    assert run["status"] == "failed" and run["error"]["type"] == "Interrupted"
    assert [t["status"] for t in store.run_tasks(run_id)] == ["canceled"]


def test_failure_paths_leave_no_task_unfinished(engine: Engine, store: Store) -> None:
    """A `with` that does not render, the step run past max_steps, and a missing function."""
    bad_with = run(engine, "chain: w\nsteps:\n  a: {run: core.util.echo, with: {message: '{{ ctx.missing.x }}'}}\n")
    assert bad_with["error"]["type"] == "ExpressionError"
    assert [(t["status"], t["error"]["type"]) for t in store.run_tasks(bad_with["id"])] == [("failed", "ExpressionError")]

    limited = run(engine, "chain: l\nmax_steps: 3\nstart: a\nsteps:\n  a: {run: core.util.noop, next: [{do: a}]}\n")
    assert limited["error"]["type"] == "StepLimitExceeded"
    assert [t["status"] for t in store.run_tasks(limited["id"])] == ["succeeded"] * 3 + ["skipped"]

    from legion.dsl.model import Chain

    ghost = ChainProgram(Chain.model_validate({"chain": "ghost", "steps": {"a": {"run": "nowhere.to.be"}}}))
    result = engine.wait(engine.start_program(ghost, {}), 5)
    assert result["status"] == "failed" and "not installed" in result["error"]["message"]


def test_a_function_raising_base_exceptions_does_not_kill_workers(tmp_path: Path) -> None:
    import types

    from legion.engine.sdk import Extension

    def interrupt() -> None:
        raise KeyboardInterrupt

    def leave() -> None:
        raise SystemExit(3)

    module = types.ModuleType("rude.runners.rude")
    for fn in (interrupt, leave):
        fn.__module__ = module.__name__
        setattr(module, fn.__name__, fn)
    sys.modules[module.__name__] = module
    registry = Registry([Extension("rude", runners=[module])])
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with Engine(registry, store, workers=1) as eng:
        for name, message in (("interrupt", "KeyboardInterrupt"), ("leave", "3")):
            result = eng.wait(eng.run_task(f"rude.rude.{name}", {}), 5)
            assert result["status"] == "failed" and result["error"]["message"] == message
        assert eng.wait(eng.run_task("rude.rude.leave", {}), 5)["status"] == "failed"  # the one worker lives on


def test_cancel_reaches_sub_chains_and_records_running_steps(tmp_path: Path, engine: Engine, store: Store) -> None:
    (tmp_path / "child.yaml").write_text("chain: child\nsteps:\n  nap: {run: core.util.sleep, with: {seconds: 1}, next: [{do: more}]}\n"
                                         "  more: {run: core.util.sleep, with: {seconds: 5}}\n")
    (tmp_path / "parent.yaml").write_text("chain: parent\nsteps:\n  sub: {run: 'chain:child'}\n")
    files, _ = load_chains([tmp_path], REGISTRY)
    store.apply_chains(apply_items(files))
    parent = engine.submit("parent", {})

    def child_nap_running() -> dict[str, Any] | None:
        for child in store.list_runs(chain="child"):
            if [(t["step"], t["status"]) for t in store.run_tasks(child["id"])] == [("nap", "running")]:
                return child
        return None

    child_id = wait_until(child_nap_running, what="the sub-chain's first step to run")["id"]
    engine.cancel(parent)  # during the child's one-second nap
    assert engine.wait(parent, 5)["status"] == "canceled"

    def settled() -> bool:
        child = store.get_run(child_id)
        tasks = store.run_tasks(child_id)
        return child["status"] == "canceled" and all(t["finished_at"] for t in tasks) and bool(store.run_tasks(parent)[0]["finished_at"])

    wait_until(settled, what="the canceled child and parent to be recorded")
    child, tasks = store.get_run(child_id), store.run_tasks(child_id)
    assert child["status"] == "canceled"
    assert [(t["step"], t["status"]) for t in tasks] == [("nap", "succeeded")]  # finished after the cancel, recorded
    sub = store.run_tasks(parent)[0]
    assert sub["status"] == "failed" and sub["error"]["type"] == "Canceled"


def test_chains_applied_while_running_are_heard_on_events(tmp_path: Path, store: Store) -> None:
    import legion.engine.runtime as runtime_mod

    (tmp_path / "listen.yaml").write_text("chain: listen\non: {events: [core.util.echo]}\nsteps:\n  a: {run: core.util.noop}\n")
    old = runtime_mod.EVENTS_POLL
    runtime_mod.EVENTS_POLL = 0.1
    try:
        with Engine(REGISTRY, store, workers=1) as eng:
            assert "core.util.echo" not in eng.event_chains
            files, _ = load_chains([tmp_path], REGISTRY)
            store.apply_chains(apply_items(files))
            # No refresh_events() here: the engine reads the applied triggers on its own.
            wait_until(lambda: "listen" in eng.event_chains.get("core.util.echo", ()), what="the engine to hear of chain listen")
            eng.wait(eng.run_task("core.util.echo", {"message": "hi"}), 5)
            wait_until(lambda: store.list_runs(chain="listen"), what="a run of listen")
    finally:
        runtime_mod.EVENTS_POLL = old
    assert [r["trigger"] for r in store.list_runs(chain="listen")] == ["event"]
