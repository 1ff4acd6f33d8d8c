"""Nodes and schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from legion.engine.data import Store
from legion.engine.errors import BadInput, NotFound

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_nodes(store: Store) -> None:
    node = store.upsert_node("n1", hostname="h1", pid=10, version="0.1.0", started_at=T0)
    assert (node["status"], node["started_at"], node["pid"]) == ("up", T0, 10)
    store.upsert_node("n0", hostname="h0", pid=11)
    store.heartbeat("n1", at=T0 + timedelta(seconds=5))
    store.heartbeat("n1", status="draining", at=T0 + timedelta(seconds=9))
    assert [(n["name"], n["status"]) for n in store.list_nodes()] == [("n0", "up"), ("n1", "draining")]
    assert store.list_nodes()[1]["heartbeat_at"] == T0 + timedelta(seconds=9)
    # a restart re-registers under the same name
    again = store.upsert_node("n1", hostname="h1", pid=99, version="0.2.0")
    assert (again["id"], again["pid"], again["status"]) == (node["id"], 99, "up")
    assert len(store.list_nodes()) == 2
    with pytest.raises(NotFound):
        store.heartbeat("ghost")


def entry(expression: str, next_fire_at: datetime, **extra: object) -> dict[str, object]:
    return {"kind": "cron", "expression": expression, "tz": None, "input": {"a": 1}, "next_fire_at": next_fire_at,
            **extra}


def test_schedules_replace_a_chains_entries(store: Store) -> None:
    rows = store.upsert_schedules("alpha", [entry("0 * * * *", T0), entry("*/5 * * * *", T0, tz="Europe/Paris")])
    assert [(r["entry_index"], r["expression"], r["tz"]) for r in rows] == [
        (0, "0 * * * *", None), (1, "*/5 * * * *", "Europe/Paris")
    ]
    store.upsert_schedules("beta", [{"kind": "every", "expression": "30s", "next_fire_at": T0}])
    assert store.mark_fired(rows[0]["id"], T0, T0 + timedelta(hours=1), "run-1")

    # same timing, new input: keeps its place in time; entry 1 removed
    later = T0 + timedelta(days=1)
    rows = store.upsert_schedules("alpha", [entry("0 * * * *", later, input={"a": 2})])
    assert [(r["entry_index"], r["next_fire_at"], r["last_fire_at"], r["input"]) for r in rows] == [
        (0, T0 + timedelta(hours=1), T0, {"a": 2})
    ]
    # new timing: recomputed, history cleared
    rows = store.upsert_schedules("alpha", [entry("30 * * * *", later)])
    assert (rows[0]["next_fire_at"], rows[0]["last_fire_at"], rows[0]["last_run_id"]) == (later, None, None)
    assert [(s["chain_name"], s["entry_index"]) for s in store.list_schedules()] == [("alpha", 0), ("beta", 0)]
    assert [s["kind"] for s in store.list_schedules("beta")] == ["every"]
    assert store.upsert_schedules("alpha", []) == []
    assert [s["chain_name"] for s in store.list_schedules()] == ["beta"]


def test_schedule_entries_are_checked(store: Store) -> None:
    with pytest.raises(BadInput, match="next_fire_at"):
        store.upsert_schedules("alpha", [{"kind": "cron", "expression": "* * * * *"}])
    with pytest.raises(BadInput, match="kind"):
        store.upsert_schedules("alpha", [entry("* * * * *", T0, kind="sometimes")])


def test_due_schedules_and_mark_fired(store: Store) -> None:
    store.upsert_schedules("alpha", [entry("a", T0), entry("b", T0 + timedelta(minutes=1)),
                                     entry("c", T0 - timedelta(minutes=1), active=False)])
    due = store.due_schedules(T0)
    assert [s["expression"] for s in due] == ["a"]
    assert [s["expression"] for s in store.due_schedules(T0 + timedelta(hours=1))] == ["a", "b"]
    first = due[0]
    # two schedulers race for the slot: exactly one wins
    next_at = T0 + timedelta(hours=1)
    assert store.mark_fired(first["id"], T0, next_at, "run-1", expected_next_fire_at=first["next_fire_at"])
    assert not store.mark_fired(first["id"], T0, next_at, "run-2", expected_next_fire_at=first["next_fire_at"])
    fired = store.list_schedules("alpha")[0]
    assert (fired["last_run_id"], fired["last_fire_at"], fired["next_fire_at"]) == ("run-1", T0, next_at)
    assert store.due_schedules(T0) == []
    with pytest.raises(NotFound):
        store.mark_fired(10**9, T0, next_at, None)
