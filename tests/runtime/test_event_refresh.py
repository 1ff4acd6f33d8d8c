"""`Engine.refresh_events` reads the applied chains' `on.events` triggers in one query: the
same map as reading every applied chain's definition gave."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event

from legion.engine.chains import apply_items, load_chains
from legion.engine.data.store import Store
from legion.engine.registry import Registry
from legion.engine.runtime import Engine

REGISTRY = Registry.discover()
LISTENERS = {
    "b-listener": "on: {events: [core.util.echo, core.util.set]}",
    "a-listener": "on: {events: [core.util.echo]}",
    "scheduled": "on: {schedule: [{every: 1h}], events: [core.util.noop]}",
    "deaf": "",
}


def chain_file(folder: Path, name: str, on: str, step: str = "core.util.noop") -> None:
    (folder / f"{name}.yaml").write_text(f"chain: {name}\n{on}\nsteps:\n  a: {{run: {step}}}\n")


def from_definitions(store: Store) -> dict[str, list[str]]:
    """What refresh_events computed before: every applied chain read whole."""
    mapping: dict[str, list[str]] = {}
    for summary in store.list_chains():
        on = (store.get_chain(summary["name"]).get("definition") or {}).get("on") or {}
        for ref in on.get("events") or []:
            mapping.setdefault(ref, []).append(summary["name"])
    return mapping


def count_queries(store: Store) -> list[str]:
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(store._engine, "before_cursor_execute", seen)
    return statements


def test_refresh_events_maps_functions_to_chains_with_one_query(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'legion.db'}")
    for name, on in LISTENERS.items():
        chain_file(tmp_path, name, on)
    store.apply_chains(apply_items(load_chains([tmp_path], REGISTRY)[0]))
    engine = Engine(REGISTRY, store, workers=1)
    selects = count_queries(store)
    engine.refresh_events()
    assert len(selects) == 1
    assert engine.event_chains == from_definitions(store) == {
        "core.util.echo": ["a-listener", "b-listener"], "core.util.set": ["b-listener"], "core.util.noop": ["scheduled"],
    }

    chain_file(tmp_path, "a-listener", "on: {events: [core.util.set]}", step="core.util.echo")  # a new version
    store.apply_chains(apply_items(load_chains([tmp_path], REGISTRY)[0]))
    store.delete_chain("scheduled")
    engine.refresh_events()
    assert engine.event_chains == from_definitions(store) == {
        "core.util.echo": ["b-listener"], "core.util.set": ["a-listener", "b-listener"],
    }
    store.close()
