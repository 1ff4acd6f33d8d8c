"""The README's five-minute tour runs as written: its command lines, in order, in a fresh
LEGION_HOME and a working folder holding copies of the repository's chains and conformance
suite. RUN_ID and ID are replaced by real ids from what the earlier commands printed (or, for
a run started in the background, from `legion run list`); the port of the local web server
by a free one."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from cli_helpers import ROOT, wait_for

UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def tour_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## A five-minute tour", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [re.sub(r"\s+#\s.*$", "", line).strip() for line in block.splitlines()]
    return [line for line in lines if line]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    lines = tour_lines()
    assert len(lines) >= 20 and lines[0] == ". .venv/bin/activate", lines
    work = tmp_path / "clone"
    shutil.copytree(ROOT / "chains", work / "chains", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tests" / "conformance", work / "tests" / "conformance")
    bin_dir = Path(sys.executable).parent
    (work / ".venv").symlink_to(bin_dir.parent)
    if not (work / ".venv" / "bin" / "activate").is_file():  # not run from a virtualenv: an equivalent
        (work / ".venv").unlink()
        (work / ".venv" / "bin").mkdir(parents=True)
        (work / ".venv" / "bin" / "activate").write_text(f'export PATH="{bin_dir}:$PATH"\n')
    env = {k: v for k, v in os.environ.items()
           if k not in ("LEGION_DATABASE_URL", "LEGION_AMQP_URL", "LEGION_REDIS_URL", "VAULT_ADDR", "VAULT_TOKEN")}
    env.update(LEGION_HOME=str(tmp_path / "home"), PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
    port = free_port()
    background: list[tuple[str, subprocess.Popen[str]]] = []
    outputs: list[str] = []
    ran: list[str] = []

    def legion_json(*args: str) -> object:
        proc = subprocess.run(["legion", *args, "--json"], capture_output=True, text=True, env=env, cwd=work, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)["data"]

    def run_id() -> str:
        if any("legion " in command and proc.poll() is None for command, proc in background):
            # A run started in the background: the one still running, once it exists.
            running = wait_for(lambda: legion_json("run", "list", "--status", "running"), what="a running run")
            return str(running[0]["id"])  # type: ignore[index]
        found = next((m for out in reversed(outputs) if (m := UUID.search(out))), None)
        assert found is not None, "no run id printed before RUN_ID"
        return found.group(0)

    def task_id() -> str:
        found = next((m for out in reversed(outputs) if (m := re.search(r"^(\d+)\s", out, re.M))), None)
        assert found is not None, "no task id printed before ID"
        return found.group(1)

    try:
        for line in lines:
            line = line.replace("8000", str(port))
            for command in (c.strip() for c in line.split(";")):
                if "RUN_ID" in command:
                    command = command.replace("RUN_ID", run_id())
                if re.search(r"\bID\b", command):
                    command = re.sub(r"\bID\b", task_id(), command)
                if command.endswith("&"):
                    proc = subprocess.Popen(["bash", "-c", command[:-1]], cwd=work, env=env, text=True, start_new_session=True,
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                    background.append((command, proc))
                    if "http.server" in command:
                        wait_for(lambda: listening(port), what=f"the web server on port {port}")
                    ran.append(command)
                    continue
                proc2 = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=180,
                                       stdin=subprocess.DEVNULL)
                assert proc2.returncode == 0, f"`{command}` exited {proc2.returncode}\nstdout:\n{proc2.stdout}\nstderr:\n{proc2.stderr}"
                outputs.append(proc2.stdout)
                ran.append(command)
        # The task started in the background was the one canceled.
        command, sleeper = next((c, p) for c, p in background if "core.util.sleep" in c)
        out, _ = sleeper.communicate(timeout=60)
        assert sleeper.returncode == 1 and "canceled" in out, out
    finally:
        for _, proc in background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # the process group this test started
                proc.wait(timeout=30)
    assert any(c.startswith("legion chain test ") for c in ran) and any(c.startswith("legion run cancel ") for c in ran)
    assert (work / "token.txt").is_file() and (work / "lex-tickets" / "pyproject.toml").is_file()
