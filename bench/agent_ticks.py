"""Agent ticks per second on the embedded default (SQLite, the in-memory transport, one
process): an agent's cognitive cycle, the chain `agent_tick` (chains/agents/tick.yaml), against
the engine's floor, runs of a one-step `core.util.noop` chain made the same way in the same
invocation.

    .venv/bin/python bench/agent_ticks.py [--quick] [--ticks N] [--every K] [--agents M]
        [--in-flight C] [--workers W] [--json]

Everything lives in a fresh LEGION_HOME made for the invocation (its SQLite file and its
secret store, which holds each agent's key) and removed at the end. One embedded Engine with W
worker threads (default 8); the chains are applied with `Service.apply_chains`.

(a) One agent (partner "matt") ticked N times in a row (default 500), each tick a run started
    with `engine.submit("agent_tick", ..., agent=...)` and waited for before the next. The
    engine's clock runs a minute ahead per tick, as the heartbeat would tick it, so the mode
    follows the original design's timeouts: the partner writes before every K-th tick (default
    10, the first message after the first K ticks), which wakes the agent (dormant -> sentinel
    -> full_active); a full_active tick answers (by rule: no model) and the agent falls back
    to sentinel five ticks (ACTIVE_TIMEOUT) after the partner's last message. Baseline: N runs
    of the noop chain, one after another.
(b) M agents (default 1,000, made with `Store.create_agent`; every tenth one has a message from
    its partner waiting), each ticked once:
    - submitted: C runs in flight at most (default 8), each submitted and waited for by one of C
      threads; baseline: M noop runs the same way;
    - heartbeat: one run of `agent_heartbeat` (chains/agents/heartbeat.yaml), which ticks every
      agent on record as a sub-chain, 4 at a time (the chain's `concurrency`); it is each
      agent's second tick, so the agents with a message are raised to full_active and answer;
      baseline: one run of a chain that fans out M runs of the noop chain the same way. A
      fan-out whose sub-runs have all ended while the run itself does not end within 15 s is
      canceled and reported as HUNG, its figures taken from the sub-runs' rows.

Printed: ticks/s, the p50 and p99 latency of one tick (a run from its submission until the
waiter saw it end; in the heartbeat, a sub-chain run's start to its end, from its row), the
mode mix, the baseline's runs/s and latencies, and the ratio (a tick's cost in noop runs, from
the rates).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from report import heading, rate, run_main, table

ROOT = Path(__file__).resolve().parents[1]
AGENT_CHAINS = ROOT / "chains" / "agents"
MINUTE = 60.0

NOOP = """
chain: bench_noop
steps:
  noop:
    run: core.util.noop
"""
FANOUT = """
chain: bench_noop_fanout
input:
  type: object
  properties: {items: {type: array}}
steps:
  start:
    run: core.util.noop
    next:
      - do: each
  each:
    run: chain:bench_noop
    for_each: "{{ input['items'] }}"
    concurrency: 4
output:
  ran: "{{ result | length }}"
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def summary(name: str, latencies_ms: list[float], elapsed: float, modes: Counter[str] | None = None) -> dict[str, Any]:
    some = bool(latencies_ms)
    return {"name": name, "runs": len(latencies_ms), "elapsed_s": elapsed,
            "per_s": len(latencies_ms) / elapsed if elapsed > 0 and some else None,
            "p50_ms": pct(latencies_ms, 50) if some else None, "p99_ms": pct(latencies_ms, 99) if some else None,
            "mean_ms": statistics.fmean(latencies_ms) if some else None, "modes": dict(sorted((modes or {}).items()))}


class Clock:
    """The engine's clock: the wall clock, plus an offset the benchmark moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run: 60 ticks, 200 agents")
    parser.add_argument("--ticks", type=int, help="(a) ticks of the one agent (default 500; --quick 60)")
    parser.add_argument("--every", type=int, default=10, help="(a) the partner writes before every K-th tick (default 10)")
    parser.add_argument("--agents", type=int, help="(b) agents ticked once each (default 1000; --quick 200)")
    parser.add_argument("--in-flight", type=int, default=8, help="(b) runs in flight at most when submitted (default 8)")
    parser.add_argument("--workers", type=int, default=8, help="the engine's worker threads (default 8)")
    parser.add_argument("--json", action="store_true", help="also print one JSON document of all figures at the end")
    args = parser.parse_args(argv)
    ticks = args.ticks or (60 if args.quick else 500)
    agents = args.agents or (200 if args.quick else 1000)
    home = tempfile.mkdtemp(prefix="legion-agent-ticks-")
    for name in ("LEGION_DATABASE_URL", "LEGION_AMQP_URL", "LEGION_REDIS_URL", "VAULT_ADDR", "VAULT_TOKEN", "LEGION_LLM_MODEL"):
        os.environ.pop(name, None)
    os.environ["LEGION_HOME"] = home
    try:
        return measure(home, ticks, max(1, args.every), agents, max(1, args.in_flight), args.workers, args.json)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def measure(home: str, ticks: int, every: int, agents: int, in_flight: int, workers: int, as_json: bool) -> int:
    from legion.engine.runtime import Engine
    from legion.engine.sdk import call_as
    from legion.engine.service import Service, registry_rows
    from legion.engine.settings import Settings

    service = Service(Settings.from_env())
    clock = Clock()
    service.store.sync_registry(registry_rows(service.registry))  # as Service.engine does
    engine = Engine(service.registry, service.store, workers=workers, clock=clock).start()
    service.use_engine(engine)
    service.apply_chains(paths=[str(AGENT_CHAINS)])
    service.apply_chains(text=NOOP)
    service.apply_chains(text=FANOUT)
    receive = service.registry.function("tick.inbox.receive")

    def write(agent: str, text: str) -> None:
        call_as(receive, {"value": text, "source_type": "human_direct"}, agent=agent, clock=clock, states=engine.agent_states,
                registry=service.registry)

    def one(chain: str, payload: dict[str, Any], agent: str | None = None) -> tuple[float, dict[str, Any]]:
        t0 = time.perf_counter()
        run = engine.wait(engine.submit(chain, payload, agent=agent), 300)
        took = (time.perf_counter() - t0) * 1e3
        if run["status"] != "succeeded":
            raise RuntimeError(f"a run of {chain} for {agent or 'the default agent'} {run['status']}: {run.get('error')}")
        return took, run.get("output") or {}

    figures: dict[str, Any] = {"ticks": ticks, "every": every, "agents": agents, "in_flight": in_flight, "workers": workers}
    try:
        for _ in range(5):  # warm-up: imports, compiled templates, the first key and rows
            one("agent_tick", {}, "warmup")
            one("bench_noop", {})
        service.store.create_agent("ada", "matt")

        # (a) one agent, N ticks in a row, a minute apart on its clock ---------------------
        latencies: list[float] = []
        tick_modes: list[str] = []
        by_mode: dict[str, list[float]] = {}
        modes: Counter[str] = Counter()
        replies = 0
        t0 = time.perf_counter()
        for i in range(ticks):
            clock.offset += MINUTE
            if i and i % every == 0:
                write("ada", f"Message {i // every}: how is the work on item {i} going?")
            took, out = one("agent_tick", {"partner": "matt"}, "ada")
            latencies.append(took)
            tick_modes.append(out["mode"])
            by_mode.setdefault(out["mode"], []).append(took)
            modes[out["mode"]] += 1
            replies += out.get("replied") is not None
        a = summary("one agent, in a row", latencies, time.perf_counter() - t0, modes)
        a["replies"] = replies
        a["by_mode"] = {m: {"ticks": len(v), "p50_ms": pct(v, 50), "p99_ms": pct(v, 99)} for m, v in sorted(by_mode.items())}
        # Whether a tick costs more as the agent's state grows: full_active ticks, first half against second.
        active = [(i, took) for i, (took, mode) in enumerate(zip(latencies, tick_modes, strict=True)) if mode == "full_active"]
        early, late = [t for i, t in active if i < ticks // 2], [t for i, t in active if i >= ticks // 2]
        a["full_active_p50_first_half_ms"] = pct(early, 50) if early else None
        a["full_active_p50_second_half_ms"] = pct(late, 50) if late else None
        base_latencies = []
        t0 = time.perf_counter()
        for _ in range(ticks):
            base_latencies.append(one("bench_noop", {})[0])
        a_base = summary("noop, in a row", base_latencies, time.perf_counter() - t0)
        figures["one_agent"], figures["one_agent_baseline"] = a, a_base

        # (b) M agents, each ticked once ------------------------------------------------------
        clock.offset += MINUTE  # (b) a minute after (a): the clock never goes back for ada
        names = [f"agent{n:05d}" for n in range(agents)]
        for n, name in enumerate(names):
            service.store.create_agent(name, f"partner{n:05d}")
            if n % 10 == 0:
                write(name, f"Hello {name}, a word when you have a moment.")

        def bounded(task: Callable[[str], tuple[float, dict[str, Any]]], items: list[str]) -> tuple[list[float], list[dict[str, Any]], float]:
            results: list[tuple[float, dict[str, Any]]] = []
            lock = threading.Lock()

            def go(item: str) -> None:
                found = task(item)
                with lock:
                    results.append(found)

            t0 = time.perf_counter()
            with ThreadPoolExecutor(in_flight) as pool:
                for f in [pool.submit(go, item) for item in items]:
                    f.result()
            return [r[0] for r in results], [r[1] for r in results], time.perf_counter() - t0

        took, outs, elapsed = bounded(lambda name: one("agent_tick", {}, name), names)
        b = summary(f"{agents} agents, {in_flight} in flight", took, elapsed, Counter(o["mode"] for o in outs))
        b["replies"] = sum(o.get("replied") is not None for o in outs)
        took, _, elapsed = bounded(lambda _: one("bench_noop", {}), names)
        b_base = summary(f"noop, {in_flight} in flight", took, elapsed)
        figures["submitted"], figures["submitted_baseline"] = b, b_base

        on_record = len([a for a in service.store.list_agents() if a.get("erased_at") is None])
        hb = fan_out(engine, home, "agent_heartbeat", {}, on_record, f"heartbeat over {on_record} agents")
        hb_base = fan_out(engine, home, "bench_noop_fanout", {"items": list(range(on_record))}, on_record,
                          f"noop fan-out of {on_record}")
        figures["heartbeat"], figures["heartbeat_baseline"] = hb, hb_base
    finally:
        engine.stop()
        service.close()

    report(figures)
    if as_json:
        print(json.dumps(figures, indent=2))
    return 0


def fan_out(engine: Any, home: str, chain: str, payload: dict[str, Any], expected: int, name: str) -> dict[str, Any]:
    """One run of `chain`, whose for_each step starts `expected` sub-chain runs, waited for.
    Its figures come from the sub-runs' rows: a tick's latency is a sub-run's start to its end,
    the rate is the sub-runs over the time from the submission to the last one's end. When the
    sub-runs have all ended but the run does not end (a sub-chain's end not taken up by its
    step run), it is canceled after STALL seconds and the summary says `hung`."""
    t0 = time.time()
    run_id = engine.submit(chain, payload)
    run: dict[str, Any] | None = None
    ended, since = -1, time.monotonic()
    while run is None:
        try:
            run = engine.wait(run_id, 1.0)
        except TimeoutError:
            now = sub_runs(home, run_id)
            count = sum(c["ended"] is not None for c in now)
            if count != ended:
                ended, since = count, time.monotonic()
            elif time.monotonic() - since > STALL:
                break
    children = [c for c in sub_runs(home, run_id) if c["ended"] is not None]
    last = max((c["ended"] for c in children), default=time.time())
    out = summary(name, [c["ms"] for c in children], last - t0, Counter(c["mode"] for c in children if c["mode"]))
    out["replies"] = sum(c["replied"] for c in children)
    out["expected"] = expected
    if run is None or run["status"] != "succeeded":
        waiting = stuck_steps(home, run_id)
        engine.cancel(run_id, "the benchmark gave up on it")
        out["hung"] = {"status": run["status"] if run else "running", "sub_runs_ended": len(children),
                       "step_runs_still_running": waiting}
    return out


STALL = 15.0  # seconds without a sub-run ending before a fan-out is taken as hung


def stuck_steps(home: str, run_id: str) -> int:
    with sqlite3.connect(Path(home) / "legion.db") as conn:
        return int(conn.execute("SELECT count(*) FROM tasks WHERE run_id = ? AND status = 'running'", (run_id,)).fetchone()[0])


def _epoch(text: str | None) -> float | None:
    if text is None:
        return None
    at = datetime.fromisoformat(text)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def sub_runs(home: str, parent: str) -> list[dict[str, Any]]:
    """The runs a for_each step started under run `parent`: {ended (epoch seconds or None), ms
    (started to ended), mode, replied}, from their rows."""
    with sqlite3.connect(Path(home) / "legion.db") as conn:
        rows = conn.execute("SELECT output, started_at, created_at, ended_at FROM runs WHERE parent_run_id = ?", (parent,)).fetchall()
    found = []
    for output, started, created, ended in rows:
        out = json.loads(output) if output else {}
        begin, end = _epoch(started or created), _epoch(ended)
        found.append({"ended": end, "ms": (end - begin) * 1e3 if end is not None and begin is not None else None,
                      "mode": out.get("mode") if isinstance(out, dict) else None,
                      "replied": isinstance(out, dict) and out.get("replied") is not None})
    return found


def report(f: dict[str, Any]) -> None:
    def mix(s: dict[str, Any]) -> str:
        return ", ".join(f"{m} {n}" for m, n in s["modes"].items()) or "-"

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} ms"

    def row(s: dict[str, Any], base: dict[str, Any] | None) -> list[str]:
        ratio = f"{base['per_s'] / s['per_s']:.1f}x" if base and base["per_s"] and s["per_s"] else "-"
        return [s["name"] + (" (HUNG)" if "hung" in s else ""), str(s["runs"]), f"{s['elapsed_s']:.1f} s", rate(s["per_s"]),
                ms(s["p50_ms"]), ms(s["p99_ms"]), ratio, mix(s)]

    heading(f"Agent ticks (chain agent_tick) on embedded SQLite, {f['workers']} worker threads, against core.util.noop runs")
    headers = ["what", "runs", "time", "per s", "p50", "p99", "cost in noops", "modes"]
    table(headers, [row(f["one_agent"], f["one_agent_baseline"]), row(f["one_agent_baseline"], None),
                    row(f["submitted"], f["submitted_baseline"]), row(f["submitted_baseline"], None),
                    row(f["heartbeat"], f["heartbeat_baseline"]), row(f["heartbeat_baseline"], None)])
    a = f["one_agent"]
    print(f"  (a) the partner wrote before every {f['every']}th tick; {a['replies']} replies (by rule); full_active tick p50 "
          f"in the first half {ms(a['full_active_p50_first_half_ms'])}, in the second {ms(a['full_active_p50_second_half_ms'])}")
    print(f"  (b) every tenth agent had a message waiting; replies: submitted {f['submitted']['replies']}, "
          f"heartbeat {f['heartbeat']['replies']}")
    for key in ("heartbeat", "heartbeat_baseline"):
        hung = f[key].get("hung")
        if hung:
            print(f"  HUNG: {f[key]['name']}: {hung['sub_runs_ended']} of {f[key]['expected']} sub-chain runs ended, yet the run "
                  f"stayed {hung['status']} with {hung['step_runs_still_running']} step run(s) still 'running' "
                  f"(canceled after {STALL:g} s without progress; its rate is up to the last sub-run's end)")
    heading("(a) one agent: latency of a tick by mode")
    table(["mode", "ticks", "p50", "p99"], [[m, str(v["ticks"]), f"{v['p50_ms']:.1f} ms", f"{v['p99_ms']:.1f} ms"]
                                            for m, v in a["by_mode"].items()])


if __name__ == "__main__":
    run_main(main)
