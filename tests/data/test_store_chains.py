"""Applying chains: versions, atomic batches, prune, plan, history, delete."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import pytest

from legion.engine.data import Store
from legion.engine.errors import BadInput, Conflict, NotFound


def actions(results: list[dict[str, Any]]) -> list[tuple[str, str, int | None]]:
    return [(r["name"], r["action"], r["version"]) for r in results]


def test_apply_creates_then_is_unchanged(store: Store, chain_item: Any) -> None:
    items = [chain_item("alpha"), chain_item("beta")]
    assert actions(store.apply_chains(items)) == [("alpha", "created", 1), ("beta", "created", 1)]
    assert actions(store.apply_chains(items)) == [("alpha", "unchanged", 1), ("beta", "unchanged", 1)]
    assert [h["version"] for h in store.chain_history("alpha")] == [1]


def test_a_content_change_adds_a_version(store: Store, chain_item: Any) -> None:
    store.apply_chains([chain_item("alpha", "a")])
    assert actions(store.apply_chains([chain_item("alpha", "b")])) == [("alpha", "updated", 2)]
    assert actions(store.apply_chains([chain_item("alpha", "a")])) == [("alpha", "updated", 3)]
    chain = store.get_chain("alpha")
    assert chain["version"] == chain["current_version"] == 3
    assert "a:" in chain["source"]
    assert [(h["version"], h["current"]) for h in store.chain_history("alpha")] == [(1, False), (2, False), (3, True)]
    assert store.get_chain_version("alpha", 2)["definition"]["steps"] == {"b": {"run": "core.util.echo"}}


def test_get_chain_returns_everything_stored(store: Store, chain_item: Any, edge: Any) -> None:
    rels = [
        edge("a", "b", 0, join="all", publish={"x": "{{ result }}"}, delay=1.5, priority=3),
        edge("a", None, 1, action="fail", condition="failed"),
        {"kind": "entry", "trigger_function": "http.client.get", "action": "chain", "action_step": "a",
         "allow_new_chains": True, "condition": "succeeded"},
    ]
    store.apply_chains([chain_item("alpha", definition={"nested": {"ü": [1, 2.5, None, True]}}, relationships=rels)])
    chain = store.get_chain("alpha")
    assert chain["definition"] == {"nested": {"ü": [1, 2.5, None, True]}}
    assert chain["path"] == "chains/alpha.yaml"
    assert chain["active"] is True
    assert chain["created_at"].tzinfo is not None
    first, second, entry = chain["relationships"]
    assert first["chain_name"] == "alpha" and first["version"] == 1
    assert (first["join"], first["publish"], first["delay"], first["priority"]) == ("all", {"x": "{{ result }}"}, 1.5, 3)
    assert (second["action"], second["action_step"], second["edge_index"]) == ("fail", None, 1)
    assert (entry["kind"], entry["trigger_step"], entry["allow_new_chains"], entry["delay"]) == ("entry", None, True, 0.0)
    assert "join_" not in first and "id" not in first


def test_a_bad_item_changes_nothing(store: Store, chain_item: Any) -> None:
    store.apply_chains([chain_item("alpha", "a")])
    broken = chain_item("gamma")
    del broken["source"]
    # alpha's update and beta's creation come first in the batch; both must be undone.
    with pytest.raises(BadInput, match="gamma.*lacks source"):
        store.apply_chains([chain_item("alpha", "b"), chain_item("beta"), broken])
    assert [c["name"] for c in store.list_chains()] == ["alpha"]
    assert store.get_chain("alpha")["version"] == 1
    assert len(store.chain_history("alpha")) == 1
    with pytest.raises(NotFound):
        store.chain_history("beta")


def test_a_duplicate_name_in_the_batch_changes_nothing(store: Store, chain_item: Any) -> None:
    with pytest.raises(Conflict, match="appears twice"):
        store.apply_chains([chain_item("alpha", "a"), chain_item("beta"), chain_item("alpha", "b")])
    assert store.list_chains() == []


def test_a_bad_relationship_changes_nothing(store: Store, chain_item: Any, edge: Any) -> None:
    with pytest.raises(BadInput, match="unknown field.*colour"):
        store.apply_chains([chain_item("alpha"), chain_item("beta", relationships=[edge("a", None, colour="red")])])
    with pytest.raises(BadInput, match="kind"):
        store.apply_chains([chain_item("alpha", relationships=[edge("a", None, kind="spline")])])
    assert store.list_chains() == []


def test_prune_deactivates_chains_not_in_the_batch(store: Store, chain_item: Any) -> None:
    store.apply_chains([chain_item("alpha"), chain_item("beta"), chain_item("gamma")])
    result = store.apply_chains([chain_item("beta")], prune=True)
    assert actions(result) == [("beta", "unchanged", 1), ("alpha", "pruned", 1), ("gamma", "pruned", 1)]
    assert [c["name"] for c in store.list_chains()] == ["beta"]
    with pytest.raises(NotFound, match="deleted"):
        store.get_chain("alpha")
    # a pruned chain keeps its versions, and coming back takes the next number
    assert store.get_chain_version("alpha", 1)["name"] == "alpha"
    assert actions(store.apply_chains([chain_item("alpha")])) == [("alpha", "created", 2)]


def test_plan_diff_writes_nothing(store: Store, chain_item: Any) -> None:
    store.apply_chains([chain_item("alpha", "a"), chain_item("beta")])
    items = [chain_item("alpha", "b"), chain_item("beta"), chain_item("gamma")]
    expected = [("alpha", "updated", 2), ("beta", "unchanged", 1), ("gamma", "created", 1)]
    assert actions(store.plan_diff(items)) == expected
    assert actions(store.plan_diff([chain_item("beta")], prune=True)) == [("beta", "unchanged", 1), ("alpha", "pruned", 1)]
    assert [c["name"] for c in store.list_chains()] == ["alpha", "beta"]
    assert store.get_chain("alpha")["version"] == 1
    assert actions(store.apply_chains(items)) == expected


def test_versions_are_never_reused_after_delete(store: Store, chain_item: Any) -> None:
    store.apply_chains([chain_item("alpha", "a")])
    store.apply_chains([chain_item("alpha", "b")])
    assert store.delete_chain("alpha") == {"name": "alpha", "action": "deleted", "version": 2}
    assert store.list_chains() == []
    with pytest.raises(NotFound, match="apply it again"):
        store.get_chain("alpha")
    with pytest.raises(NotFound):
        store.delete_chain("alpha")
    # same content as the deleted current version: still a new version
    assert actions(store.apply_chains([chain_item("alpha", "b")])) == [("alpha", "created", 3)]
    assert [h["version"] for h in store.chain_history("alpha")] == [1, 2, 3]


def test_runs_keep_their_version(store: Store, chain_item: Any) -> None:
    store.apply_chains([chain_item("alpha", "a")])
    store.create_run({"id": "r1", "chain_name": "alpha", "chain_version": 1})
    store.apply_chains([chain_item("alpha", "b")])
    store.delete_chain("alpha")
    run = store.get_run("r1")
    assert store.get_chain_version(run["chain_name"], run["chain_version"])["definition"]["steps"] == {
        "a": {"run": "core.util.echo"}
    }


def test_list_chains_counts_runs(store: Store, chain_item: Any) -> None:
    store.apply_chains([chain_item("alpha"), chain_item("beta")])
    for i in range(3):
        store.create_run({"id": f"r{i}", "chain_name": "alpha", "chain_version": 1})
    listed = {c["name"]: c for c in store.list_chains()}
    assert (listed["alpha"]["runs"], listed["beta"]["runs"]) == (3, 0)
    assert listed["alpha"]["current_version"] == 1
    assert listed["alpha"]["updated_at"].tzinfo is not None


def test_missing_chains_and_versions_are_not_found(store: Store, chain_item: Any) -> None:
    with pytest.raises(NotFound, match="legion chain list"):
        store.get_chain("nope")
    with pytest.raises(NotFound):
        store.get_chain_version("nope", 1)
    store.apply_chains([chain_item("alpha")])
    with pytest.raises(NotFound, match="no version 7"):
        store.get_chain_version("alpha", 7)


def test_names_are_case_sensitive_everywhere(store: Store, chain_item: Any) -> None:
    result = store.apply_chains([chain_item("Deploy"), chain_item("deploy")])
    assert actions(result) == [("Deploy", "created", 1), ("deploy", "created", 1)]


def test_event_triggers_follow_the_current_version(store: Store, chain_item: Any, edge: Any) -> None:
    entry = {"kind": "entry", "trigger_function": "http.client.get", "action": "chain", "action_step": "a",
             "allow_new_chains": True}
    store.apply_chains([chain_item("alpha", "a", relationships=[edge("a", None), entry]), chain_item("beta")])
    assert [(t["chain_name"], t["version"]) for t in store.event_triggers("http.client.get")] == [("alpha", 1)]
    store.apply_chains([chain_item("alpha", "b", relationships=[edge("b", None)])])
    assert store.event_triggers("http.client.get") == []
    store.apply_chains([chain_item("alpha", "c", relationships=[entry])])
    store.delete_chain("alpha")
    assert store.event_triggers("http.client.get") == []


def test_schedules_are_applied_in_the_same_transaction(store: Store, chain_item: Any) -> None:
    from datetime import datetime

    soon = datetime(2030, 1, 1, tzinfo=UTC)
    entry = {"kind": "every", "expression": "60.0", "tz": None, "input": {"n": 1}, "next_fire_at": soon}
    alpha = dict(chain_item("alpha"), schedules=[entry])
    store.apply_chains([alpha])
    assert [(s["chain_name"], s["input"]) for s in store.list_schedules()] == [("alpha", {"n": 1})]
    broken = chain_item("gamma")
    del broken["source"]
    changed = dict(chain_item("alpha", "b"), schedules=[dict(entry, input={"n": 2})])
    with pytest.raises(BadInput):
        store.apply_chains([changed, broken])
    assert [s["input"] for s in store.list_schedules()] == [{"n": 1}]  # untouched by the failed batch
    store.apply_chains([chain_item("beta")], prune=True)
    assert store.list_schedules() == []  # a pruned chain keeps no schedule
    store.apply_chains([alpha])
    store.delete_chain("alpha")
    assert store.list_schedules() == []
