"""Wall time and peak memory of `legion chain validate` on large and hostile chain files.

    .venv/bin/python bench/validate.py [--sizes 10000,50000] [--json]

Files, generated into a temporary folder:

- **bomb**: a "billion laughs" file (about 700 bytes): anchors a0..a9, each a list of ten
  aliases of the one before, so that a9 stands for 10^9 scalars once expanded. Validate must
  refuse it (exit 2) at once, naming the alias that goes past the limit.
- **N steps** (10,000 and 50,000 by default): a realistic long chain. A sequence of steps, each
  with `with` templates over `input`, `ctx` and `result`; every tenth step branches on a
  condition into a side step that logs and rejoins the sequence (`join: 1` on the step where
  the two meet), and a `failed` edge to a shared `notify` step that ends the run with `fail`.
  Validate must accept it (exit 0).

Two baselines run on the same files in the same invocation, each a subprocess: **libyaml** —
PyYAML's `CSafeLoader` (libyaml's parser, PyYAML's constructor) reading the file into Python
data and nothing else (no positions, no checks, no validation) — and **ruamel rt** — ruamel.yaml's round-trip load, what validation parsed with
before it read files through libyaml (skipped above 10,000 steps: it takes minutes).

Each `legion chain validate` runs in its own subprocess, as users run it, with a fresh
LEGION_HOME (no database: nothing but the files is read). Figures: wall time
(`time.perf_counter` around the subprocess), CPU time (user + system: what the command cost,
whatever else the machine was doing) and peak memory (the child's `ru_maxrss`), both read with
`os.wait4`, so that each run's figures are its own. Benchmarks print figures; they are not
timed tests, and the exit code is 0 unless a file was not judged as expected.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Without alias limits the bomb grows by gigabytes for minutes: stop it well before.
BOMB_TIMEOUT_S = 60.0


def bomb() -> str:
    """Ten anchors, each a list of ten aliases of the previous one: 10^9 leaves once expanded."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def large_chain(steps: int) -> str:
    """A chain of `steps` sequence steps plus a side step per ten and one `notify` step."""
    out = [
        f"chain: large-{steps}",
        f"description: {steps} steps in sequence, a conditional branch every ten, a shared failure path",
        "input:",
        "  type: object",
        "  required: [order_id]",
        "  properties: {order_id: {type: integer}, limit: {type: integer}}",
        "vars: {seen: 0}",
        "steps:",
    ]
    width = len(str(steps))
    name = [f"s{i:0{width}d}" for i in range(steps)]
    for i, step in enumerate(name):
        out += [
            f"  {step}:",
            "    run: core.util.set",
            "    with:",
            "      order: \"{{ input.order_id }}\"",
            f"      position: {i}",
            "      label: \"step {{ run.chain }} of {{ input.order_id | string }}\"",
        ]
        if i > 0 and i % 10 == 1:
            out.append("    join: 1")  # its sequence predecessor and the side step before it
        if i + 1 == steps:
            continue
        following = name[i + 1]
        out.append("    next:")
        if i % 10 == 0:
            out += [
                "      - when: succeeded and result.position % 20 == 0",
                "        publish: {last: \"{{ result.position }}\"}",
                f"        do: b{step}",
                "      - when: succeeded and result.position % 20 != 0",
                f"        do: {following}",
            ]
        else:
            out += [
                "      - when: succeeded",
                "        publish: {seen: \"{{ ctx.seen + 1 }}\"}",
                f"        do: {following}",
            ]
        out += [
            "      - when: failed",
            "        do: [notify, fail]",
        ]
        if i % 10 == 0:
            out += [
                f"  b{step}:",
                "    run: core.util.log",
                "    with: {message: \"branch at {{ ctx.last }} for {{ input.order_id }}\", level: info}",
                "    next:",
                f"      - do: {following}",
            ]
    out += [
        "  notify:",
        "    run: core.util.log",
        "    with: {message: \"order {{ input.order_id }} failed: {{ error.message }}\", level: error}",
        "start: " + name[0],
        "output:",
        "  seen: \"{{ ctx.seen }}\"",
    ]
    return "\n".join(out) + "\n"


def legion_argv() -> list[str]:
    """The `legion` console script beside this interpreter, else the CLI module through it."""
    script = Path(sys.executable).with_name("legion")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "legion.engine.cli.main"]


def measured(argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> dict[str, Any]:
    """Wall time, peak memory and outcome of one subprocess."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                timed_out = True
                break
            time.sleep(0.005)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_bytes": peak, "exit": None if timed_out else proc.returncode,
            "stderr": stderr.strip().splitlines()[:2]}


LIBYAML = "import sys, yaml; yaml.load(open(sys.argv[1], encoding='utf-8'), Loader=yaml.CSafeLoader)"
RUAMEL = ("import sys; from ruamel.yaml import YAML; y = YAML(typ='rt'); y.version = (1, 2); "
          "y.load(open(sys.argv[1], encoding='utf-8').read())")
RUAMEL_MAX_STEPS = 10_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,50000", help="step counts of the large chains (default 10000,50000)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds after which a run is stopped and reported as timed out (default 300)")
    parser.add_argument("--json", action="store_true", help="also print one JSON document of all figures at the end")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    print("legion chain validate: wall time and peak memory")
    print(f"  Machine: {os.cpu_count()} CPU cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}. One run of each file, in a subprocess.")
    tmp = Path(tempfile.mkdtemp(prefix="legion-bench-validate-"))
    results: list[dict[str, Any]] = []
    try:
        cases = [("bomb", "bomb.yaml", bomb(), 2, min(args.timeout, BOMB_TIMEOUT_S))]
        cases += [(f"{n} steps", f"large-{n}.yaml", large_chain(n), 0, args.timeout) for n in sizes]
        env = dict(os.environ, LEGION_HOME=str(tmp / "home"))
        for key in ("LEGION_DATABASE_URL", "LEGION_AMQP_URL", "LEGION_REDIS_URL", "VAULT_ADDR"):
            env.pop(key, None)
        for label, name, text, expected, timeout in cases:
            (tmp / name).write_text(text, encoding="utf-8")
            figures = measured([*legion_argv(), "chain", "validate", name], env, tmp, timeout)
            figures.update(file=label, bytes=len(text.encode()), expected_exit=expected)
            if label != "bomb":  # the baselines would expand the bomb's aliases
                figures["libyaml_s"] = measured([sys.executable, "-c", LIBYAML, name], env, tmp, timeout)["cpu_s"]
                steps = int(label.split()[0])
                if steps <= RUAMEL_MAX_STEPS:
                    figures["ruamel_s"] = measured([sys.executable, "-c", RUAMEL, name], env, tmp, timeout)["cpu_s"]
            results.append(figures)
            shutil.rmtree(tmp / "home", ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"  {'file':<14}{'size':>12}{'wall':>12}{'CPU':>12}{'peak memory':>14}  exit"
          f"{'libyaml CPU':>14}{'CPU / libyaml':>15}{'ruamel rt CPU':>15}{'ruamel / CPU':>14}")
    for r in results:
        exit_text = "timed out" if r["exit"] is None else str(r["exit"])
        mark = "" if r["exit"] == r["expected_exit"] else f"  (expected {r['expected_exit']})"
        line = f"  {r['file']:<14}{r['bytes'] / 1024:>9,.0f} KB{r['wall_s']:>10,.2f} s{r['cpu_s']:>10,.2f} s{r['peak_bytes'] / 2**20:>11,.0f} MB  {exit_text:<4}"
        if "libyaml_s" in r:
            line += f"{r['libyaml_s']:>12,.2f} s{r['cpu_s'] / r['libyaml_s']:>14,.1f}x"
            line += f"{r['ruamel_s']:>13,.2f} s{r['ruamel_s'] / r['cpu_s']:>13,.1f}x" if "ruamel_s" in r else f"{'skipped':>15}"
        print(line + mark)
    print("  CPU / libyaml: validate's CPU time (load, positions, every check) over PyYAML's CSafeLoader load of the same file.")
    print("  ruamel / CPU: the ruamel round-trip load alone over validate's CPU time (above 1: validate is faster).")
    bad = [r for r in results if r["exit"] != r["expected_exit"]]
    for r in bad:
        print(f"  ! {r['file']}: " + " | ".join(r["stderr"]))
    if args.json:
        print(json.dumps({"machine": {"cpu_count": os.cpu_count(), "python": platform.python_version()},
                          "results": results}, indent=2))
    return 1 if bad else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
