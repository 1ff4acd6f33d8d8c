"""Load on the REST API: N concurrent `POST /api/runs` (default 200) against a `legion api`
process, on the embedded SQLite and on PostgreSQL, measured in one invocation.

    .venv/bin/python bench/api_load.py [--runs N] [--json]

Each backend gets a fresh `legion api --no-auth` process (a fresh LEGION_HOME; PostgreSQL: a
fresh database from tests/services.py, dropped at the end) with a one-step chain applied.
All N requests are sent at once (one connection each); each answer must be 201 (accepted) or
429/503 (refused, to be tried again). Then every accepted run must be found in `GET /api/runs`
and end: none lost. Printed: the answers by status, p50/p99/max latency of the requests, the
rate, and how many runs were lost (the check fails when any was).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from report import heading, run_main, table

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "api"), str(ROOT / "tests" / "cli")]

CHAIN = "chain: load\nsteps:\n  greet:\n    run: core.util.echo\n    with: {message: \"hi {{ input.n }}\"}\n"


async def fire(base: str, n: int) -> list[tuple[int, float, str | None]]:
    import httpx

    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=n)) as client:
        async def one(i: int) -> tuple[int, float, str | None]:
            t0 = time.perf_counter()
            r = await client.post(base + "/api/runs", json={"chain": "load", "input": {"n": i}})
            return r.status_code, time.perf_counter() - t0, (r.json().get("data") or {}).get("id") if r.status_code == 201 else None

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def load(n: int, database: str | None) -> dict[str, Any]:
    """One backend: N concurrent starts, then every accepted run looked for until it ended."""
    import httpx
    from test_serve import free_port, serve, up
    from waiting import wait_until

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="legion-load-") as home, serve(Path(home), "api", "--port", str(port), "--no-auth",
                                                                            database=database) as proc:
        up(base, proc)
        httpx.post(base + "/api/chains", content=CHAIN, headers={"Content-Type": "application/yaml"}, timeout=60).raise_for_status()
        t0 = time.perf_counter()
        answers = asyncio.run(fire(base, n))
        seconds = time.perf_counter() - t0
        accepted = {run_id for status, _, run_id in answers if status == 201}

        def ended() -> dict[str, str] | None:
            runs = {r["id"]: r["status"] for r in httpx.get(base + "/api/runs?limit=1000", timeout=60).json()["data"]}
            return runs if all(runs.get(i) in ("succeeded", "failed", "canceled") for i in accepted) else None

        runs = wait_until(ended, timeout=300, interval=0.5, what="every accepted run to end")
    latencies = sorted(t for _, t, _ in answers)
    statuses: dict[int, int] = {}
    for status, _, _ in answers:
        statuses[status] = statuses.get(status, 0) + 1
    return {"requests": n, "statuses": statuses, "p50_ms": latencies[len(latencies) // 2] * 1e3,
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3, "max_ms": latencies[-1] * 1e3,
            "seconds": seconds, "accepted": len(accepted), "lost": len(accepted - set(runs)),
            "succeeded": sum(1 for i in accepted if runs.get(i) == "succeeded")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="concurrent requests (default 200)")
    parser.add_argument("--json", action="store_true", help="also print one JSON document of all figures at the end")
    args = parser.parse_args(argv)
    import services

    figures: dict[str, Any] = {}
    figures["sqlite"] = load(args.runs, None)
    url = services.create_database("postgresql", "legion_load")
    try:
        figures["postgresql"] = load(args.runs, url)
    finally:
        services.drop_database("postgresql", url)
    heading(f"{args.runs} concurrent POST /api/runs against `legion api` (embedded engine)")
    table(["database", "answers", "p50", "p99", "max", "requests/s", "accepted", "lost"], [
        [name, ", ".join(f"{k}: {v}" for k, v in sorted(f["statuses"].items())), f"{f['p50_ms']:,.0f} ms", f"{f['p99_ms']:,.0f} ms",
         f"{f['max_ms']:,.0f} ms", f"{f['requests'] / f['seconds']:,.0f}", str(f["accepted"]), str(f["lost"])] for name, f in figures.items()])
    refused = sum(n for f in figures.values() for status, n in f["statuses"].items() if status not in (201, 429, 503))
    lost = sum(f["lost"] for f in figures.values())
    print(f"  answers other than 201/429/503: {refused}; accepted runs lost: {lost}")
    if args.json:
        print(json.dumps(figures, indent=2))
    return 1 if refused or lost else 0


if __name__ == "__main__":
    os.environ.setdefault("LEGION_CONFORMANCE", str(ROOT / "tests" / "conformance"))
    run_main(main)
