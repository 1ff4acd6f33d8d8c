"""`event_chains`: which chains each function's success starts (`on.events`), in one query."""

from __future__ import annotations

from typing import Any

from legion.engine.data import Store


def entry(function: str) -> dict[str, Any]:
    """An `on.events` trigger as the compiler emits it."""
    return {"kind": "entry", "trigger_function": function, "condition": "succeeded", "publish": {},
            "allow_new_chains": True, "action": "chain", "action_step": "a", "action_function": None,
            "join": None, "delay": 0.0, "priority": 0, "edge_index": None, "trigger_step": None}


def test_no_chains_no_triggers(store: Store) -> None:
    assert store.event_chains() == {}


def test_each_function_maps_to_its_listening_chains_in_name_order(store: Store, chain_item: Any, edge: Any) -> None:
    store.apply_chains([
        chain_item("zeta", relationships=[edge("a", None), entry("core.util.echo")]),
        chain_item("alpha", relationships=[entry("core.util.echo"), entry("http.request.get"), edge("a", None)]),
        chain_item("Beta", relationships=[edge("a", None)]),  # edges are not triggers (their trigger_function is a step's)
        chain_item("twice", relationships=[entry("core.util.set"), entry("core.util.set")]),
    ])
    assert store.event_chains() == {
        "core.util.echo": ["alpha", "zeta"],
        "http.request.get": ["alpha"],
        "core.util.set": ["twice", "twice"],  # as often as the chain names it, like its entries
    }


def test_only_current_versions_of_active_chains_count(store: Store, chain_item: Any, edge: Any) -> None:
    store.apply_chains([chain_item("alpha", "a", relationships=[entry("core.util.echo")]),
                        chain_item("beta", relationships=[entry("core.util.echo")])])
    assert store.event_chains() == {"core.util.echo": ["alpha", "beta"]}
    store.apply_chains([chain_item("alpha", "b", relationships=[edge("b", None)])])  # version 2 listens no more
    assert store.event_chains() == {"core.util.echo": ["beta"]}
    store.apply_chains([chain_item("alpha", "c", relationships=[entry("core.util.set")])])
    assert store.event_chains() == {"core.util.echo": ["beta"], "core.util.set": ["alpha"]}
    store.delete_chain("beta")
    assert store.event_chains() == {"core.util.set": ["alpha"]}
    store.apply_chains([chain_item("gamma")], prune=True)
    assert store.event_chains() == {}
    store.apply_chains([chain_item("alpha", "c", relationships=[entry("core.util.set")])])  # applied again: heard again
    assert store.event_chains() == {"core.util.set": ["alpha"]}


def test_it_agrees_with_event_triggers(store: Store, chain_item: Any) -> None:
    store.apply_chains([chain_item(name, relationships=[entry("core.util.echo")]) for name in ("c", "a", "b")])
    by_function = store.event_chains()
    assert by_function["core.util.echo"] == [t["chain_name"] for t in store.event_triggers("core.util.echo")]
