"""Start-up time of `legion` commands, against baselines measured in the same invocation.

    .venv/bin/python bench/startup.py [--runs N] [--json]

Each command runs as a subprocess, the way a user runs it, with a fresh temporary
LEGION_HOME and no service settings (the embedded default: SQLite in that home). Baselines:
the bare interpreter (`python -c pass`) and importing the CLI module
(`python -c "import legion.engine.cli.main"`). Every command runs once untimed (to write
bytecode caches), then the commands take turns, N rounds, so that a load spike on the machine
lands on all of them alike. Each run's exit code and output are checked. PYTHONDONTWRITEBYTECODE
is dropped from the commands' environment: what is measured is a warm install, with its
bytecode caches written, as users run it.

`--json` also prints one JSON document with every figure at the end. The exit code is 0 unless
a command failed; a missed target is printed, not an error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ONE_STEP = """\
chain: one
steps:
  hello:
    run: core.util.echo
    with: {message: hi}
"""
# Settings that would take a command off the embedded default, and one that would make every
# run compile Legion's modules again.
DROPPED_SETTINGS = ("LEGION_DATABASE_URL", "LEGION_AMQP_URL", "LEGION_REDIS_URL", "VAULT_ADDR", "VAULT_TOKEN",
                    "PYTHONDONTWRITEBYTECODE")


@dataclass
class Command:
    key: str  # stable id used in the JSON document
    label: str
    argv: list[str]
    home: str  # which LEGION_HOME: "fresh" (no database) or "applied" (the one-step chain applied)
    expect: str = ""  # in its stdout
    target_s: float | None = None  # median wall time
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    error: str | None = None

    def median(self) -> float | None:
        return statistics.median(self.wall) if self.wall else None

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "argv": self.argv, "home": self.home, "runs": len(self.wall),
                "median_s": self.median(), "min_s": min(self.wall) if self.wall else None,
                "cpu_median_s": statistics.median(self.cpu) if self.cpu else None,
                "target_s": self.target_s, "error": self.error}


def legion_argv() -> list[str]:
    """The `legion` console script beside this interpreter, else the CLI module through it."""
    script = Path(sys.executable).with_name("legion")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "legion.engine.cli.main"]


def timed(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall time and CPU time (user + system) of one run of `argv`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done


def failure(done: subprocess.CompletedProcess[str], expect: str) -> str | None:
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return f"exit {done.returncode}: {' | '.join(tail)}"
    if expect and expect not in done.stdout:
        return f"{expect!r} not in the output: {done.stdout.strip()[:200]!r}"
    return None


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f} ms"


def divided(value: float | None, base: float | None) -> float | None:
    return None if value is None or not base else value / base


def above(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else value - base


def ratio(value: float | None, base: float | None) -> str:
    r = divided(value, base)
    return "-" if r is None else f"{r:,.1f}x"


def table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    print("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each command (default 10)")
    parser.add_argument("--json", action="store_true", help="also print one JSON document of all figures at the end")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs: at least 1")

    legion = legion_argv()
    py = sys.executable
    commands = [
        Command("python", "python -c pass (baseline)", [py, "-c", "pass"], "fresh"),
        Command("import_cli", "python -c 'import legion.engine.cli.main' (baseline)",
                [py, "-c", "import legion.engine.cli.main"], "fresh"),
        Command("version", "legion --version", [*legion, "--version"], "fresh", "legion ", target_s=0.15),
        Command("validate", "legion chain validate one.yaml (no database yet)",
                [*legion, "chain", "validate", "one.yaml"], "fresh", "1 chain(s) valid", target_s=0.5),
        Command("validate_db", "legion chain validate one.yaml (database exists)",
                [*legion, "chain", "validate", "one.yaml"], "applied", "1 chain(s) valid"),
        Command("run", "legion chain run one --wait", [*legion, "chain", "run", "one", "--wait"], "applied", "succeeded"),
        Command("lex_list", "legion lex list", [*legion, "lex", "list"], "fresh", "core.util.echo"),
    ]

    began = time.perf_counter()
    load_before = os.getloadavg()[0]
    print("Legion command start-up benchmark")
    print(f"  Machine: {os.cpu_count()} CPU cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}, "
          f"load average {load_before:.2f}.")
    print(f"  Each command: one untimed run, then {args.runs} timed run{'s' if args.runs != 1 else ''} (subprocess wall time, perf_counter), taking turns.")
    tmp = Path(tempfile.mkdtemp(prefix="legion-startup-"))
    try:
        (tmp / "one.yaml").write_text(ONE_STEP, encoding="utf-8")
        base_env = {k: v for k, v in os.environ.items() if k not in DROPPED_SETTINGS}
        envs = {kind: dict(base_env, LEGION_HOME=str(tmp / f"home-{kind}")) for kind in ("fresh", "applied")}
        _, _, done = timed([*legion, "chain", "apply", "one.yaml"], envs["applied"], str(tmp))
        setup_error = failure(done, "one")
        if setup_error:
            print(f"  ! `legion chain apply one.yaml` failed: {setup_error}")

        def once(c: Command, record: bool) -> None:
            wall, cpu, done = timed(c.argv, envs[c.home], str(tmp))
            c.error = c.error or failure(done, c.expect)
            if record:
                c.wall.append(wall)
                c.cpu.append(cpu)
            if c.home == "fresh":  # the next run starts from a fresh home again
                shutil.rmtree(envs["fresh"]["LEGION_HOME"], ignore_errors=True)

        for c in commands:
            once(c, record=False)
        for _ in range(args.runs):
            for c in commands:
                if c.error is None:  # a command that failed once is not timed
                    once(c, record=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    medians = {c.key: c.median() for c in commands}
    python, cli = medians["python"], medians["import_cli"]
    print()
    table(["command", "median", "min", "CPU median", "/ python", "/ import cli", "- python"],
          [[c.label, ms(medians[c.key]), ms(min(c.wall) if c.wall else None),
            ms(statistics.median(c.cpu) if c.cpu else None), ratio(medians[c.key], python), ratio(medians[c.key], cli),
            ms(above(medians[c.key], python))]
           for c in commands])
    print("  `/ python` and `/ import cli`: the median divided by that baseline's median;")
    print("  `- python`: what the command costs above starting the interpreter.")
    for c in commands:
        if c.error:
            print(f"  ! {c.label} failed: {c.error}")

    print("\nTargets (median wall time):")
    checks = []
    for c in commands:
        if c.target_s is None:
            continue
        median = c.median()
        status = "NOT MEASURED" if median is None or c.error else ("MET" if median < c.target_s else "NOT MET")
        checks.append({"command": c.key, "target_s": c.target_s, "median_s": median, "status": status})
        print(f"  {status:<12}  {c.label} under {ms(c.target_s)}: {ms(median)}")
    elapsed = time.perf_counter() - began
    load_after = os.getloadavg()[0]
    print(f"\nDone in {elapsed:,.1f} s; load average {load_after:.2f}.")
    if max(load_before, load_after) > 0.5 * (os.cpu_count() or 1):
        print("  Other work was running: wall times include waiting for a CPU (CPU times do not).")

    if args.json:
        doc = {
            "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                        "load_average": [load_before, load_after]},
            "runs": args.runs,
            "commands": {c.key: c.to_dict() for c in commands},
            "ratios": {key: {"python": divided(m, python), "import_cli": divided(m, cli)} for key, m in medians.items()},
            "targets": checks,
            "elapsed_s": elapsed,
        }
        print(json.dumps(doc, indent=2))
    return 1 if any(c.error for c in commands) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
