"""The recorder: run and task rows written behind the hot path, coalesced, in batches.

Workers hand over row changes and go on; one writer thread merges the changes to the same
row and writes them in one transaction every few milliseconds. A step that finishes within
one batch is written once, not three times (queued, running, finished). `flush()` waits
until everything handed over so far is committed: the engine calls it before it reports a
run as ended, so a reader never sees a finished run with unfinished tasks.

One bad row must not cost the others. When a batch fails, it is written again item by item
(each task row, each run row, each log entry in a transaction of its own); an item that
still fails is tried once more scrubbed (see `scrub`), and only if that fails too is it
dropped, with an error log naming its run and step run number. A batch that fails because
the database is unavailable is retried whole first; if the database stays unavailable, what
is left of the batch is dropped, logged the same way, rather than tried row by row.

A run that lost a task or run row is never recorded as `succeeded`: the recorder tells the
engine (`on_lost`), which stops the run as failed with `RecordLost`, and any later row
saying it succeeded is written as failed, with that error, instead.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from legion.engine.errors import ServiceUnavailable
from legion.engine.secrets import MASKER

log = logging.getLogger("legion.recorder")

# Pauses before writing a batch again whole after ServiceUnavailable (a deadlock, a lost
# connection, a lock wait that timed out): such failures are usually over at the next try.
RETRY_DELAYS = (0.05, 0.5)
# Items in a row that fail both tries with ServiceUnavailable before the database is taken to
# be down and the rest of the batch is dropped (each try may wait out a lock or connect
# timeout, so trying every row of a large batch would stall the writer for hours).
DOWN_AFTER = 3
# Characters no backend can store in text: NUL (PostgreSQL) and lone surrogates (no UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# The fields of task, run and log rows where a secret value may show up (spec section 7): they
# are masked before any row is written, so the database never holds a known secret.
TASK_MASKED = ("args", "result", "error")
RUN_MASKED = ("input", "output", "error", "state")
LOG_MASKED = ("message", "data")


class RecordStore(Protocol):
    def record(self, run: dict[str, Any] | list[dict[str, Any]] | None, tasks: list[dict[str, Any]],
               logs: list[dict[str, Any]] | None = None) -> None: ...


def scrub(value: Any) -> Any:
    """`value` with what databases refuse replaced, everything else kept: in every string
    (dict keys included) NUL and lone surrogates become U+FFFD; every non-finite float (NaN,
    infinity) becomes None. Lists, tuples and dicts are copied; the input is not changed."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


class Recorder:
    def __init__(self, store: RecordStore, *, interval: float = 0.01, max_rows: int = 2000,
                 retry_delays: Sequence[float] = RETRY_DELAYS, on_lost: Callable[[str, str], None] | None = None) -> None:
        self.store = store
        self.on_lost = on_lost
        self._lost: dict[str, str] = {}  # run id -> why a row of it was dropped (only touched by the writer)
        self.interval = interval
        self.max_rows = max_rows
        self.retry_delays = tuple(retry_delays)
        self._tasks: dict[tuple[str, int], dict[str, Any]] = {}
        self._runs: dict[str, dict[str, Any]] = {}
        self._logs: list[dict[str, Any]] = []
        self._states: dict[str, Callable[[], dict[str, Any]]] = {}  # run id -> its state's snapshot
        self._lock = threading.Condition()
        self._written = 0  # batches finished: committed, or what failed of them dropped
        self._taken = 0  # batches taken by the writer
        self._lossy: deque[int] = deque(maxlen=1024)  # numbers of the batches that dropped rows
        self._dropped = 0
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="legion-recorder", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        """Rows (task, run and log) dropped so far because they could not be written."""
        with self._lock:
            return self._dropped

    def task(self, row: dict[str, Any]) -> None:
        key = (row["run_id"], row["number"])
        with self._lock:
            current = self._tasks.get(key)
            if current is None:
                self._tasks[key] = dict(row)
            else:
                current.update(row)
            if len(self._tasks) >= self.max_rows:
                self._lock.notify_all()

    def log(self, entry: dict[str, Any]) -> None:
        """A task log entry {run_id, number, at, level, message, data?}."""
        with self._lock:
            self._logs.append(entry)

    def run(self, row: dict[str, Any]) -> None:
        with self._lock:
            current = self._runs.get(row["id"])
            if current is None:
                self._runs[row["id"]] = dict(row)
            else:
                current.update(row)

    def state(self, run_id: str, snapshot: Callable[[], dict[str, Any]]) -> None:
        """The run's state changed: the next batch writes what `snapshot()` gives then (taken
        before the batch's rows, so the rows written are never behind the state written)."""
        with self._lock:
            self._states[run_id] = snapshot

    def flush(self, timeout: float = 30.0) -> bool:
        """Block until everything handed over before this call is written. True when all of it
        was committed; False when some of it had to be dropped (each logged as an error) or
        `timeout` seconds passed first (logged as a warning)."""
        with self._lock:
            start = self._written
            target = self._taken + (1 if self._pending() else 0)
            if target == start:
                return True
            self._lock.notify_all()
            self._lock.wait_for(lambda: self._written >= target or self._closed, timeout)
            if self._written < target:
                log.warning("the recorder did not write everything within %gs; readers may see stale runs and tasks",
                            timeout)
                return False
            return not any(start < batch <= target for batch in self._lossy)

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._thread.join(timeout=5)

    def _pending(self) -> bool:
        return bool(self._tasks or self._runs or self._logs or self._states)

    def _loop(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._closed or self._pending(), timeout=self.interval)
                if self._closed and not self._pending():
                    return
                if not self._pending():
                    continue
                states, self._states = self._states, {}
                # This batch's number, taken with what it takes: a flush from now on waits for
                # it, and for the next batch when more is handed over meanwhile (a state that
                # changes after its snapshot below is taken is written by that next batch).
                self._taken += 1
            snapshots = {}
            for run_id, snapshot in states.items():  # each takes its run's lock: never with this lock held
                try:
                    snapshots[run_id] = snapshot()
                except Exception:
                    log.exception("taking the state of run %s failed; it is written with the next change", run_id)
            with self._lock:
                for run_id, state in snapshots.items():
                    self._runs.setdefault(run_id, {"id": run_id})["state"] = state
                tasks, self._tasks = list(self._tasks.values()), {}
                runs, self._runs = list(self._runs.values()), {}
                logs, self._logs = self._logs, []
                if not tasks and not runs and not logs:
                    self._written += 1
                    self._lock.notify_all()
                    continue
            dropped = 0
            lost_before = len(self._lost)
            try:
                if MASKER.active:  # here in the writer thread, off the workers' path
                    tasks = [MASKER.mask_fields(t, TASK_MASKED) for t in tasks]
                    runs = [MASKER.mask_fields(r, RUN_MASKED) for r in runs]
                    logs = [MASKER.mask_fields(e, LOG_MASKED) for e in logs]
                dropped = self._write(runs, tasks, logs)
            except Exception as exc:  # a bug here must not kill the writer (or hang flush)
                dropped = len(tasks) + len(runs) + len(logs)
                for kind, item in [("task", t) for t in tasks] + [("run", r) for r in runs]:
                    self._mark_lost(kind, item, exc)
                log.exception("writing %d task, %d run and %d log rows failed; they were dropped",
                              len(tasks), len(runs), len(logs))
            if len(self._lost) > lost_before and self.on_lost is not None:
                for run_id, reason in list(self._lost.items())[lost_before:]:
                    try:
                        self.on_lost(run_id, reason)
                    except Exception:
                        log.exception("stopping run %s after a lost record failed", run_id)
            with self._lock:
                self._written += 1
                if dropped:
                    self._dropped += dropped
                    self._lossy.append(self._written)
                self._lock.notify_all()

    # -- writing a batch --------------------------------------------------------------------

    def _write(self, runs: list[dict[str, Any]], tasks: list[dict[str, Any]], logs: list[dict[str, Any]]) -> int:
        """Write a batch; the number of rows dropped."""
        # One transaction for the batch: a run's state is never written without its rows.
        runs = [self._honest(run) for run in runs]
        error = self._attempt(lambda: self.store.record(runs, tasks, logs))
        items: list[tuple[str, dict[str, Any]]] = []
        if error is not None:
            log.warning("writing %d task, %d run and %d log rows in one transaction failed (%s); writing them one by one",
                        len(tasks), len(runs), len(logs), _describe(error))
            # Tasks first, runs after their tasks, logs after the tasks they belong to.
            items = [("task", t) for t in tasks] + [("run", run) for run in runs] + [("log", e) for e in logs]
        return self._write_items(items) if items else 0

    def _attempt(self, write: Callable[[], None]) -> Exception | None:
        """Run `write` (a whole batch), again after a pause while it fails with
        ServiceUnavailable; the error it finally failed with, or None. (An item on its own is
        not retried so: it is tried as it is and then scrubbed, see `_write_item`.)"""
        delays = iter(self.retry_delays)
        while True:
            try:
                write()
                return None
            except ServiceUnavailable as exc:
                delay = next(delays, None)
                if delay is None:
                    return exc
                time.sleep(delay)
            except Exception as exc:
                return exc

    def _write_items(self, items: list[tuple[str, dict[str, Any]]]) -> int:
        dropped = 0
        down = 0  # consecutive items that failed with ServiceUnavailable both ways
        for i, (kind, item) in enumerate(items):
            error = self._write_item(kind, item)
            if error is None:
                down = 0
                continue
            dropped += 1
            self._mark_lost(kind, item, error)
            log.error("dropped the %s: %s", _name(kind, item), _describe(error))
            down = down + 1 if isinstance(error, ServiceUnavailable) else 0
            if down >= DOWN_AFTER and i + 1 < len(items):
                left = items[i + 1:]
                dropped += len(left)
                for k, it in left:
                    self._mark_lost(k, it, error)
                log.error("the database is unavailable (%s); dropped %d more row(s) of run(s) %s", _describe(error),
                          len(left), ", ".join(sorted({_run_id(k, it) for k, it in left})))
                break
        return dropped

    def _honest(self, run: dict[str, Any]) -> dict[str, Any]:
        """A run row as it may be written: one that lost a row never says it succeeded."""
        reason = self._lost.get(str(run.get("id")))
        return run if reason is None or run.get("status") != "succeeded" else _never_succeeded(run, reason)

    def _mark_lost(self, kind: str, item: dict[str, Any], error: Exception) -> None:
        if kind != "log":  # a lost log line is logged; a lost task or run row stops the run
            self._lost.setdefault(_run_id(kind, item), f"{_name(kind, item)} could not be written: {_describe(error)}")

    def _write_item(self, kind: str, item: dict[str, Any]) -> Exception | None:
        """Write one item on its own, then scrubbed; None when either worked, else the error
        of the second try."""
        try:
            self._record(kind, item)
            return None
        except Exception as exc:
            error = exc
        clean = scrub(item)
        try:
            self._record(kind, clean)
        except Exception as exc:
            return exc
        if clean == item:  # nothing to scrub: the first failure was passing
            log.warning("wrote the %s at the second try; the first failed: %s", _name(kind, item), _describe(error))
        else:
            log.warning("wrote the %s scrubbed (NUL and lone surrogates in strings replaced by U+FFFD, NaN and "
                        "infinity by null) after it failed: %s", _name(kind, item), _describe(error))
        return None

    def _record(self, kind: str, item: dict[str, Any]) -> None:
        if kind == "run":
            item = self._honest(item)
        if kind == "task":
            self.store.record(None, [item])
        elif kind == "run":
            self.store.record(item, [])
        else:
            self.store.record(None, [], [item])


def _never_succeeded(row: dict[str, Any], reason: str) -> dict[str, Any]:
    return dict(row, status="failed", error={"type": "RecordLost", "step": None,
                                             "message": f"part of this run's record was lost ({reason})"})


def _run_id(kind: str, item: dict[str, Any]) -> str:
    return str(item.get("id") if kind == "run" else item.get("run_id"))


def _name(kind: str, item: dict[str, Any]) -> str:
    if kind == "run":
        return f"row of run {item.get('id')} (status {item.get('status')!r})"
    what = "row of step run" if kind == "task" else "log entry of step run"
    return f"{what} {item.get('number')} of run {item.get('run_id')}"


def _describe(exc: Exception) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
