"""Run and step changes since a moment, read from the database: what `/api/events` streams,
whichever process made them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from legion.engine.data._base import StoreBase
from legion.engine.data.models import runs
from legion.engine.data.models import tasks as task_table

CHANGES_LIMIT = 500  # rows of each kind read per call


class EventStore(StoreBase):
    def changes_since(self, after: datetime) -> list[dict[str, Any]]:
        """Events of what changed after `after`, oldest first: `run.created`, `run.started`,
        `run.ended`, `step.started`, `step.finished`, each {event, at, run_id, ...}."""
        run_columns = (runs.c.id, runs.c.chain_name, runs.c.status, runs.c.trigger, runs.c.created_at, runs.c.started_at,
                       runs.c.ended_at)
        task_columns = (task_table.c.id, task_table.c.run_id, task_table.c.number, task_table.c.step, task_table.c.status,
                        task_table.c.attempt, task_table.c.item_index, task_table.c.started_at, task_table.c.finished_at)
        run_query = (select(*run_columns).where(or_(runs.c.created_at > after, runs.c.started_at > after, runs.c.ended_at > after))
                     .limit(CHANGES_LIMIT))
        task_query = (select(*task_columns).where(or_(task_table.c.started_at > after, task_table.c.finished_at > after))
                      .limit(CHANGES_LIMIT))
        events: list[dict[str, Any]] = []
        with self._read() as conn:
            for r in conn.execute(run_query).mappings():
                base = {"run_id": r["id"], "chain": r["chain_name"], "trigger": r["trigger"]}
                for kind, at in (("run.created", r["created_at"]), ("run.started", r["started_at"]), ("run.ended", r["ended_at"])):
                    if at is not None and at > after:
                        events.append(dict(base, event=kind, at=at, **({"status": r["status"]} if kind == "run.ended" else {})))
            for t in conn.execute(task_query).mappings():
                base = {"run_id": t["run_id"], "task_id": t["id"], "number": t["number"], "step": t["step"],
                        "attempt": t["attempt"], "index": t["item_index"]}
                if t["started_at"] is not None and t["started_at"] > after:
                    events.append(dict(base, event="step.started", at=t["started_at"]))
                if t["finished_at"] is not None and t["finished_at"] > after:
                    events.append(dict(base, event="step.finished", at=t["finished_at"], status=t["status"]))
        events.sort(key=lambda e: (e["at"], e["event"] != "run.created", e["event"] == "run.ended"))
        return events
