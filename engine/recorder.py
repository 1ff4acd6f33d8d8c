"""The recorder: run and task rows written behind the hot path, coalesced, in batches.

Workers hand over row changes and go on; one writer thread merges the changes to the same
row and writes them in one transaction every few milliseconds. A step that finishes within
one batch is written once, not three times (queued, running, finished). `flush()` waits
until everything handed over so far is committed: the engine calls it before it reports a
run as ended, so a reader never sees a finished run with unfinished tasks.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

log = logging.getLogger("legion.recorder")


class RecordStore(Protocol):
    def record(self, run: dict[str, Any] | None, tasks: list[dict[str, Any]],
               logs: list[dict[str, Any]] | None = None) -> None: ...


class Recorder:
    def __init__(self, store: RecordStore, *, interval: float = 0.01, max_rows: int = 2000) -> None:
        self.store = store
        self.interval = interval
        self.max_rows = max_rows
        self._tasks: dict[tuple[str, int], dict[str, Any]] = {}
        self._runs: dict[str, dict[str, Any]] = {}
        self._logs: list[dict[str, Any]] = []
        self._lock = threading.Condition()
        self._written = 0  # batches committed
        self._taken = 0  # batches taken by the writer
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="legion-recorder", daemon=True)
        self._thread.start()

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

    def flush(self, timeout: float = 30.0) -> None:
        """Block until everything handed over before this call is committed."""
        with self._lock:
            if not self._pending() and self._taken == self._written:
                return
            target = self._taken + (1 if self._pending() else 0)
            self._lock.notify_all()
            self._lock.wait_for(lambda: self._written >= target or self._closed, timeout)

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._thread.join(timeout=5)

    def _pending(self) -> bool:
        return bool(self._tasks or self._runs or self._logs)

    def _loop(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._closed or self._pending(), timeout=self.interval)
                if self._closed and not self._pending():
                    return
                tasks, self._tasks = list(self._tasks.values()), {}
                runs, self._runs = list(self._runs.values()), {}
                logs, self._logs = self._logs, []
                if not tasks and not runs and not logs:
                    continue
                self._taken += 1
            try:
                # One transaction for the batch; runs beyond the first get one each (a run
                # row is keyed by its id, so each needs its own UPDATE anyway).
                first, rest = (runs[0], runs[1:]) if runs else (None, [])
                self.store.record(first, tasks, logs)
                for run in rest:
                    self.store.record(run, [])
            except Exception:  # a failed batch must not kill the writer; it is logged loudly
                log.exception("writing %d task, %d run and %d log rows failed", len(tasks), len(runs), len(logs))
            with self._lock:
                self._written += 1
                self._lock.notify_all()
