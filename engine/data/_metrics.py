"""What `/metrics` reports from the database: runs and step runs by status, and how long the
step runs that finished took, as a cumulative histogram (one statement each)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, literal_column, select

from legion.engine.data._base import StoreBase
from legion.engine.data.models import runs
from legion.engine.data.models import tasks as task_table

# Seconds: the histogram's upper bounds (Prometheus `le`), fit for steps from a no-op to minutes.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class MetricsStore(StoreBase):
    def counts_by_status(self) -> dict[str, dict[str, int]]:
        """{"runs": {status: n}, "tasks": {status: n}}."""
        with self._read() as conn:
            found = {}
            for name, table in (("runs", runs), ("tasks", task_table)):
                query = select(table.c.status, func.count()).group_by(table.c.status)
                found[name] = {str(status): int(n) for status, n in conn.execute(query)}
            return found

    def step_durations(self, buckets: Sequence[float] = BUCKETS) -> dict[str, Any]:
        """{"buckets": [(le, count of step runs that took at most le seconds)], "sum", "count"}
        over every step run that started and finished."""
        seconds = _seconds(self._engine.dialect.name, task_table.c.started_at, task_table.c.finished_at)
        columns = [func.sum(case((seconds <= bound, 1), else_=0)) for bound in buckets]
        query = (select(func.count(), func.sum(seconds), *columns)
                 .where(task_table.c.started_at.is_not(None), task_table.c.finished_at.is_not(None)))
        with self._read() as conn:
            count, total, *within = conn.execute(query).one()
        return {"buckets": [(bound, int(n or 0)) for bound, n in zip(buckets, within, strict=True)],
                "sum": float(total or 0.0), "count": int(count or 0)}


def _seconds(dialect: str, start: Any, end: Any) -> Any:
    if dialect == "postgresql":
        return func.extract("epoch", end - start)
    if dialect in ("mysql", "mariadb"):
        return func.timestampdiff(literal_column("MICROSECOND"), start, end) / 1e6
    return (func.julianday(end) - func.julianday(start)) * 86400.0
