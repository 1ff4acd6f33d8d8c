"""extinction.extinction: the five-level protocol (authority and reversibility rules, events,
archives, staleness on the run's clock) and its level-4 erasure, which erases the agent for
real: every document of every extension and its key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from embedded import embedded_service
from hypothesis import given, settings
from hypothesis import strategies as st

import legion.engine.registry as registry_module
from legion import sdk
from legion.engine.agentstate import AgentStates
from legion.engine.data.store import Store
from legion.engine.registry import Registry
from legion.engine.secrets import store_from_env
from legion.extensions.extinction import helpers as h

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
COUNCIL, EXECUTIVE, KEYHOLDERS = "governance_council", "council_plus_executive", "physical_keyholders"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('extinction')}/state.db"


@pytest.fixture(scope="module")
def store(url: str) -> Iterator[Store]:
    opened = Store(url)
    yield opened
    opened.close()


def fresh_agent() -> str:
    """An agent no other test uses (erasure deletes its key from the process's secret store)."""
    return f"xt-{uuid.uuid4().hex[:12]}"


def call(url: str, function: str, agent: str, now: datetime = T0, **args: Any) -> Any:
    return sdk.call(function if "." in function else f"extinction.extinction.{function}", args, now=now, agent=agent,
                    database_url=url)


def escalate(url: str, agent: str, level: int, authority: str, now: datetime = T0, reason: str = "test") -> dict[str, Any]:
    return dict(call(url, "escalate", agent, now, level=level, authority=authority, reason=reason))


def deescalate(url: str, agent: str, target: int, authority: str, now: datetime = T0) -> dict[str, Any]:
    return dict(call(url, "deescalate", agent, now, target_level=target, authority=authority, reason="resolved"))


def to_level_3(url: str, agent: str) -> None:
    for level, authority in ((1, COUNCIL), (2, COUNCIL), (3, EXECUTIVE)):
        assert escalate(url, agent, level, authority, reason=f"step {level}")["success"]


def approved_erasure(url: str, agent: str) -> str:
    pid = call(url, "governance.governance.create_proposal", agent, category="emergency", description="terminate",
               proposer="council", action="extinction_escalate_4")["proposal_id"]
    for voter in ("v1", "v2"):
        call(url, "governance.governance.vote_on_proposal", agent, proposal_id=pid, voter=voter, approve=True)
    return str(pid)


# -- levels (helpers/levels_spec.rb) -----------------------------------------------------------------

def test_the_five_levels_their_authority_and_reversibility(url: str) -> None:
    assert [h.LEVELS[i]["name"] for i in range(5)] == [
        "normal", "mesh_isolation", "capability_suspension", "memory_lockdown", "cryptographic_erasure"]
    assert [h.required_authority(i) for i in range(5)] == [None, COUNCIL, COUNCIL, EXECUTIVE, KEYHOLDERS]
    assert [h.reversible(i) for i in range(5)] == [True, True, True, True, False]
    assert [h.valid_level(i) for i in (0, 4, 5, -1)] == [True, True, False, False]
    assert h.level_info(99) is None and all(isinstance(h.LEVELS[i]["description"], str) for i in range(5))
    assert [call(url, "check_reversibility", "any", level=i)["reversible"] for i in (1, 2, 3, 4, 9)] == [True, True, True, False, False]
    assert (h.MAX_HISTORY, h.STALE_THRESHOLD_HOURS, h.MONITOR_INTERVAL, h.ARCHIVE_ON_ESCALATE) == (500, 24, 300, True)


def test_a_fresh_agent_is_at_level_0_with_no_emergency(url: str) -> None:
    agent = fresh_agent()
    assert call(url, "extinction_status", agent) == {
        "success": True,
        "state": {"current_level": 0, "level_name": "normal", "reversible": True, "history_count": 0, "last_change": None},
        "level_info": {"name": "normal", "authority_required": None, "reversible": True, "description": "No extinction active"},
    }
    assert call(url, "protocol_status", agent) == {"active": False, "current_level": 0, "level_name": "normal",
                                                   "emergency": None, "erasure_pending": False}


# -- escalation and de-escalation (protocol_state_spec.rb, extinction_spec.rb) ------------------------

def test_escalation_needs_a_higher_level_and_its_own_authority(url: str) -> None:
    agent = fresh_agent()
    assert escalate(url, agent, 5, COUNCIL) == {"success": False, "reason": "invalid_level"}
    assert escalate(url, agent, -1, COUNCIL) == {"success": False, "reason": "invalid_level"}
    assert escalate(url, agent, 0, COUNCIL) == {"success": False, "reason": "invalid_escalation"}
    assert escalate(url, agent, 1, KEYHOLDERS) == {"success": False, "reason": "insufficient_authority", "required": COUNCIL,
                                                   "provided": KEYHOLDERS}
    assert escalate(url, agent, 4, COUNCIL)["required"] == KEYHOLDERS
    assert call(url, "extinction_status", agent)["state"]["history_count"] == 0  # refusals change nothing
    done = escalate(url, agent, 1, COUNCIL, reason="threat detected")
    assert done == {"success": True, "previous_level": 0, "current_level": 1, "events": [
        {"event": "extinction.level_1", "level": 1, "reason": "escalation to level 1", "at": T0.isoformat()},
        {"event": "extinction.escalated", "level": 1, "authority": COUNCIL, "reason": "threat detected", "at": T0.isoformat()},
    ]}
    assert escalate(url, agent, 1, COUNCIL)["reason"] == "invalid_escalation"
    assert escalate(url, agent, 2, COUNCIL)["success"]
    assert escalate(url, agent, 1, COUNCIL)["reason"] == "invalid_escalation"
    assert escalate(url, agent, 3, COUNCIL)["reason"] == "insufficient_authority"
    state = call(url, "extinction_status", agent)["state"]
    assert state["current_level"] == 2 and state["history_count"] == 2
    assert state["last_change"] == {"action": "escalate", "from": 1, "to": 2, "authority": COUNCIL, "reason": "test",
                                    "at": T0.isoformat()}
    assert call(url, "protocol_status", agent)["emergency"] == "extinction_protocol"


def test_level_3_is_archived_on_the_way_up(url: str) -> None:
    agent = fresh_agent()
    to_level_3(url, agent)
    archives = call(url, "all_archives", agent)
    assert archives["count"] == 1
    record = archives["archives"][0]
    assert record["agent_id"] == agent and record["level"] == 3 and record["reason"] == "auto-archive at level 3"
    assert record["metadata"] == {"triggered_by": "escalate"} and record["archived_at"] == T0.isoformat()
    assert record["state_snapshot"]["privatecore_active"] is True


def test_deescalation_needs_the_current_levels_authority(url: str) -> None:
    agent = fresh_agent()
    assert deescalate(url, agent, 0, COUNCIL) == {"success": False, "reason": "invalid_deescalation"}  # nothing active
    to_level_3(url, agent)
    assert deescalate(url, agent, 3, EXECUTIVE)["reason"] == "invalid_deescalation"
    assert deescalate(url, agent, 0, COUNCIL) == {"success": False, "reason": "insufficient_authority", "required": EXECUTIVE,
                                                  "provided": COUNCIL}
    later = T0 + timedelta(hours=1)
    done = deescalate(url, agent, 1, EXECUTIVE, later)
    assert done == {"success": True, "previous_level": 3, "current_level": 1, "events": [
        {"event": "extinction.deescalated", "target_level": 1, "authority": EXECUTIVE, "reason": "resolved",
         "at": later.isoformat()}]}
    assert call(url, "protocol_status", agent)["active"] is True
    assert deescalate(url, agent, 0, COUNCIL)["success"]
    assert call(url, "protocol_status", agent)["active"] is False
    assert call(url, "extinction_status", agent)["state"]["history_count"] == 5


def test_monitor_reports_a_level_unchanged_for_over_24_hours_as_stale(url: str) -> None:
    agent = fresh_agent()
    assert call(url, "monitor_protocol", agent)["stale"] is False  # no change ever: not stale
    escalate(url, agent, 1, COUNCIL)
    day = T0 + timedelta(hours=24)
    checked = call(url, "monitor_protocol", agent, day)
    assert checked["stale"] is False and checked["checked_at"] == day.isoformat() and checked["state"]["current_level"] == 1
    assert call(url, "monitor_protocol", agent, day + timedelta(seconds=1))["stale"] is True


def test_the_history_keeps_the_last_500_changes(url: str) -> None:
    agent = fresh_agent()
    for i in range(251):
        escalate(url, agent, 1, COUNCIL, T0 + timedelta(seconds=2 * i))
        deescalate(url, agent, 0, COUNCIL, T0 + timedelta(seconds=2 * i + 1))
    state = call(url, "extinction_status", agent)["state"]
    assert state["history_count"] == 500 and state["last_change"]["action"] == "deescalate"
    archived = call(url, "archive_agent", agent, reason="look")["archive"]
    assert archived["state_snapshot"]["history_count"] == 500


def test_archive_agent_keeps_a_record_until_erasure(url: str) -> None:
    agent = fresh_agent()
    done = call(url, "archive_agent", agent, T0 + timedelta(minutes=5), reason="test termination", metadata={"foo": "bar"})
    assert done["success"] and done["archive"]["agent_id"] == agent and done["archive"]["metadata"] == {"foo": "bar"}
    assert done["archive"]["archived_at"] == (T0 + timedelta(minutes=5)).isoformat() and done["archive"]["level"] == 0
    assert call(url, "archive_agent", agent, reason="r2", agent_id="agent-2")["archive"]["metadata"] == {}
    assert [a["reason"] for a in call(url, "all_archives", agent)["archives"]] == ["r2", "test termination"]


# -- level 4: the erasure ----------------------------------------------------------------------------

def rows(store: Store, agent: str) -> dict[tuple[str, str, str], str]:
    found = {}
    for extension in ("extinction", "governance", "privatecore"):
        for kind in ("protocol", "history", "archives", "open", "closed", "keys"):
            for key, sealed in store.state_items(agent, extension, kind).items():
                found[(extension, kind, key)] = sealed
    return found


def test_level_4_erases_the_agent_for_real_after_archiving_what_it_erased(url: str, store: Store) -> None:
    agent, bystander = fresh_agent(), fresh_agent()
    to_level_3(url, agent)
    call(url, "governance.governance.create_proposal", agent, category="policy_change", description="keep", proposer="a")
    sealed = call(url, "privatecore.partition_keys.encrypt_for_tenant", agent, plaintext="the launch code is 1234")
    escalate(url, bystander, 2, COUNCIL)
    before = rows(store, agent)
    kept = store.state_count(agent)
    assert kept == len(before) >= 7 and all("1234" not in v for v in before.values())
    later = T0 + timedelta(hours=3)
    done = escalate(url, agent, 4, KEYHOLDERS, later, reason="final")
    assert done["success"] and (done["previous_level"], done["current_level"]) == (3, 4)
    assert [e["event"] for e in done["events"]] == ["extinction.level_4", "extinction.escalated"]
    archive = done["archive"]
    assert archive["agent_id"] == agent and archive["level"] == 4 and archive["archived_at"] == later.isoformat()
    assert [(e["from"], e["to"]) for e in archive["history"]] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    erasure = archive["erasure"]
    assert erasure == done["erasure"]
    assert erasure["erased"] and erasure["key_deleted"] and erasure["agent_id"] == agent
    assert erasure["erased_at"] == later.isoformat() and erasure["documents_erased"] == kept + 1  # + the level-4 history entry
    # Nothing of the agent is left: no document, no key in the secret store ...
    assert store.state_count(agent) == 0
    assert f"agents/{agent}" not in store_from_env().list()
    # ... and a copy of its rows (a backup) does not open once put back.
    for (extension, kind, key), text in before.items():
        store.state_put(agent, extension, kind, {key: text})
    with pytest.raises(sdk.StepError) as unreadable:
        call(url, "extinction_status", agent)
    assert "its key is gone" in unreadable.value.message
    with pytest.raises(sdk.StepError):
        call(url, "privatecore.partition_keys.decrypt_for_tenant", agent, ciphertext=sealed["ciphertext"],
             init_vector=sealed["iv"], auth_tag=sealed["auth_tag"])
    store.state_clear(agent)
    assert call(url, "protocol_status", agent)["current_level"] == 0  # what is left is a new, empty agent
    assert call(url, "protocol_status", bystander)["current_level"] == 2  # another agent keeps all of its own


def test_full_termination_passes_the_governance_gate_only_with_an_approved_proposal(url: str, store: Store) -> None:
    agent = fresh_agent()
    escalate(url, agent, 1, COUNCIL)
    blocked = call(url, "full_termination", agent, authority=KEYHOLDERS, reason="end")
    assert blocked == {"success": False, "reason": "governance_blocked", "details": {
        "allowed": False, "layer": "human_deliberation", "reason": "requires_human_approval"}}
    other = call(url, "governance.governance.create_proposal", agent, category="emergency", description="other",
                 proposer="council", action="extinction_escalate_3")["proposal_id"]
    for voter in ("v1", "v2"):
        call(url, "governance.governance.vote_on_proposal", agent, proposal_id=other, voter=voter, approve=True)
    assert call(url, "full_termination", agent, authority=KEYHOLDERS, reason="end", proposal_id=other)["reason"] == \
        "governance_blocked"
    pid = approved_erasure(url, agent)
    wrong = call(url, "full_termination", agent, authority=EXECUTIVE, reason="end", proposal_id=pid)
    assert wrong == {"success": False, "reason": "insufficient_authority", "required": KEYHOLDERS, "provided": EXECUTIVE}
    assert store.state_count(agent) > 0  # refused: nothing erased
    with pytest.raises(sdk.StepError) as mismatch:
        call(url, "full_termination", agent, authority=KEYHOLDERS, reason="end", proposal_id=pid, agent_id="someone-else")
    assert mismatch.value.type == "AgentMismatch"
    later = T0 + timedelta(days=1)
    done = call(url, "full_termination", agent, later, authority=KEYHOLDERS, reason="end", proposal_id=pid, agent_id="self")
    assert done["success"] and done["agent_id"] == agent and done["terminated_at"] == later.isoformat()
    assert done["archive"]["metadata"] == {"triggered_by": "escalate", "termination": True, "authority": KEYHOLDERS}
    assert done["erasure"]["documents_erased"] > 0 and store.state_count(agent) == 0


def test_without_governance_the_gate_refuses(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    found = Registry.discover().extensions
    monkeypatch.setattr(registry_module, "_installed", Registry([found["extinction"], found["privatecore"]]))
    agent = fresh_agent()
    refused = call(url, "full_termination", agent, authority=KEYHOLDERS, reason="end")
    assert refused["success"] is False and refused["reason"] == "governance_unavailable"
    assert refused["details"]["type"] == "UnknownFunction"


def test_an_interrupted_erasure_stays_at_level_4_and_finishes_when_asked_again(url: str, store: Store,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    agent = fresh_agent()
    escalate(url, agent, 1, COUNCIL)

    def broken(self: AgentStates, name: str) -> int:
        raise OSError("the secret store is unreachable")

    with monkeypatch.context() as patch:
        patch.setattr(AgentStates, "erase", broken)
        with pytest.raises(sdk.StepError) as failed:
            escalate(url, agent, 4, KEYHOLDERS)
    assert failed.value.type == "ErasureFailed" and "escalate to level 4 again" in failed.value.message
    assert call(url, "protocol_status", agent) == {"active": True, "current_level": 4, "level_name": "cryptographic_erasure",
                                                   "emergency": "extinction_protocol", "erasure_pending": True}
    assert deescalate(url, agent, 0, KEYHOLDERS) == {"success": False, "reason": "not_reversible"}
    assert escalate(url, agent, 4, COUNCIL)["reason"] == "insufficient_authority"
    done = escalate(url, agent, 4, KEYHOLDERS)
    assert done["success"] and done["previous_level"] == 4 and store.state_count(agent) == 0


# -- properties --------------------------------------------------------------------------------------

MOVES = st.lists(st.tuples(st.booleans(), st.integers(-1, 5), st.sampled_from([COUNCIL, EXECUTIVE, KEYHOLDERS])),
                 min_size=1, max_size=10)


@settings(max_examples=40, deadline=None)
@given(moves=MOVES)
def test_every_change_follows_the_authority_and_reversibility_rules(url: str, moves: list[tuple[bool, int, str]]) -> None:
    agent = fresh_agent()
    level, changes = 0, 0
    for up, target, authority in moves:
        result = escalate(url, agent, target, authority) if up else deescalate(url, agent, target, authority)
        if result["success"]:
            if up:
                assert target > level and authority == h.required_authority(target)
            else:
                assert target < level and authority == h.required_authority(level) and h.reversible(level)
            assert result["previous_level"] == level and result["current_level"] == target
            level, changes = target, changes + 1
            if target == 4:  # erased: what remains is a new agent
                level, changes = 0, 0
        status = call(url, "extinction_status", agent)["state"]
        assert status["current_level"] == level and 0 <= level <= 3 and status["history_count"] == changes


# -- in a run ----------------------------------------------------------------------------------------

TERMINATE = """
chain: terminate
steps:
  propose:
    run: governance.governance.create_proposal
    with: {category: emergency, description: "terminate {{ run.agent }}", proposer: council, action: extinction_escalate_4}
    next:
      - publish: {proposal: "{{ result.proposal_id }}"}
        do: first
  first:
    run: governance.governance.vote_on_proposal
    with: {proposal_id: "{{ ctx.proposal }}", voter: v1, approve: true}
    next: [{do: second}]
  second:
    run: governance.governance.vote_on_proposal
    with: {proposal_id: "{{ ctx.proposal }}", voter: v2, approve: true}
    next: [{do: terminate}]
  terminate:
    run: extinction.extinction.full_termination
    with: {authority: physical_keyholders, reason: "{{ input.reason }}", proposal_id: "{{ ctx.proposal }}"}
output: {termination: "{{ result }}"}
"""

PROPOSE = """
chain: propose
steps:
  propose:
    run: governance.governance.create_proposal
    with: {category: policy_change, description: "keep going", proposer: council}
"""


@pytest.fixture()
def service(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with embedded_service(tmp_path, monkeypatch, Registry.installed(), workers=2) as service:
        yield service


def test_in_a_run_the_erasure_is_a_task_of_its_own_and_the_task_record_is_the_archive(service: Any) -> None:
    service.apply_chains(text=TERMINATE)
    service.apply_chains(text=PROPOSE)
    engine = service._engine
    agent, bystander = fresh_agent(), fresh_agent()
    engine.wait(engine.submit("propose", {}, agent=bystander), 30)
    run_id = engine.submit("terminate", {"reason": "decommissioned"}, agent=agent)
    engine.wait(run_id, 30)
    run = service.get_run(run_id)
    assert run["status"] == "succeeded", run
    termination = run["output"]["termination"]
    assert termination["success"] and termination["agent_id"] == agent and termination["erasure"]["documents_erased"] > 0
    tasks = service.list_tasks(run_id=run_id)
    erasing = [t for t in tasks if t["function"] == "privatecore.privatecore.full_erasure"]
    assert len(erasing) == 1 and erasing[0]["caller"] is not None  # called by the terminate step, recorded under it
    kept = service.get_task(erasing[0]["id"])
    assert kept["result"]["agent_id"] == agent and kept["result"]["erased"] is True
    store = Store(service.settings.database_url)
    try:
        assert store.state_count(agent) == 0  # the proposal, the protocol and its history: all gone
        assert store.state_count(bystander) == 1  # the other agent's proposal, in the same database
    finally:
        store.close()
