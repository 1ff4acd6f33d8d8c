"""The probe extension the multi-process tests install: functions whose calls leave a line
(`name pid`) in a file, so a test counts side effects across processes, and whose behaviour a
test steers with files."""

from __future__ import annotations

from pathlib import Path

PROBE = '''
"""Functions whose calls leave a line in a file."""

import os
import signal
import time

from legion.sdk import Context, Failure


def _note(log: str, name: str) -> None:
    with open(log, "a") as f:
        f.write(f"{name} {os.getpid()}\\n")
        f.flush()
        os.fsync(f.fileno())


def mark(name: str, log: str) -> str:
    """Note the call, return `name`.

    Args:
        name: what to note
        log: the file
    """
    _note(log, name)
    return name


def nap(name: str, log: str, seconds: float) -> str:
    """Note the call, sleep `seconds`, return `name`.

    Args:
        name: what to note
        log: the file
        seconds: how long to sleep
    """
    _note(log, name)
    time.sleep(seconds)
    return name


def poison(name: str, log: str, flag: str) -> str:
    """Note the call; while the file `flag` exists, kill the worker process running it.

    Args:
        name: what to note
        log: the file
        flag: while it exists, the call kills its process
    """
    _note(log, name)
    if os.path.exists(flag):
        os.kill(os.getpid(), signal.SIGKILL)
    return name


def broken(name: str, log: str, flag: str) -> str:
    """Note the call; fail while the file `flag` exists.

    Args:
        name: what to note
        log: the file
        flag: while it exists, the call fails
    """
    _note(log, name)
    if os.path.exists(flag):
        raise Failure("still broken")
    return name


def once(name: str, log: str, flag: str) -> str:
    """Note the call; fail the first time (while `flag` does not exist), then return `name`.

    Args:
        name: what to note
        log: the file
        flag: a file made by the first call
    """
    _note(log, name)
    if not os.path.exists(flag):
        open(flag, "w").close()
        raise Failure("the first attempt fails")
    return name


def die(name: str, log: str) -> str:
    """Note the call, then kill the process running it.

    Args:
        name: what to note
        log: the file
    """
    _note(log, name)
    os.kill(os.getpid(), 9)
    return name


def linger(name: str, log: str, *, ctx: Context | None = None) -> str:
    """Note the call; wait up to 60 s, or until the step run is interrupted (then note that).

    Args:
        name: what to note
        log: the file
    """
    _note(log, name)
    assert ctx is not None
    if ctx.wait(60):
        _note(log, name + "-interrupted")
    return name


def hold(name: str, log: str, gate: str) -> str:
    """Note the call; return once the file `gate` exists (at most 60 s).

    Args:
        name: what to note
        log: the file
        gate: the file that releases the call
    """
    _note(log, name)
    deadline = time.monotonic() + 60
    while not os.path.exists(gate):
        if time.monotonic() > deadline:
            raise Failure("the test never released the step")
        time.sleep(0.05)
    return name
'''


def calls(log: Path) -> list[tuple[str, int]]:
    """The probe functions' calls: (name, pid of the process that made it)."""
    if not log.exists():
        return []
    return [(name, int(pid)) for name, pid in (line.split() for line in log.read_text().splitlines() if line.strip())]


def names(log: Path) -> list[str]:
    return [name for name, _ in calls(log)]
