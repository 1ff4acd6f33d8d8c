"""Running `legion` as a user does, for the CLI tests: subprocesses, a fresh LEGION_HOME, and
extension packages installed on PYTHONPATH with an entry point, as pip would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LEGION = [sys.executable, "-m", "legion.engine.cli.main"]


def legion(home: Path, *args: str, cwd: Path | None = None, check: int | None = 0, env: Mapping[str, str] | None = None,
           input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `legion ARGS` with LEGION_HOME=home; `check` is the exit code expected (None: any)."""
    full_env = dict(os.environ, LEGION_HOME=str(home))
    full_env.pop("LEGION_DATABASE_URL", None)
    full_env.update(env or {})
    proc = subprocess.run([*LEGION, *args], capture_output=True, text=True, env=full_env, cwd=cwd or ROOT, timeout=120,
                          input=input if input is not None else "")
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    """--json prints exactly one JSON document and nothing else."""
    return json.loads(proc.stdout)


def install_extension(site: Path, name: str, runners: Mapping[str, str], *, init: str | None = None) -> dict[str, str]:
    """An extension package `legion_<name>` with the given runner modules (name -> source),
    registered in the `legion.extensions` entry-point group through a dist-info in `site`.
    `init` replaces the package's `__init__.py` (to make it fail to load). Returns the env
    that puts `site` on PYTHONPATH."""
    package = site / f"legion_{name}"
    (package / "runners").mkdir(parents=True)
    modules = ", ".join(runners)
    (package / "__init__.py").write_text(init if init is not None else (
        "from legion.engine.sdk import Extension\n"
        f"from legion_{name}.runners import {modules}\n"
        f"extension = Extension({name!r}, runners=[{modules}], description='test extension {name}')\n"))
    (package / "runners" / "__init__.py").write_text("")
    for module, source in runners.items():
        (package / "runners" / f"{module}.py").write_text(source)
    info = site / f"legion_{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: legion-{name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[legion.extensions]\n{name} = legion_{name}:extension\n")
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)}


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "the condition") -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:g}s"
        time.sleep(0.1)
