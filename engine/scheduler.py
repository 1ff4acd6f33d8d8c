"""The scheduler: fires `on.schedule` entries.

One thread, ticking every second; the policies (overlap, missed slots, `every` anchoring)
are in `legion.engine.schedules`.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from legion.dsl.errors import LegionError
from legion.engine.runstate import FINAL_RUN_STATUSES
from legion.engine.schedules import next_fire

log = logging.getLogger("legion.scheduler")


class Scheduler:
    def __init__(self, engine: Any, store: Any, *, tick: float = 1.0) -> None:
        self.engine = engine
        self.store = store
        self.tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="legion-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.run_due(datetime.now(UTC))
            except Exception:
                log.exception("scheduler tick failed")

    def _still_going(self, run_id: str | None) -> bool:
        """Whether a schedule's previous run has not ended. The store says so for runs of any
        process (several schedulers may share a deployment); this engine's memory for its own
        runs whose final row is still being written."""
        if not run_id:
            return False
        if not self.engine.shared and run_id in self.engine.runs:
            return True
        try:
            return self.store.get_run(run_id)["status"] not in FINAL_RUN_STATUSES
        except LegionError:  # purged, or never written: nothing to overlap
            return False

    def run_due(self, now: datetime) -> list[str]:
        """Start a run for every due schedule entry; returns the run ids started."""
        started = []
        for entry in self.store.due_schedules(now):
            following = next_fire(entry["kind"], entry["expression"], entry.get("tz"), now)
            previous = entry.get("last_run_id")
            overlapping = self._still_going(previous)
            # Claim the slot first: of several schedulers, exactly one starts the run.
            if not self.store.mark_fired(entry["id"], now, following, previous if overlapping else None,
                                         expected_next_fire_at=entry["next_fire_at"]):
                continue
            if overlapping:
                log.info("schedule %s#%s: the previous run %s is still going; slot skipped",
                         entry["chain_name"], entry["entry_index"], previous)
                continue
            try:
                run_id = self.engine.submit(entry["chain_name"], dict(entry.get("input") or {}), trigger="schedule")
            except LegionError as exc:
                log.warning("schedule %s#%s did not start: %s", entry["chain_name"], entry["entry_index"], exc.message)
                continue
            self.store.mark_fired(entry["id"], now, following, run_id)
            started.append(run_id)
        return started
