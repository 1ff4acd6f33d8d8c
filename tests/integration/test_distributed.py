"""A shared deployment at work: `legion start` processes on RabbitMQ with PostgreSQL or MariaDB.

Each test builds its own deployment (a vhost and a database of its own, see `deployment.py`)
and drives it as an operator would, through `legion` commands, reading the database to check
what happened: the conformance rehearsals run by two worker processes; a worker killed in the
middle of a step; a step that kills every worker that takes it; three schedulers on one
schedule; and pause, resume, cancel and retry of a run.

The deployment's step lease is short (LEGION_STEP_LEASE, see `deployment.py`), so a lost
worker's step run is queued again within seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pika
import pytest
import yaml
from conformance_order import output_matches
from integration.deployment import BACKENDS, LEGION, STEP_LEASE, Deployment
from probe import calls, names
from services import redis_url
from waiting import wait_until

from legion.engine.registry import Registry
from legion.engine.runstate import RunState
from legion.engine.runtime import MAX_CLAIMS, Engine
from legion.engine.transport.amqp import AmqpTransport

pytestmark = pytest.mark.integration

CONFORMANCE = Path(os.environ["LEGION_CONFORMANCE"])
LONGEST_SLEEP = 3.0  # seconds: rehearsals whose steps sleep longer (for real, here) are left out
# How long a lost worker's step run waits before it is queued again, with room for a loaded host.
# (The sweep looks every half lease.)
REQUEUE_WITHIN = STEP_LEASE * 2 + 30


# ----------------------------------------------------------------------------- the deployment


@pytest.fixture
def deployment(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Deployment]:
    backend = getattr(request, "param", "postgresql")
    d = Deployment(tmp_path, backend)
    try:
        yield d
    finally:
        d.close()


def write_chain(folder: Path, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    name = yaml.safe_load(text)["chain"]
    (folder / f"{name}.yaml").write_text(text)
    return folder


def held(d: Deployment, run_id: str, step: str) -> bool:
    """Whether a step run of `step` waits for the run to resume."""
    data = d.run(run_id).get("state")
    if data is None:
        return False
    return any(sr.step == step and sr.status == "held" for sr in RunState.from_dict(data).active.values())


# ---------------------------------------------------------------- 1. the conformance rehearsals


def _chain_file(rehearsal: Path, data: dict[str, Any]) -> Path:
    return (rehearsal.parent / data["chain"]).resolve()


def _runs_for_real(chain: dict[str, Any]) -> bool:
    """Every step is a core.util function (or a sub-chain), and no sleep is long."""
    for step in (chain.get("steps") or {}).values():
        run = str(step.get("run", ""))
        if not (run.startswith("core.util.") or run.startswith("chain:")):
            return False
        if run == "core.util.sleep" and float((step.get("with") or {}).get("seconds", 0)) > LONGEST_SLEEP:
            return False
    return True


def _fans_out(chain: dict[str, Any]) -> bool:
    """Whether more than one step run may be in flight at once (then workers may start them
    in another order than the rehearsal's deterministic one)."""
    steps = chain.get("steps") or {}
    if sum(1 for s in steps.values() if not any(s2 for s2 in steps.values() if _targets(s2) & {_name(steps, s)})) > 1:
        return True
    for step in steps.values():
        if step.get("for_each") is not None:
            return True
        for edge in step.get("next") or []:
            if isinstance(edge.get("do"), list) and len([t for t in edge["do"] if t != "fail"]) > 1:
                return True
    return False


def _name(steps: dict[str, Any], step: dict[str, Any]) -> str:
    return next(k for k, v in steps.items() if v is step)


def _targets(step: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for edge in step.get("next") or []:
        do = edge.get("do")
        found |= set(do) if isinstance(do, list) else {do} if isinstance(do, str) else set()
    return found


def _rehearsals() -> list[Any]:
    params = []
    for path in sorted((CONFORMANCE / "rehearsals").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict) or "rehearsal" not in data or data.get("mocks"):
            continue
        chain = yaml.safe_load(_chain_file(path, data).read_text())
        if _runs_for_real(chain):
            params.append(pytest.param(path, id=data["rehearsal"]))
    return params


REHEARSALS = _rehearsals()

# Outputs that rest on the rehearsal's deterministic order (spec §5): with two workers, which
# branch ends last, or which two arrivals a `join: 2` sees first, is up to them. Each is
# checked against every outcome an order of the workers could give.




def test_the_rehearsals_that_run_for_real_are_found() -> None:
    # 17 of the 25 use no mock; an empty parametrization would pass vacuously.
    assert len(REHEARSALS) >= 15, [p.id for p in REHEARSALS]


@pytest.mark.parametrize("deployment", BACKENDS, indirect=True)
def test_conformance_rehearsals_on_two_worker_processes(deployment: Deployment) -> None:
    d = deployment
    d.apply(CONFORMANCE / "chains")
    d.start(workers=2)
    d.start(workers=2)
    d.wait_up(2)
    cases = [(p.values[0], yaml.safe_load(p.values[0].read_text())) for p in REHEARSALS]
    # All started at once from one client (as `legion chain run` does: an engine that only
    # starts runs and waits), so the two workers carry them side by side.
    assert d.store is not None
    client = Engine(Registry.discover(), d.store, transport=AmqpTransport(d.amqp_url, name="legion-test-client"), consume=False)
    with client:
        run_ids = [client.submit(yaml.safe_load(_chain_file(path, data).read_text())["chain"], data.get("input") or {})
                   for path, data in cases]
        for run_id in run_ids:
            client.wait(run_id, timeout=120)
    results = []
    for run_id in run_ids:
        tasks = d.tasks(run_id)
        results.append(dict(d.run(run_id), tasks=tasks, trace=[t["step"] for t in tasks if t.get("started_at")]))

    failures = []
    for (path, data), got in zip(cases, results, strict=True):
        name, expect = data["rehearsal"], data["expect"]
        chain = yaml.safe_load(_chain_file(path, data).read_text())
        problems = []
        if got["status"] != expect["status"]:
            problems.append(f"status {got['status']} ({got.get('error')}), expected {expect['status']}")
        if Counter(got["trace"]) != Counter(expect["sequence"]):
            problems.append(f"started steps {sorted(got['trace'])}, expected {sorted(expect['sequence'])}")
        elif not _fans_out(chain) and got["trace"] != expect["sequence"]:
            problems.append(f"sequence {got['trace']}, expected {expect['sequence']} (one step at a time: the order is pinned)")
        if "output" in expect:
            if not output_matches(name, got["output"], expect["output"]):
                problems.append(f"output {got['output']!r}, expected {expect['output']!r}")
        if expect.get("error") is not None:
            error = got.get("error") or {}
            if any(error.get(k) != v for k, v in expect["error"].items()):
                problems.append(f"error {error!r}, expected {expect['error']!r} (subset)")
        # Every task row has ended, each started step run exactly once at a time.
        unfinished = [t["step"] for t in got["tasks"] if t["status"] in ("queued", "running")]
        if unfinished:
            problems.append(f"task rows left unfinished: {unfinished}")
        if problems:
            failures.append(f"{name}: " + "; ".join(problems))
    assert not failures, "\n".join(failures) + "\n" + d.logs()
    # Both worker processes took part.
    nodes = {t["node"] for got in results for t in got["tasks"] if t.get("started_at")}
    assert len(nodes) == 2, nodes


# ------------------------------------------------------------------- 2. a worker killed mid-step

PROBE_CHAINS = {
    "relay": """
chain: relay
input: {type: object, required: [log]}
steps:
  first:
    run: probe.probe.mark
    with: {name: first, log: "{{ input.log }}"}
    next: [{do: slow}]
  slow:
    run: probe.probe.nap
    with: {name: slow, log: "{{ input.log }}", seconds: 6}
    next: [{publish: {slept: "{{ result }}"}, do: last}]
  last:
    run: probe.probe.mark
    with: {name: last, log: "{{ input.log }}"}
output: {slept: "{{ ctx.slept }}", last: "{{ result }}"}
""",
    "deadly": """
chain: deadly
input: {type: object, required: [log, flag]}
steps:
  first:
    run: probe.probe.mark
    with: {name: first, log: "{{ input.log }}"}
    next: [{do: deadly}]
  deadly:
    run: probe.probe.poison
    with: {name: deadly, log: "{{ input.log }}", flag: "{{ input.flag }}"}
    next: [{do: last}]
  last:
    run: probe.probe.mark
    with: {name: last, log: "{{ input.log }}"}
output: {last: "{{ result }}"}
""",
    "gated": """
chain: gated
input: {type: object, required: [log, gate]}
steps:
  slow:
    run: probe.probe.hold
    with: {name: slow, log: "{{ input.log }}", gate: "{{ input.gate }}"}
    next: [{do: after}]
  after:
    run: probe.probe.mark
    with: {name: after, log: "{{ input.log }}"}
output: {last: "{{ result }}"}
""",
    "linger": """
chain: linger
input: {type: object, required: [log]}
steps:
  long:
    run: probe.probe.linger
    with: {name: long, log: "{{ input.log }}"}
""",
    "mend": """
chain: mend
input: {type: object, required: [log, flag]}
steps:
  fetch:
    run: probe.probe.mark
    with: {name: fetch, log: "{{ input.log }}"}
    next: [{publish: {got: "{{ result }}"}, do: check}]
  check:
    run: probe.probe.broken
    with: {name: check, log: "{{ input.log }}", flag: "{{ input.flag }}"}
output: {got: "{{ ctx.got }}", checked: "{{ result }}"}
""",
}


def apply_probe_chains(d: Deployment, *names_: str) -> None:
    folder = d.tmp / "chains"
    for name in names_:
        write_chain(folder, PROBE_CHAINS[name])
    d.apply(folder)


def test_a_step_whose_worker_is_killed_runs_again_on_another_worker(deployment: Deployment) -> None:
    d = deployment
    apply_probe_chains(d, "relay")
    workers = [d.start(workers=2), d.start(workers=2)]
    d.wait_up(2)
    log = d.tmp / "calls.log"
    run_id = d.submit("relay", {"log": str(log)})

    napping = wait_for(lambda: next((pid for name, pid in calls(log) if name == "slow"), None), 30, "slow to start", d)
    victim = next(p for p in workers if p.pid == napping)
    survivor = next(p for p in workers if p is not victim)
    d.kill(victim)
    killed_at = time.monotonic()

    ended = d.wait_ended(run_id, timeout=REQUEUE_WITHIN + 30)
    assert survivor.poll() is None, d.logs()
    assert (ended["status"], ended["error"], ended["output"]) == ("succeeded", None, {"slept": "slow", "last": "last"}), d.logs()
    # The step ran again, on the other worker, once its lease had expired; nothing else twice.
    assert Counter(names(log)) == {"first": 1, "slow": 2, "last": 1}, calls(log)
    slow_pids = [pid for name, pid in calls(log) if name == "slow"]
    assert slow_pids == [victim.pid, survivor.pid]
    assert time.monotonic() - killed_at >= STEP_LEASE - 2  # not before the lease could have expired
    tasks = d.tasks(run_id)
    assert [(t["step"], t["status"]) for t in tasks] == [("first", "succeeded"), ("slow", "succeeded"), ("last", "succeeded")]
    slow = tasks[1]
    assert slow["claims"] == 2 and slow["node"].endswith(f":{survivor.pid}"), slow


def wait_for(condition: Any, timeout: float, what: str, d: Deployment) -> Any:
    """`wait_until`, failing with the deployment's logs."""
    try:
        return wait_until(condition, timeout, interval=0.05, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{d.logs()}") from None


# -------------------------------------------------------------- 3. a step that kills its workers


def test_a_step_that_kills_every_worker_fails_after_max_claims_and_is_replayed_from_the_dlq(deployment: Deployment) -> None:
    d = deployment
    apply_probe_chains(d, "deadly")
    log, flag = d.tmp / "calls.log", d.tmp / "poison"
    flag.touch()
    live = [d.start(workers=1), d.start(workers=1)]
    d.wait_up(2)
    run_id = d.submit("deadly", {"log": str(log), "flag": str(flag)})

    # Each worker the step kills is replaced, as a supervisor would; the step run is taken
    # MAX_CLAIMS times, then it fails WorkerLost (the next take) and the run fails.
    restarts = 0
    deadline = time.monotonic() + MAX_CLAIMS * REQUEUE_WITHIN + 30
    while d.run(run_id)["status"] not in ("succeeded", "failed", "canceled"):
        for i, proc in enumerate(live):
            if proc.poll() is not None:
                assert proc.returncode == -signal.SIGKILL, d.logs()
                restarts += 1
                assert restarts <= MAX_CLAIMS + 1, f"more workers died than the step was taken\n{d.logs()}"
                live[i] = d.start(workers=1)
        assert time.monotonic() < deadline, f"the run did not end\n{d.logs()}"
        time.sleep(0.1)

    failed = d.run(run_id)
    assert failed["status"] == "failed", d.logs()
    assert failed["error"]["type"] == "WorkerLost" and failed["error"]["step"] == "deadly", failed["error"]
    assert Counter(names(log)) == {"first": 1, "deadly": MAX_CLAIMS}, calls(log)
    assert restarts == MAX_CLAIMS
    task = next(t for t in d.tasks(run_id) if t["step"] == "deadly")
    assert (task["status"], task["claims"], task["error"]["type"]) == ("failed", MAX_CLAIMS, "WorkerLost"), task

    letters = wait_for(lambda: [x for x in d.data("dlq", "list") if (x.get("message") or {}).get("run_id") == run_id
                                or run_id in str(x)], 30, "the dead letter", d)
    assert len(letters) == 1, letters
    letter = letters[0]
    assert letter["queue"] == "lex.probe.probe.dlq", letter
    assert f"taken {MAX_CLAIMS} times" in letter["reason"] and run_id in letter["reason"], letter

    flag.unlink()  # the function is mended
    replayed = d.data("dlq", "replay", str(letter["id"]))
    assert replayed.get("retried") == run_id, replayed
    done = d.wait_ended(run_id, timeout=60)
    assert (done["status"], done["error"], done["output"]) == ("succeeded", None, {"last": "last"}), d.logs()
    assert Counter(names(log)) == {"first": 1, "deadly": MAX_CLAIMS + 1, "last": 1}, calls(log)
    assert [(t["step"], t["status"]) for t in d.tasks(run_id)] == [
        ("first", "succeeded"), ("deadly", "failed"), ("deadly", "succeeded"), ("last", "succeeded")]
    assert [x for x in d.data("dlq", "list") if run_id in str(x)] == []  # it left the dead-letter queue


# ------------------------------------------------------------------ 4. three schedulers, one slot

BEAT = """
chain: beat
on:
  schedule:
    - every: 1s
steps:
  tick:
    run: core.util.noop
"""

SCHEDULE_WINDOW = 20.0


def schedule_runs(d: Deployment, schedulers: list[Any], window: float) -> list[dict[str, Any]]:
    """Let the schedulers work for `window` seconds, stop them, and return the runs they
    started (each once it ended), oldest first."""
    started = time.monotonic()
    while time.monotonic() - started < window:  # the schedulers at work for a while
        assert all(p.poll() is None for p in schedulers), d.logs()
        time.sleep(0.5)
    for proc in schedulers:
        d.stop(proc)
    assert d.store is not None
    runs = sorted(d.store.list_runs(chain="beat", limit=1000), key=lambda r: r["created_at"])
    ended = [d.wait_ended(r["id"], timeout=30) for r in runs]
    assert ended and all(r["trigger"] == "schedule" and r["status"] == "succeeded" for r in ended), ended
    return ended


def gaps(runs: list[dict[str, Any]]) -> list[float]:
    return [(b["created_at"] - a["created_at"]).total_seconds() for a, b in zip(runs, runs[1:], strict=False)]


@pytest.mark.parametrize("deployment", BACKENDS, indirect=True)
def test_three_schedulers_never_fire_a_slot_twice(deployment: Deployment) -> None:
    d = deployment
    d.apply(write_chain(d.tmp / "chains", BEAT))
    d.start(workers=2)
    schedulers = [d.start(role="scheduler") for _ in range(3)]
    d.wait_up(4)
    runs = schedule_runs(d, schedulers, SCHEDULE_WINDOW)
    # `every: 1s` counts from the moment a slot fired: each firing sets the next slot a second
    # later, and the claim on it (mark_fired with the slot it read) lets one scheduler only
    # start it. So two runs are never less than about a second apart: one slot started twice,
    # by two schedulers, would give two runs milliseconds apart.
    between = gaps(runs)
    assert len(runs) >= 2 and min(between) >= 0.75, between
    span = (runs[-1]["created_at"] - runs[0]["created_at"]).total_seconds()
    assert len(runs) <= span + 1.5, (len(runs), span, between)
    schedule = d.store.list_schedules("beat") if d.store else []
    assert len(schedule) == 1 and schedule[0]["last_run_id"] == runs[-1]["id"], schedule
    assert schedule[0]["next_fire_at"] - schedule[0]["last_fire_at"] == timedelta(seconds=1)
    # (That no slot is left out is pinned below, where one scheduler shows the engine skip them.)


def test_a_scheduler_process_fires_every_slot_once_the_previous_run_ended(deployment: Deployment) -> None:
    d = deployment
    d.apply(write_chain(d.tmp / "chains", BEAT))
    d.start(workers=2)
    scheduler = d.start(role="scheduler")
    d.wait_up(2)
    runs = schedule_runs(d, [scheduler], 10.0)
    # each `tick` is a noop that ends in milliseconds, so no slot overlaps the previous run:
    # about one run a second (the scheduler ticks every second; a slot is due at most a tick late)
    span = (runs[-1]["created_at"] - runs[0]["created_at"]).total_seconds()
    assert len(runs) >= 5 and max(gaps(runs)) <= 2.5, ([r["created_at"].isoformat() for r in runs], span)


# ---------------------------------------------------------- 5. pause, resume, cancel and retry


def test_pause_resume_cancel_and_retry_in_a_shared_deployment(deployment: Deployment) -> None:
    d = deployment
    apply_probe_chains(d, "gated", "mend")
    d.start(workers=2)
    d.start(workers=2)
    d.wait_up(2)

    # pause holds the next step; resume releases it
    log, gate = d.tmp / "paused.log", d.tmp / "paused.gate"
    run_id = d.submit("gated", {"log": str(log), "gate": str(gate)})
    wait_for(lambda: names(log) == ["slow"], 30, "the first step to run", d)
    assert d.data("run", "pause", run_id) == {"paused": run_id}
    wait_for(lambda: d.run(run_id)["status"] == "paused", 30, "the run to be paused", d)
    gate.touch()  # the running step finishes while the run is paused
    wait_for(lambda: held(d, run_id, "after"), 30, "the next step to be held", d)
    assert d.run(run_id)["status"] == "paused"
    assert [(t["step"], t["status"]) for t in d.tasks(run_id)] == [("slow", "succeeded"), ("after", "queued")]
    assert names(log) == ["slow"]
    assert d.data("run", "resume", run_id) == {"resumed": run_id}
    done = d.wait_ended(run_id, 30)
    assert (done["status"], done["output"]) == ("succeeded", {"last": "after"}), d.logs()
    assert names(log) == ["slow", "after"]
    assert [(t["step"], t["status"]) for t in d.tasks(run_id)] == [("slow", "succeeded"), ("after", "succeeded")]

    # cancel ends the run canceled; the step after the running one never starts
    log, gate = d.tmp / "canceled.log", d.tmp / "canceled.gate"
    run_id = d.submit("gated", {"log": str(log), "gate": str(gate)})
    wait_for(lambda: names(log) == ["slow"], 30, "the first step to run", d)
    assert d.data("run", "cancel", run_id) == {"canceled": run_id}
    canceled = d.wait_ended(run_id, 30)
    assert canceled["status"] == "canceled", canceled
    gate.touch()  # the step's function returns; its late result changes nothing
    wait_for(lambda: all(t["status"] not in ("queued", "running") for t in d.tasks(run_id)), 30, "the step run to end", d)
    assert d.run(run_id)["status"] == "canceled"
    assert names(log) == ["slow"]
    assert "after" not in [t["step"] for t in d.tasks(run_id) if t.get("started_at")]

    # retry of a failed run runs again from the failed step, keeping what succeeded
    log, flag = d.tmp / "mend.log", d.tmp / "mend.flag"
    flag.touch()
    failed = d.run_chain("mend", {"log": str(log), "flag": str(flag)})
    run_id = failed["id"]
    assert failed["status"] == "failed" and failed["error"]["type"] == "Failure", failed
    assert names(log) == ["fetch", "check"]
    flag.unlink()
    retried = d.data("run", "retry", run_id, "--wait", "--timeout", "60")
    assert (retried["status"], retried["output"]) == ("succeeded", {"got": "fetch", "checked": "check"}), retried
    assert names(log) == ["fetch", "check", "check"]  # fetch did not run again
    assert [(t["step"], t["status"]) for t in d.tasks(run_id)] == [("fetch", "succeeded"), ("check", "failed"), ("check", "succeeded")]
    # an ended run is not retried again, nor paused
    assert d.legion("run", "retry", run_id, check=2).returncode == 2
    assert d.legion("run", "pause", run_id, check=2).returncode == 2



@pytest.mark.parametrize("redis", [False, True], ids=["broker", "redis"])
def test_a_cancel_interrupts_the_function_on_the_worker_running_it(deployment: Deployment, redis: bool) -> None:
    """The worker that carries out the cancel is not the one running the step: the interrupt
    reaches the other one (on the broker, or on Redis when it is configured)."""
    d = deployment
    if redis:
        d.env["LEGION_REDIS_URL"] = redis_url()
    apply_probe_chains(d, "linger")
    d.start(workers=1)
    d.start(workers=1)
    d.wait_up(2)
    if redis:  # `node list` reads who is alive from Redis
        def live() -> list[dict[str, Any]] | None:
            up = [n for n in d.data("node", "list") if n["state"] == "up"]
            return up if len(up) == 2 else None

        up = wait_for(live, 30, "the two live nodes", d)
        assert all(n["role"] == "worker" and n["runners"] for n in up), up
    log = d.tmp / "linger.log"
    run_id = d.submit("linger", {"log": str(log)})
    wait_for(lambda: names(log) == ["long"], 30, "the step to start", d)
    started = time.monotonic()
    assert d.data("run", "cancel", run_id) == {"canceled": run_id}
    wait_for(lambda: names(log) == ["long", "long-interrupted"], 30, "the function to be interrupted", d)
    assert time.monotonic() - started < 20, "interrupted only when its wait ran out"
    ended = d.wait_ended(run_id, 30)
    assert ended["status"] == "canceled", ended
    assert [(t["step"], t["status"]) for t in d.tasks(run_id)] == [("long", "canceled")]


# ---------------------------------------------------------- 6. the broker side of plan and apply

FETCH = """
chain: fetch
steps:
  get:
    run: http.request.get
    with: {url: "http://127.0.0.1:1/"}
"""


def test_plan_shows_queues_to_change_and_to_remove(deployment: Deployment) -> None:
    d = deployment
    # A queue Legion would declare exists with other arguments: applying would be refused.
    connection = pika.BlockingConnection(pika.URLParameters(d.amqp_url))
    try:
        connection.channel().queue_declare("lex.http.request", durable=True)
    finally:
        connection.close()
    fetch = write_chain(d.tmp / "v1", FETCH)
    broker = d.data("chain", "plan", str(fetch))["broker"]
    assert [c["queue"] for c in broker["change"]] == ["lex.http.request"], broker
    assert "PRECONDITION_FAILED" in broker["change"][0]["reason"] and "x-" in broker["change"][0]["reason"]
    assert "lex.http.request" not in broker["queues"] and broker["remove"] == []
    connection = pika.BlockingConnection(pika.URLParameters(d.amqp_url))
    try:
        connection.channel().queue_delete("lex.http.request")
    finally:
        connection.close()
    d.apply(fetch)
    # Its next version no longer needs the http.request runner: its queues are for you to remove.
    noop = write_chain(d.tmp / "v2", FETCH.replace("http.request.get", "core.util.noop").replace(
        'with: {url: "http://127.0.0.1:1/"}', ""))
    broker = d.data("chain", "plan", str(noop))["broker"]
    assert sorted(broker["remove"]) == ["lex.http.request", "lex.http.request.dlq"], broker
    assert "lex.core.util" in broker["queues"] and broker["change"] == []
    text = d.legion("chain", "plan", str(noop)).stdout
    assert "remove    lex.http.request (broker)" in text


def test_plan_shows_what_apply_declares_and_a_stopped_worker_exits_0(deployment: Deployment) -> None:
    d = deployment
    chains = write_chain(d.tmp / "chains", BEAT)
    before = d.data("chain", "plan", str(chains))["broker"]
    assert "lex.core.util" in before["queues"] and "lex.core.util.dlq" in before["queues"]
    assert "lex.core" in before["exchanges"] and "legion.delay" in before["exchanges"]
    d.apply(chains)
    assert d.data("chain", "plan", str(chains))["broker"] == {"exchanges": [], "queues": [], "change": [], "remove": []}
    status = {q["name"]: q for q in d.data("broker", "status")["queues"]}
    assert status["lex.core.util"]["ready"] == 0 and not status["lex.core.util"].get("missing")
    worker = d.start(workers=1)
    d.wait_up(1)
    nodes = d.data("node", "list")
    assert [n["state"] for n in nodes] == ["up"] and "lex.core.util" in nodes[0]["runners"]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, d.logs()
    assert [n["state"] for n in d.data("node", "list")] == ["stopped"]


def test_the_api_serves_a_shared_deployment_and_streams_events_from_the_workers(deployment: Deployment) -> None:
    import socket

    import httpx

    d = deployment
    d.apply(write_chain(d.tmp, "chain: hello\nsteps:\n  greet:\n    run: core.util.echo\n    with: {message: \"hi {{ input.n }}\"}\n"))
    d.start("worker")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = (d.tmp / "api.log").open("w")
    api = subprocess.Popen([*LEGION, "api", "--port", str(port), "--no-auth"], env=d.env, cwd=d.tmp, stdout=out,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    out.close()
    d.procs.append(("api", api))
    d.wait_up(1)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(base + "/api/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(answers, 60, "the API to answer", d)
    started = httpx.post(base + "/api/runs", json={"chain": "hello", "input": {"n": 1}}, timeout=60)
    assert started.status_code == 201 and started.json()["data"]["status"] in ("pending", "running")  # not waited for
    run_id = started.json()["data"]["id"]
    waited = httpx.post(base + "/api/runs", json={"chain": "hello", "input": {"n": 2}, "wait": True}, timeout=120).json()["data"]
    assert (waited["status"], waited["trace"]) == ("succeeded", ["greet"])
    assert waited["tasks"][0]["node"] != f"{socket.gethostname()}:{api.pid}"  # the worker process ran it, not the API's
    stream = httpx.get(base + "/api/events", params={"since": started.json()["data"]["created_at"], "for": 2}, timeout=30).text
    assert f'"run_id": "{run_id}"' in stream and "event: step.finished" in stream  # seen by the API, done by the worker
    assert httpx.get(base + "/api/dead-letters", timeout=30).json() == {"data": []}
    queues = {q["name"] for q in httpx.get(base + "/api/broker", timeout=30).json()["data"]["queues"]}
    assert "lex.core.util" in queues
    metrics = httpx.get(base + "/metrics", timeout=30).text
    assert 'legion_workers{role="worker"} 1' in metrics and 'legion_queue_messages{queue="lex.core.util"}' in metrics


def test_an_agent_step_calls_its_tools_as_tasks_on_the_worker_running_it(deployment: Deployment) -> None:
    """`llm.agent.run` on a worker process: each tool call is a task of the run, numbered by
    the run (under the database's lock) and recorded under the agent's step."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "llm"))
    from fake_openai import FakeOpenAI, chat_body, tool_call_body

    d = deployment
    with FakeOpenAI() as fake:
        fake.answer(200, tool_call_body("core__util__echo", '{"message": "one"}', "a"))
        fake.answer(200, tool_call_body("core__util__echo", '{"message": "two"}', "b"))
        fake.answer(200, chat_body("said one and two"))
        d.env["OPENAI_API_KEY"] = "sk-distributed-0123456789"
        chain = write_chain(d.tmp, f"""
chain: agent_echo
steps:
  think:
    run: llm.agent.run
    with: {{prompt: "say one then two", tools: [core.util.echo], model: openai/local, api_base: "{fake.url}", stream: false}}
    next:
      - publish: {{said: "{{{{ result.text }}}}"}}
        do: after
  after:
    run: core.util.echo
    with: {{message: done}}
output: "{{{{ ctx.said }}}}"
""")
        d.apply(chain)
        d.start(workers=2)
        d.wait_up(1)
        run = d.run_chain("agent_echo")
    assert (run["status"], run["output"]) == ("succeeded", "said one and two"), (run, d.logs())
    tasks = d.tasks(run["id"])
    assert [(t["number"], t["step"], t["function"], t["caller"], t["status"]) for t in tasks] == [
        (1, "think", "llm.agent.run", None, "succeeded"), (2, "think", "core.util.echo", 1, "succeeded"),
        (3, "think", "core.util.echo", 1, "succeeded"), (4, "after", "core.util.echo", None, "succeeded")]
    assert [t["result"] for t in tasks[1:3]] == ["one", "two"]


def test_an_agent_wakes_and_answers_on_worker_processes(deployment: Deployment) -> None:
    """Agents run on the distributed runtime as on the embedded one: `legion agent send` in one
    process, the agent's ticks on the workers (its state in the shared database, sealed with a
    key from the shared secret store)."""
    d = deployment
    d.env["LEGION_LLM_MODEL"] = ""  # replies by rule
    assert d.data("agent", "create", "ada", "--partner", "matt")["name"] == "ada"
    d.apply(Path(__file__).resolve().parents[2] / "chains" / "agents")  # applied by create already: nothing changes
    d.start(workers=2)
    d.start(workers=2)
    d.wait_up(2)
    sent = d.data("agent", "send", "ada", "Please call me at 555-867-5309")
    assert [t["mode"] for t in sent["ticks"]] == ["sentinel", "full_active"], (sent, d.logs())
    assert sent["reply"]["text"] == 'Noted: "Please call me at [REDACTED]".'
    ran = {int(t["node"].rsplit(":", 1)[1]) for run in sent["ticks"] for t in d.tasks(run["run_id"])}
    assert ran and ran <= {p.pid for _, p in d.procs}, ran  # every step on a worker, none in the CLI's process
    status = d.data("agent", "status", "ada")
    assert status["mode"]["mode"] == "full_active" and status["memories"][0]["content_payload"] == "Please call me at 555-867-5309"
