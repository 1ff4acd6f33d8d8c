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
    def record(self, run: dict[str, Any] | None, tasks: list[dict[str, Any]]) -> None: ...


class Recorder:
    def __init__(self, store: RecordStore, *, interval: float = 0.01, max_rows: int = 2000) -> None:
        self.store = store
        self.interval = interval
        self.max_rows = max_rows
        self._tasks: dict[tuple[str, int], dict[str, Any]] = {}
        self._runs: dict[str, dict[str, Any]] = {}
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
            if not self._tasks and not self._runs and self._taken == self._written:
                return
            target = self._taken + (1 if (self._tasks or self._runs) else 0)
            self._lock.notify_all()
            self._lock.wait_for(lambda: self._written >= target or self._closed, timeout)

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._closed or self._tasks or self._runs, timeout=self.interval)
                if self._closed and not self._tasks and not self._runs:
                    return
                tasks, self._tasks = list(self._tasks.values()), {}
                runs, self._runs = list(self._runs.values()), {}
                if not tasks and not runs:
                    continue
                self._taken += 1
            try:
                if runs:
                    for i, run in enumerate(runs):
                        self.store.record(run, tasks if i == 0 else [])
                else:
                    self.store.record(None, tasks)
            except Exception:  # a failed batch must not kill the writer; it is logged loudly
                log.exception("writing %d task and %d run rows failed", len(tasks), len(runs))
            with self._lock:
                self._written += 1
                self._lock.notify_all()
