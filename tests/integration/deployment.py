"""A shared Legion deployment for the multi-process tests: a RabbitMQ vhost of its own, a
fresh database (PostgreSQL or MariaDB), `legion` worker and scheduler processes, and the CLI.

Every deployment gets its own vhost, so its workers never take the messages of another test's
deployment (the runner queues, `lex.core.util` and the rest, have the same names in all of
them), and removing the vhost removes every queue it declared.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cli.cli_helpers import LEGION, ROOT, install_extension
from probe import PROBE
from services import create_database, drop_database, unreachable
from sqlalchemy.exc import DBAPIError

from legion.engine.data.store import Store

# Seconds a worker holds a step run without renewing its lease: short, so that a killed
# worker's step run is queued again within seconds.
STEP_LEASE = 3
AMQP_BASE = os.environ.get("LEGION_TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")
AMQP_USER = "guest"



def rabbitmqctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        unreachable("rabbitmqctl is not installed: the distributed tests make a RabbitMQ vhost per deployment")
    proc = subprocess.run([tool, *args], capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        unreachable(f"rabbitmqctl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return proc


class Deployment:
    """One shared deployment; `close()` stops its processes (by PID) and removes its
    database and vhost."""

    def __init__(self, tmp: Path, backend: str, *, probe: bool = True) -> None:
        self.tmp, self.backend = tmp, backend
        self.home = tmp / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.procs: list[tuple[str, subprocess.Popen[str]]] = []
        self.vhost: str | None = None
        self.db_url: str | None = None
        self.store: Store | None = None
        self._names: dict[str, int] = {}
        try:
            self.db_url = create_database(backend, prefix="legion_dist")
        except DBAPIError as exc:
            unreachable(f"{backend} is unreachable: {exc.orig}")
        vhost = f"legion-test-{secrets.token_hex(4)}"
        rabbitmqctl("add_vhost", vhost)
        self.vhost = vhost
        rabbitmqctl("set_permissions", "-p", vhost, AMQP_USER, ".*", ".*", ".*")
        self.amqp_url = f"{AMQP_BASE}/{quote(vhost, safe='')}"
        self.env = dict(os.environ, LEGION_HOME=str(self.home), LEGION_AMQP_URL=self.amqp_url,
                        LEGION_DATABASE_URL=self.db_url, LEGION_SECRET_TOKEN_KEY="distributed-tests-key",
                        LEGION_STEP_LEASE=str(STEP_LEASE))
        self.env.pop("LEGION_WORKERS", None)
        if probe:
            self.env.update(install_extension(tmp / "site", "probe", {"probe": PROBE}))

    # -- the CLI --------------------------------------------------------------------------

    def legion(self, *args: str, check: int | None = 0, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*LEGION, *args], capture_output=True, text=True, env=self.env, cwd=ROOT, timeout=timeout,
                              input="")
        if check is not None:
            assert proc.returncode == check, (f"legion {' '.join(args)}: exit {proc.returncode}\nstdout:\n{proc.stdout}\n"
                                              f"stderr:\n{proc.stderr}\n{self.logs()}")
        return proc

    def data(self, *args: str, check: int | None = 0) -> Any:
        """`legion ARGS --json`'s data."""
        return json.loads(self.legion(*args, "--json", check=check).stdout)["data"]

    def apply(self, *paths: Path) -> None:
        self.legion("chain", "apply", *map(str, paths))
        self.store = self.store or Store(self.db_url or "")

    def run_chain(self, chain: str, input: Mapping[str, Any] | None = None, timeout: float = 120) -> dict[str, Any]:
        """`legion chain run CHAIN --json`: the run, its tasks and trace, once it ended."""
        proc = self.legion(*self._run_args(chain, input), check=None, timeout=timeout)
        assert proc.returncode in (0, 1), f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}\n{self.logs()}"
        return dict(json.loads(proc.stdout)["data"])

    def _run_args(self, chain: str, input: Mapping[str, Any] | None) -> list[str]:
        args = ["chain", "run", chain, "--json"]
        if input is not None:
            path = self.tmp / f"input-{secrets.token_hex(3)}.json"
            path.write_text(json.dumps(dict(input)))
            args += ["--input-json", str(path)]
        return args

    def submit(self, chain: str, input: Mapping[str, Any] | None = None) -> str:
        """Start a run of `chain` (`legion chain run` in the background, which waits for it);
        the run's id, once its row exists."""
        assert self.store is not None, "apply the chains first"
        before = {r["id"] for r in self.store.list_runs(chain=chain)}
        label = f"run-{chain}-{secrets.token_hex(2)}"
        out = (self.tmp / f"{label}.log").open("w")
        proc = subprocess.Popen([*LEGION, *self._run_args(chain, input)], env=self.env, cwd=self.tmp, stdout=out,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        out.close()
        self.procs.append((label, proc))
        deadline = time.monotonic() + 60
        while True:
            new = [r["id"] for r in self.store.list_runs(chain=chain) if r["id"] not in before]
            if new:
                return str(new[0])
            assert proc.poll() is None or proc.returncode in (0, 1), f"{label} exited {proc.returncode}\n{self.log_of(label)}"
            assert time.monotonic() < deadline, f"no run of {chain} started within 60s\n{self.logs()}"
            time.sleep(0.05)

    # -- processes ------------------------------------------------------------------------

    def start(self, role: str = "worker", workers: int = 2, name: str | None = None) -> subprocess.Popen[str]:
        """`legion start --role ROLE --no-apply`; its output goes to NAME.log in the test's
        folder (every log is shown when a CLI assertion fails)."""
        base = name or role
        self._names[base] = self._names.get(base, 0) + 1
        label = f"{base}-{self._names[base]}"
        out = (self.tmp / f"{label}.log").open("w")
        args = [*LEGION, "start", "--role", role, "--no-apply"] + (["--workers", str(workers)] if role != "scheduler" else [])
        proc = subprocess.Popen(args, env=self.env, cwd=self.tmp, stdout=out, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        out.close()
        self.procs.append((label, proc))
        return proc

    def wait_up(self, count: int, timeout: float = 60) -> None:
        """Until `count` processes are consuming (their consumers are on the runner queues)."""
        deadline = time.monotonic() + timeout
        while True:
            for label, proc in self.procs:
                if proc.poll() is not None and proc.returncode not in (-signal.SIGKILL,):
                    raise AssertionError(f"{label} exited with {proc.returncode}\n{self.logs()}")
            up = sum(1 for _, p in self.procs if p.poll() is None)
            started = sum(1 for label, p in self.procs if p.poll() is None and "legion started on" in self.log_of(label))
            if started >= count and up >= count:
                return
            assert time.monotonic() < deadline, f"{count} processes did not start within {timeout:g}s\n{self.logs()}"
            time.sleep(0.1)

    def log_of(self, label: str) -> str:
        path = self.tmp / f"{label}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self, tail: int = 4000) -> str:
        return "\n".join(f"--- {label} (exit {proc.poll()}):\n{self.log_of(label)[-tail:]}" for label, proc in self.procs)

    def stop(self, proc: subprocess.Popen[str], timeout: float = 30) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)

    def kill(self, proc: subprocess.Popen[str]) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    # -- reading ----------------------------------------------------------------------------

    def run(self, run_id: str) -> dict[str, Any]:
        assert self.store is not None
        return self.store.get_run(run_id)

    def tasks(self, run_id: str) -> list[dict[str, Any]]:
        assert self.store is not None
        return self.store.run_tasks(run_id)

    def wait_ended(self, run_id: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            row = self.run(run_id)
            if row["status"] in ("succeeded", "failed", "canceled"):
                return row
            assert time.monotonic() < deadline, (f"run {run_id} did not end within {timeout:g}s (it is {row['status']}; "
                                                 f"tasks {[(t['step'], t['status']) for t in self.tasks(run_id)]})\n{self.logs()}")
            time.sleep(0.1)

    # -- the end ------------------------------------------------------------------------------

    def close(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for _, proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        if self.store is not None:
            self.store.close()
        if self.db_url is not None:
            try:
                drop_database(self.backend, self.db_url)
            except DBAPIError:
                pass
        if self.vhost is not None:
            rabbitmqctl("delete_vhost", self.vhost, check=False)


BACKENDS = [pytest.param("postgresql", id="postgresql"), pytest.param("mariadb", id="mariadb")]
