"""Agent state (`ctx.state`), the run's clock (`ctx.now()`) and agent (`ctx.agent`): in a chain,
in a rehearsal, and through `legion.sdk.call`; each agent's documents sealed with its own key,
isolated from other agents', and unreadable once the agent is erased."""

from __future__ import annotations

import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from embedded import embedded_service
from services import BACKENDS, create_database, drop_database, unreachable

import legion.engine.registry as registry_module
from legion import sdk
from legion.engine.agentstate import AgentKeys, AgentStates, StateUnreadable
from legion.engine.data.store import Store
from legion.engine.registry import Registry
from legion.engine.service import Service
from legion.sdk import Context, Extension


def _notes() -> types.ModuleType:
    notes = types.ModuleType("notes")

    def add(ctx: Context, text: str) -> dict[str, Any]:
        """Keep a note, stamped with the run's clock."""
        kept = ctx.state.items("notes")
        ctx.state.put("notes", str(len(kept) + 1), {"text": text, "at": ctx.now().isoformat()})
        return {"agent": ctx.agent, "count": len(kept) + 1, "at": ctx.now().isoformat()}

    def recall(ctx: Context) -> list[str]:
        """The notes kept, oldest first."""
        kept = ctx.state.items("notes")
        return [kept[k]["text"] for k in sorted(kept, key=int)]

    notes.add, notes.recall = add, recall  # type: ignore[attr-defined]
    notes.__all__ = ["add", "recall"]  # type: ignore[attr-defined]
    return notes


REGISTRY = Registry([Registry.discover().extensions["core"], Extension("memo", runners=[_notes()])])


@pytest.fixture()
def installed(monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setattr(registry_module, "_installed", REGISTRY)
    return REGISTRY


def test_sdk_call_keeps_state_per_agent_on_the_clock_it_is_given(installed: Registry, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    day = datetime(2026, 1, 1, tzinfo=UTC)
    first = sdk.call("memo.notes.add", {"text": "milk"}, now=day, agent="ada", database_url=url)
    assert first == {"agent": "ada", "count": 1, "at": "2026-01-01T00:00:00+00:00"}
    later = sdk.call("memo.notes.add", {"text": "eggs"}, now=day + timedelta(days=30), agent="ada", database_url=url)
    assert later["at"] == "2026-01-31T00:00:00+00:00" and later["count"] == 2
    assert sdk.call("memo.notes.recall", now=day, agent="ada", database_url=url) == ["milk", "eggs"]
    assert sdk.call("memo.notes.recall", agent="bob", database_url=url) == []  # another agent sees nothing of ada's
    with pytest.raises(sdk.StepError) as bad:
        sdk.call("memo.notes.add", {"txt": "x"}, database_url=url)
    assert bad.value.type == "InvalidArguments"
    with pytest.raises(sdk.StepError) as unknown:
        sdk.call("memo.notes.nothing")
    assert unknown.value.type == "UnknownFunction"


def test_documents_are_sealed_bound_to_their_place_and_gone_with_the_key(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/state.db")
    states = AgentStates(store, AgentKeys())
    ada = states.of("ada", "memory")
    ada.put("traces", "t1", {"content": "the launch code is 1234"})
    sealed = store.state_get("ada", "memory", "traces", "t1")
    assert sealed is not None and "1234" not in sealed and "launch" not in sealed
    assert ada.get("traces", "t1") == {"content": "the launch code is 1234"}
    # A row copied to another place does not open there (the place is bound in).
    store.state_put("ada", "memory", "traces", {"t2": sealed})
    with pytest.raises(StateUnreadable):
        ada.get("traces", "t2")
    # Erased: its key is gone first, so a row a backup kept does not open either.
    assert states.erase("ada") == 2
    assert ada.get("traces", "t1") is None
    store.state_put("ada", "memory", "traces", {"t1": sealed})  # the backup, put back
    with pytest.raises(StateUnreadable, match="its key is gone"):
        ada.get("traces", "t1")
    store.close()


def test_the_key_lives_in_the_secret_store_and_erasure_deletes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from legion.engine.secrets import store_from_env

    monkeypatch.delenv("VAULT_ADDR", raising=False)
    monkeypatch.setenv("LEGION_HOME", str(tmp_path))
    secrets = store_from_env()
    store = Store(f"sqlite:///{tmp_path}/state.db")
    states = AgentStates(store, AgentKeys(lambda: secrets))
    states.of("ada", "trust").put("scores", "bob", {"composite": 0.5})
    assert "key" in secrets.read("agents/ada")
    again = AgentStates(store, AgentKeys(lambda: secrets))  # another process: the key from the store
    assert again.of("ada", "trust").get("scores", "bob") == {"composite": 0.5}
    sealed = store.state_get("ada", "trust", "scores", "bob")
    states.erase("ada")
    assert "agents/ada" not in secrets.list()
    # The other process held the key; once it reads the store again, a restored copy does not open.
    import legion.engine.agentstate as agentstate

    store.state_put("ada", "trust", "scores", {"bob": sealed or ""})
    monkeypatch.setattr(agentstate, "KEY_CACHE_SECONDS", 0.0)
    with pytest.raises(StateUnreadable):
        again.of("ada", "trust").get("scores", "bob")
    store.close()


@pytest.fixture()
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    with embedded_service(tmp_path, monkeypatch, REGISTRY, workers=2) as service:
        yield service


CHAIN = """
chain: remember
steps:
  note:
    run: memo.notes.add
    with: {text: "{{ input.text }}"}
    next:
      - do: recall
  recall:
    run: memo.notes.recall
output: {notes: "{{ result }}", agent: "{{ run.agent | default('none') }}"}
"""


def test_a_run_keeps_the_state_of_its_agent(service: Service) -> None:
    service.apply_chains(text=CHAIN)
    engine = service._engine
    assert engine is not None
    for agent, text in (("ada", "one"), ("bob", "two"), ("ada", "three")):
        run_id = engine.submit("remember", {"text": text}, agent=agent)
        engine.wait(run_id, 30)
    runs = {r["input"]["text"]: service.get_run(r["id"]) for r in service.list_runs()}
    assert runs["three"]["output"] == {"notes": ["one", "three"], "agent": "ada"}
    assert runs["two"]["output"] == {"notes": ["two"], "agent": "bob"}
    unnamed = service.start_run("remember", {"text": "four"}, wait=True, timeout=30)
    assert unnamed["output"] == {"notes": ["four"], "agent": "none"}  # the default agent


def test_a_rehearsal_keeps_state_of_its_own_on_the_virtual_clock(service: Service) -> None:
    rehearsal = """
input: {text: rehearsed}
expect:
  status: succeeded
  output: {notes: [rehearsed], agent: none}
"""
    result = service.test_chain(CHAIN, rehearsal)
    assert result["passed"], result


FAN_OUT = """
chain: wake_all
steps:
  each:
    run: chain:remember
    for_each: "{{ input.agents }}"
    agent: "{{ item }}"
    with: {text: "hello {{ item }}"}
output: "{{ result }}"
"""


def test_a_sub_chain_step_runs_its_sub_chain_for_the_agent_it_names(service: Service, tmp_path: Path) -> None:
    from legion.engine.rehearsal import run_rehearsal

    service.apply_chains(text=CHAIN)
    service.apply_chains(text=FAN_OUT)
    run = service.start_run("wake_all", {"agents": ["ada", "bob"]}, wait=True, timeout=30, agent="caller")
    assert run["status"] == "succeeded", run.get("error")
    assert run["output"] == [{"notes": ["hello ada"], "agent": "ada"}, {"notes": ["hello bob"], "agent": "bob"}]
    folder = tmp_path / "chains"
    folder.mkdir()
    (folder / "remember.yaml").write_text(CHAIN)
    (folder / "wake_all.yaml").write_text(FAN_OUT.replace('for_each: "{{ input.agents }}"', 'for_each: "{{ input.agents }}"\n    concurrency: 2'))
    (folder / "wake_all.test.yaml").write_text("chain: wake_all.yaml\ninput: {agents: [cy, dee]}\nexpect:\n  status: succeeded\n"
                                               "  output: [{notes: [hello cy], agent: cy}, {notes: [hello dee], agent: dee}]\n")
    report = run_rehearsal(folder / "wake_all.test.yaml", REGISTRY)
    assert report.passed, report


def test_agent_is_refused_on_a_function_step_and_a_bad_name_is_refused(service: Service) -> None:
    from legion.engine.errors import LegionError

    bad = "chain: bad\nsteps:\n  a:\n    run: memo.notes.recall\n    agent: ada\n"
    from legion.dsl.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        service.validate_chains(text=bad)
    assert [(i.line, i.col) for i in refused.value.issues] == [(5, 5)]
    assert "`agent` is for sub-chain steps" in refused.value.issues[0].message
    service.apply_chains(text=CHAIN)
    with pytest.raises(LegionError, match="agent"):
        service.start_run("remember", {"text": "x"}, agent=" spaced ")


@pytest.mark.parametrize("backend", BACKENDS)
def test_update_never_loses_a_concurrent_change(backend: str, tmp_path: Path) -> None:
    """Two workers' worth of threads incrementing one counter document: every increment counts,
    on each backend (the row locked for the read-modify-write; SQLite: the database)."""
    import threading

    from sqlalchemy.exc import DBAPIError

    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/count.db"
    else:
        try:
            url = create_database(backend)
        except DBAPIError as exc:
            unreachable(f"{backend} is unreachable: {exc.orig}")
    store = Store(url)
    try:
        states = [AgentStates(store, AgentKeys()), AgentStates(store, AgentKeys())]
        states[1].keys = states[0].keys  # one agent key, two processes' caches
        states[0].of("ada", "tick").update("counters", "seq", lambda d: {"n": 0})

        def bump(i: int) -> None:
            for _ in range(25):
                states[i % 2].of("ada", "tick").update("counters", "seq", lambda d: {"n": (d or {"n": 0})["n"] + 1})

        threads = [threading.Thread(target=bump, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert states[0].of("ada", "tick").get("counters", "seq") == {"n": 100}
        assert states[0].of("ada", "tick").update("counters", "seq", lambda d: None) is None  # None deletes
        assert states[0].of("ada", "tick").get("counters", "seq") is None
    finally:
        store.close()
        if backend != "sqlite":
            drop_database(backend, url)
