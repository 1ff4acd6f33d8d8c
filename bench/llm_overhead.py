"""What Legion adds to one language-model call: `llm.chat.complete` against a fake
OpenAI-compatible server on 127.0.0.1 (tests/llm/fake_openai.py), against litellm called
directly in the same run with the same arguments.

    .venv/bin/python bench/llm_overhead.py [--calls N] [--json]

Five ways, each N calls (default 200) after 10 warm-up calls, interleaved in rounds so that
the machine's load falls on all alike: (1) `litellm.completion` directly; (2) the function
`llm.chat.complete` as a step calls it (argument checking, the guard, the call, the result and
its usage); (3) a whole embedded Legion run of it (`Engine.run_task`: a run and its task
recorded in SQLite, the run waited for); (4) litellm streamed (the pieces rebuilt into one
answer, as Legion does); (5) the function streamed. Printed: the median per call of each and
the overheads (2) - (1), (3) - (1) and (5) - (4). Target: Legion's overhead under 5 ms per
call.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from report import heading, run_main, table

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "llm")]
TARGET_MS = 5.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="timed calls of each way (default 200)")
    parser.add_argument("--json", action="store_true", help="also print one JSON document of all figures at the end")
    args = parser.parse_args(argv)
    os.environ["LITELLM_OFFLINE_MODE"] = "true"
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench")
    from fake_openai import FakeOpenAI

    from legion.engine.data.store import Store
    from legion.engine.invoke import call
    from legion.engine.registry import Registry
    from legion.engine.runtime import Engine
    from legion.extensions.llm.client import litellm

    lib = litellm()
    registry = Registry.discover()
    complete = registry.function("llm.chat.complete")
    home = tempfile.mkdtemp(prefix="legion-llm-bench-")
    store = Store(f"sqlite:///{home}/legion.db")
    engine = Engine(registry, store, workers=2).start()
    timings: dict[str, list[float]] = {"litellm": [], "function": [], "run": [], "litellm_stream": [], "function_stream": []}
    with FakeOpenAI() as fake:
        request = {"model": "openai/local", "api_base": fake.url, "prompt": "hi", "stream": False}
        messages = [{"role": "user", "content": "hi"}]

        def direct() -> None:
            lib.completion(model="openai/local", api_base=fake.url, messages=messages, num_retries=0, timeout=120)

        def direct_stream() -> None:
            pieces = list(lib.completion(model="openai/local", api_base=fake.url, messages=messages, num_retries=0, timeout=120,
                                         stream=True, stream_options={"include_usage": True}))
            lib.stream_chunk_builder(pieces, messages=messages)

        def function() -> None:
            outcome = call(complete, dict(request), None)
            assert outcome.status == "succeeded", outcome.error

        def function_stream() -> None:
            outcome = call(complete, dict(request, stream=True), None)
            assert outcome.status == "succeeded", outcome.error

        def run() -> None:
            run_id = engine.run_task("llm.chat.complete", dict(request))
            assert engine.wait(run_id, 60)["status"] == "succeeded"

        ways = {"litellm": direct, "function": function, "run": run, "litellm_stream": direct_stream,
                "function_stream": function_stream}
        for _ in range(10):
            for way in ways.values():
                way()
        for _ in range(args.calls):
            for name, way in ways.items():
                t0 = time.perf_counter()
                way()
                timings[name].append((time.perf_counter() - t0) * 1e3)
    engine.stop()
    store.close()
    median = {name: statistics.median(values) for name, values in timings.items()}
    figures: dict[str, Any] = {"calls": args.calls, "median_ms": median,
                               "overhead_function_ms": median["function"] - median["litellm"],
                               "overhead_run_ms": median["run"] - median["litellm"],
                               "overhead_stream_ms": median["function_stream"] - median["litellm_stream"]}
    heading(f"One llm.chat.complete against a fake OpenAI-compatible server, {args.calls} calls each, interleaved")
    table(["way", "median per call", "Legion's overhead"], [
        ["litellm.completion directly", f"{median['litellm']:.2f} ms", "-"],
        ["llm.chat.complete as a step calls it", f"{median['function']:.2f} ms", f"{figures['overhead_function_ms']:.2f} ms"],
        ["a whole embedded run of it (recorded in SQLite)", f"{median['run']:.2f} ms", f"{figures['overhead_run_ms']:.2f} ms"],
        ["litellm streamed directly", f"{median['litellm_stream']:.2f} ms", "-"],
        ["llm.chat.complete streamed", f"{median['function_stream']:.2f} ms", f"{figures['overhead_stream_ms']:.2f} ms"]])
    met = max(figures["overhead_function_ms"], figures["overhead_stream_ms"]) < TARGET_MS
    print(f"  target: Legion's overhead on a call under {TARGET_MS:g} ms: {'MET' if met else 'NOT MET'} "
          f"({figures['overhead_function_ms']:.2f} ms per call; {figures['overhead_run_ms']:.2f} ms with a whole run around it)")
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    run_main(main)
