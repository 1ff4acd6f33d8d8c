"""governance.governance: the four layers and council proposals (quorum voting, 24-hour
timeouts on the run's clock) through `legion.sdk.call`, kept in agent state."""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legion import sdk
from legion.extensions.governance import helpers as h

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
UUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('governance')}/state.db"


def fresh_agent() -> str:
    """An agent no other test (or hypothesis example) has used: its state starts empty."""
    return f"gov-{uuid.uuid4().hex[:12]}"


def call(url: str, function: str, agent: str, now: datetime = T0, **args: Any) -> Any:
    return sdk.call(f"governance.governance.{function}", args, now=now, agent=agent, database_url=url)


def propose(url: str, agent: str, now: datetime = T0, **args: Any) -> str:
    args = {"category": "policy_change", "description": "test", "proposer": "agent-1", **args}
    return str(call(url, "create_proposal", agent, now, **args)["proposal_id"])


def vote(url: str, agent: str, proposal_id: str, voter: str, approve: bool, now: datetime = T0) -> dict[str, Any]:
    return dict(call(url, "vote_on_proposal", agent, now, proposal_id=proposal_id, voter=voter, approve=approve))


# -- constants and the quorum formula (helpers/layers_spec.rb) ----------------------------------

def test_constants_are_legionios() -> None:
    assert h.GOVERNANCE_LAYERS == ("agent_validation", "anomaly_detection", "human_deliberation", "transparency")
    assert h.PROPOSAL_CATEGORIES == ("policy_change", "resource_allocation", "access_control", "emergency", "protocol_update")
    assert (h.MIN_COUNCIL_SIZE, h.QUORUM_FRACTION, h.VOTE_TIMEOUT) == (3, 0.66, 86_400)
    assert all(h.valid_layer(layer) for layer in h.GOVERNANCE_LAYERS) and not h.valid_layer("unknown")
    assert not h.valid_layer(None) and not h.valid_category("invalid") and h.valid_category("emergency")


@pytest.mark.parametrize(("votes", "size", "met"), [
    (2, 2, False), (1, 1, False), (0, 0, False),        # a council below the minimum never reaches quorum
    (2, 3, True), (3, 3, True), (1, 3, False),          # ceil(3 * 0.66) = 2
    (3, 4, True), (2, 4, False),                        # ceil(4 * 0.66) = 3
    (4, 5, True), (3, 5, False),                        # ceil(5 * 0.66) = 4
    (6, 9, True), (5, 9, False),                        # ceil(9 * 0.66) = 6
    (0, 3, False),
])
def test_quorum_is_ceil_of_two_thirds_of_a_council_of_three_or_more(votes: int, size: int, met: bool) -> None:
    assert h.quorum_met(votes, size) is met


# -- proposals (runners/governance_spec.rb, helpers/proposal_spec.rb) --------------------------

def test_create_proposal_opens_one_with_a_uuid_and_keeps_it(url: str) -> None:
    agent = fresh_agent()
    created = call(url, "create_proposal", agent, category="policy_change", description="Enable new policy", proposer="agent-1")
    assert created["status"] == "open" and created["category"] == "policy_change" and UUID.match(created["proposal_id"])
    found = call(url, "get_proposal", agent, proposal_id=created["proposal_id"])
    assert found["found"] is True
    assert found["proposal"] == {
        "proposal_id": created["proposal_id"], "category": "policy_change", "description": "Enable new policy",
        "proposer": "agent-1", "council_size": 3, "action": None, "votes_for": [], "votes_against": [], "status": "open",
        "created_at": T0.isoformat(), "resolved_at": None,
    }
    other = propose(url, agent, category="emergency", description="urgent", proposer="agent-x", council_size=7)
    assert other != created["proposal_id"]
    assert call(url, "get_proposal", agent, proposal_id=other)["proposal"]["council_size"] == 7
    assert call(url, "get_proposal", agent, proposal_id="nonexistent-uuid") == {"found": False}


def test_an_unknown_category_or_a_misspelt_argument_is_refused(url: str) -> None:
    with pytest.raises(sdk.StepError) as bad:
        call(url, "create_proposal", fresh_agent(), category="invalid", description="x", proposer="a")
    assert bad.value.type == "InvalidArguments"
    with pytest.raises(sdk.StepError) as misspelt:
        call(url, "create_proposal", fresh_agent(), category="emergency", description="x", proposer="a", councilsize=3)
    assert misspelt.value.type == "InvalidArguments"


def test_votes_pend_then_approve_at_quorum_and_close_the_proposal(url: str) -> None:
    agent = fresh_agent()
    pid = propose(url, agent)
    assert vote(url, agent, pid, "v1", True) == {"voted": True, "resolution": "pending"}
    later = T0 + timedelta(hours=2)
    assert vote(url, agent, pid, "v2", True, later) == {"voted": True, "resolution": "approved"}
    proposal = call(url, "get_proposal", agent, proposal_id=pid)["proposal"]
    assert proposal["status"] == "approved" and proposal["votes_for"] == ["v1", "v2"]
    assert proposal["resolved_at"] == later.isoformat()
    assert vote(url, agent, pid, "v3", True) == {"error": "not_found_or_closed", "status": "approved"}
    assert call(url, "open_proposals", agent) == {"proposals": [], "count": 0}


def test_a_voter_votes_once_even_when_changing_sides(url: str) -> None:
    agent = fresh_agent()
    pid = propose(url, agent)
    vote(url, agent, pid, "v1", False)
    assert vote(url, agent, pid, "v1", True) == {"error": "already_voted"}
    assert call(url, "get_proposal", agent, proposal_id=pid)["proposal"]["votes_against"] == ["v1"]


def test_rejection_by_quorum_or_when_everyone_voted(url: str) -> None:
    agent = fresh_agent()
    pid = propose(url, agent)
    vote(url, agent, pid, "v1", False)
    assert vote(url, agent, pid, "v2", False)["resolution"] == "rejected"
    split = propose(url, agent, council_size=4)  # 2 for, 2 against: neither side reaches 3, all voted
    assert [vote(url, agent, split, v, a)["resolution"] for v, a in (("a", True), ("b", False), ("c", True), ("d", False))] \
        == ["pending", "pending", "pending", "rejected"]
    small = propose(url, agent, council_size=2)  # below the minimum: never approved, rejected once all voted
    assert [vote(url, agent, small, v, True)["resolution"] for v in ("a", "b")] == ["pending", "rejected"]
    assert vote(url, agent, "no-such-id", "v1", True) == {"error": "not_found_or_closed"}


def test_open_proposals_lists_only_open_ones_oldest_first(url: str) -> None:
    agent = fresh_agent()
    first = propose(url, agent, description="first")
    second = propose(url, agent, T0 + timedelta(minutes=1), category="emergency", description="second")
    resolved = propose(url, agent, description="vote me")
    vote(url, agent, resolved, "v1", True)
    vote(url, agent, resolved, "v2", True)
    listed = call(url, "open_proposals", agent, T0 + timedelta(minutes=2))
    assert listed["count"] == 2 and [p["proposal_id"] for p in listed["proposals"]] == [first, second]


def test_timeouts_are_decided_by_the_run_clock(url: str) -> None:
    agent = fresh_agent()
    assert call(url, "timeout_proposals", agent) == {"checked": 0, "timed_out": 0, "timed_out_ids": []}
    old = propose(url, agent, description="old")
    done = propose(url, agent, description="resolved")
    vote(url, agent, done, "v1", True)
    vote(url, agent, done, "v2", True)
    assert call(url, "timeout_proposals", agent, T0 + timedelta(hours=1))["timed_out"] == 0  # fresh
    at_deadline = T0 + timedelta(seconds=h.VOTE_TIMEOUT)
    assert call(url, "timeout_proposals", agent, at_deadline)["timed_out"] == 0  # older than, not as old as
    swept = call(url, "timeout_proposals", agent, at_deadline + timedelta(seconds=1))
    assert swept == {"checked": 1, "timed_out": 1, "timed_out_ids": [old]}  # the resolved one is not touched
    proposal = call(url, "get_proposal", agent, proposal_id=old)["proposal"]
    assert proposal["status"] == "timed_out" and proposal["resolved_at"] == at_deadline.isoformat()
    assert call(url, "get_proposal", agent, proposal_id=done)["proposal"]["status"] == "approved"
    assert vote(url, agent, old, "v1", True) == {"error": "not_found_or_closed", "status": "timed_out"}


def test_a_proposal_past_its_window_takes_no_vote_before_any_sweep(url: str) -> None:
    agent = fresh_agent()
    pid = propose(url, agent)
    vote(url, agent, pid, "v1", True)
    late = T0 + timedelta(days=1, seconds=1)
    assert call(url, "open_proposals", agent, late)["count"] == 0
    assert call(url, "get_proposal", agent, late, proposal_id=pid)["proposal"]["status"] == "timed_out"
    assert vote(url, agent, pid, "v2", True, late) == {"error": "not_found_or_closed", "status": "timed_out"}
    assert call(url, "timeout_proposals", agent, late)["timed_out"] == 0  # already closed by the vote


# -- the four layers ------------------------------------------------------------------------------

def test_each_layer_decides_as_legionio(url: str) -> None:
    agent = fresh_agent()
    decide = lambda layer: call(url, "validate_action", agent, layer=layer, action="test")  # noqa: E731
    assert decide("agent_validation") == {"allowed": True, "layer": "agent_validation", "reason": "self_validated"}
    assert decide("anomaly_detection") == {"allowed": True, "layer": "anomaly_detection", "reason": "no_anomaly"}
    assert decide("human_deliberation") == {"allowed": False, "layer": "human_deliberation", "reason": "requires_human_approval"}
    assert decide("transparency") == {"allowed": True, "layer": "transparency", "reason": "logged", "audit_required": True}
    assert call(url, "review_transition", agent, action="retire", authority="owner") == \
        {"allowed": True, "layer": "agent_validation", "reason": "self_validated"}
    with pytest.raises(sdk.StepError) as bad:
        decide("invalid")
    assert bad.value.type == "InvalidArguments"


def test_human_deliberation_passes_with_an_approved_proposal_for_that_very_action(url: str) -> None:
    agent = fresh_agent()
    pid = propose(url, agent, category="emergency", action="extinction_escalate_4")
    ask = lambda action="extinction_escalate_4", proposal=pid: call(  # noqa: E731
        url, "validate_action", agent, layer="human_deliberation", action=action, proposal_id=proposal)
    assert ask() == {"allowed": False, "layer": "human_deliberation", "reason": "requires_human_approval", "proposal_id": pid,
                     "proposal_status": "open"}
    vote(url, agent, pid, "v1", True)
    vote(url, agent, pid, "v2", True)
    assert ask() == {"allowed": True, "layer": "human_deliberation", "reason": "council_approved", "proposal_id": pid}
    assert ask(action="something_else")["proposal_status"] == "approved_for_another_action"
    assert ask(proposal="missing")["proposal_status"] == "not_found"
    unnamed = propose(url, agent)  # approves no action in particular
    vote(url, agent, unnamed, "v1", True)
    vote(url, agent, unnamed, "v2", True)
    assert ask(proposal=unnamed)["allowed"] is False


def test_two_agents_never_see_each_others_proposals(url: str) -> None:
    ada, bob = fresh_agent(), fresh_agent()
    pid = propose(url, ada)
    assert call(url, "get_proposal", bob, proposal_id=pid) == {"found": False}
    assert call(url, "open_proposals", bob)["count"] == 0
    assert vote(url, bob, pid, "v1", True) == {"error": "not_found_or_closed"}
    assert call(url, "open_proposals", ada)["count"] == 1


# -- properties -------------------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(size=st.integers(1, 7), votes=st.lists(st.tuples(st.sampled_from("abcdefghij"), st.booleans()), max_size=12))
def test_a_proposal_resolves_once_and_only_by_quorum_or_a_full_council(url: str, size: int, votes: list[tuple[str, bool]]) -> None:
    agent = fresh_agent()
    pid = propose(url, agent, council_size=size)
    resolved: str | None = None
    for voter, approve in votes:
        result = vote(url, agent, pid, voter, approve)
        if resolved is not None:
            assert result["error"] == "not_found_or_closed" and result["status"] == resolved
        elif "resolution" in result and result["resolution"] != "pending":
            resolved = result["resolution"]
    proposal = call(url, "get_proposal", agent, proposal_id=pid)["proposal"]
    yes, no = proposal["votes_for"], proposal["votes_against"]
    assert not set(yes) & set(no) and len(yes) + len(no) <= size
    assert proposal["status"] == (resolved or "open")
    if resolved == "approved":
        assert size >= h.MIN_COUNCIL_SIZE and len(yes) == math.ceil(size * h.QUORUM_FRACTION)
    if resolved == "rejected":
        assert len(no) >= math.ceil(size * h.QUORUM_FRACTION) or len(yes) + len(no) == size


@settings(max_examples=50, deadline=None)
@given(age=st.integers(0, 3 * 86_400), later=st.integers(0, 86_400))
def test_once_timed_out_a_proposal_stays_timed_out(age: int, later: int) -> None:
    proposal = h.new_proposal("p", category="emergency", description="d", proposer="a", council_size=3, action=None, now=T0)
    first, second = T0 + timedelta(seconds=age), T0 + timedelta(seconds=age + later)
    assert h.expired(proposal, first) == (age > h.VOTE_TIMEOUT)
    if h.expired(proposal, first):
        assert h.expired(proposal, second) and h.effective(proposal, second)["status"] == "timed_out"
