"""trust.trust: LegionIO's trust model (four dimensions, asymmetric reward and penalty, the
consider and delegate thresholds) through `legion.sdk.call`, kept in agent state and decayed by
the time elapsed on the clock each call is given."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legion import sdk
from legion.extensions.trust import helpers as h

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NAMES = itertools.count()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('trust')}/state.db"


def fresh_agent() -> str:
    """An agent no other test (or hypothesis example) has used: its state starts empty."""
    return f"agent-{next(NAMES)}"


def call(url: str, function: str, now: datetime = T0, agent: str = "ada", **args: Any) -> Any:
    return sdk.call(f"trust.trust.{function}", args, now=now, agent=agent, database_url=url)


def test_constants_are_legionios() -> None:
    assert h.TRUST_DIMENSIONS == ("reliability", "competence", "integrity", "benevolence")
    assert (h.TRUST_CONSIDER_THRESHOLD, h.TRUST_DELEGATE_THRESHOLD) == (0.3, 0.7)
    assert (h.TRUST_DECAY_RATE, h.TRUST_REINFORCEMENT, h.TRUST_PENALTY, h.NEUTRAL_TRUST) == (0.005, 0.05, 0.15, 0.3)
    assert h.TRUST_PENALTY > h.TRUST_REINFORCEMENT and h.TRUST_DELEGATE_THRESHOLD > h.TRUST_CONSIDER_THRESHOLD
    assert h.NEUTRAL_TRUST == h.TRUST_CONSIDER_THRESHOLD  # new agents are borderline trustworthy
    assert h.DECAY_INTERVAL == 300.0  # LegionIO's decay actor ran every 300 s


def test_composite_is_the_plain_mean_and_values_clamp() -> None:
    assert h.composite_score({"reliability": 0.8, "competence": 0.6, "integrity": 0.4, "benevolence": 0.2}) == pytest.approx(0.5)
    assert h.composite_score({d: 1.0 for d in h.TRUST_DIMENSIONS}) == 1.0
    assert h.composite_score({d: 0.0 for d in h.TRUST_DIMENSIONS}) == 0.0
    assert h.composite_score({d: h.NEUTRAL_TRUST for d in h.TRUST_DIMENSIONS}) == h.NEUTRAL_TRUST
    assert h.composite_score({}) == 0.0
    assert [h.clamp(0.5), h.clamp(-0.1), h.clamp(1.5), h.clamp(0.0), h.clamp(1.0)] == [0.5, 0.0, 1.0, 0.0, 1.0]
    assert [h.clamp(5.0, 0.0, 10.0), h.clamp(15.0, 0.0, 10.0), h.clamp(-1.0, 0.0, 10.0)] == [5.0, 10.0, 0.0]


def test_an_unknown_agent_is_not_found_and_not_created(url: str) -> None:
    agent = fresh_agent()
    assert call(url, "get_trust", agent=agent, agent_id="unknown") == {"found": False, "agent_id": "unknown", "domain": "general"}
    assert call(url, "trust_status", agent=agent) == {"total_entries": 0}


def test_interactions_reward_and_penalise_every_dimension(url: str) -> None:
    agent = fresh_agent()
    up = call(url, "record_trust_interaction", agent=agent, agent_id="bob", positive=True)
    assert up == {"agent_id": "bob", "domain": "general", "positive": True, "composite": pytest.approx(0.35), "interactions": 1}
    down = call(url, "record_trust_interaction", agent=agent, agent_id="eve", positive=False)
    assert down["composite"] == pytest.approx(0.15) and down["composite"] < h.NEUTRAL_TRUST
    bob = call(url, "get_trust", agent=agent, agent_id="bob")["trust"]
    assert bob["dimensions"] == {d: pytest.approx(0.35) for d in h.TRUST_DIMENSIONS}
    assert (bob["interaction_count"], bob["positive_count"], bob["negative_count"]) == (1, 1, 0)
    assert bob["last_interaction"] == bob["created_at"] == T0.isoformat()
    eve = call(url, "get_trust", agent=agent, agent_id="eve")["trust"]
    assert (eve["interaction_count"], eve["positive_count"], eve["negative_count"]) == (1, 0, 1)
    assert set(bob) == {"agent_id", "domain", "dimensions", "composite", "interaction_count", "positive_count",
                        "negative_count", "last_interaction", "created_at"}


def test_the_penalty_outweighs_the_reward(url: str) -> None:
    agent = fresh_agent()
    call(url, "record_trust_interaction", agent=agent, agent_id="bob", positive=True)
    call(url, "record_trust_interaction", agent=agent, agent_id="bob", positive=False)
    # One reward and one penalty leave trust below where it started.
    assert call(url, "get_trust", agent=agent, agent_id="bob")["trust"]["composite"] == pytest.approx(0.2)


def test_trust_is_per_domain(url: str) -> None:
    agent = fresh_agent()
    call(url, "record_trust_interaction", agent=agent, agent_id="bob", domain="code", positive=True)
    call(url, "record_trust_interaction", agent=agent, agent_id="bob", domain="ops", positive=False)
    code = call(url, "get_trust", agent=agent, agent_id="bob", domain="code")["trust"]
    ops = call(url, "get_trust", agent=agent, agent_id="bob", domain="ops")["trust"]
    assert code["composite"] > ops["composite"] and (code["domain"], ops["domain"]) == ("code", "ops")
    assert call(url, "get_trust", agent=agent, agent_id="bob")["found"] is False  # nothing in "general"
    # An id holding the separator does not collide with another (agent, domain) pair.
    call(url, "record_trust_interaction", agent=agent, agent_id="bob:code", domain="x", positive=False)
    assert call(url, "get_trust", agent=agent, agent_id="bob", domain="code")["trust"]["composite"] == pytest.approx(0.35)


def test_one_dimension_can_be_reinforced(url: str) -> None:
    agent = fresh_agent()
    call(url, "record_trust_interaction", agent=agent, agent_id="bob", positive=True)
    done = call(url, "reinforce_trust_dimension", agent=agent, agent_id="bob", dimension="competence", amount=0.2)
    assert done == {"agent_id": "bob", "domain": "general", "dimension": "competence", "composite": pytest.approx(0.4)}
    dims = call(url, "get_trust", agent=agent, agent_id="bob")["trust"]["dimensions"]
    assert dims["competence"] == pytest.approx(0.55) and dims["reliability"] == pytest.approx(0.35)
    call(url, "reinforce_trust_dimension", agent=agent, agent_id="ann", dimension="reliability", amount=5.0)
    ann = call(url, "get_trust", agent=agent, agent_id="ann")["trust"]  # made on first contact
    assert ann["dimensions"]["reliability"] == 1.0 and ann["dimensions"]["integrity"] == h.NEUTRAL_TRUST
    call(url, "reinforce_trust_dimension", agent=agent, agent_id="cid", dimension="integrity")  # default amount
    assert call(url, "get_trust", agent=agent, agent_id="cid")["trust"]["dimensions"]["integrity"] == pytest.approx(0.35)
    with pytest.raises(sdk.StepError) as bad:
        call(url, "reinforce_trust_dimension", agent=agent, agent_id="bob", dimension="charm")
    assert bad.value.type == "InvalidArguments"


def test_decay_follows_the_time_elapsed(url: str) -> None:
    agent = fresh_agent()
    call(url, "record_trust_interaction", agent=agent, agent_id="bob", positive=True)
    later = T0 + timedelta(seconds=300)  # one of LegionIO's decay periods
    seen = call(url, "get_trust", now=later, agent=agent, agent_id="bob")["trust"]
    assert seen["dimensions"] == {d: pytest.approx(0.35 - 0.005) for d in h.TRUST_DIMENSIONS}
    assert seen["composite"] == pytest.approx(0.345)
    # Reading wrote nothing; decay_trust writes what reads show, once per moment.
    assert call(url, "decay_trust", now=later, agent=agent) == {"decayed": 1}
    assert call(url, "decay_trust", now=later, agent=agent) == {"decayed": 1}
    assert call(url, "get_trust", now=later, agent=agent, agent_id="bob")["trust"]["composite"] == pytest.approx(0.345)
    # An hour: twelve periods. An interaction applies decay first, then its reward.
    hour = T0 + timedelta(hours=1)
    assert call(url, "record_trust_interaction", now=hour, agent=agent, agent_id="bob", positive=True)["composite"] == pytest.approx(
        0.35 - 12 * 0.005 + 0.05)
    # Decay floors at 0: two hundred periods take anyone there.
    far = hour + timedelta(seconds=200 * 300)
    assert call(url, "get_trust", now=far, agent=agent, agent_id="bob")["trust"]["dimensions"] == {d: 0.0 for d in h.TRUST_DIMENSIONS}
    # A clock read out of order decays nothing and takes nothing back.
    assert call(url, "get_trust", now=T0, agent=agent, agent_id="bob")["trust"]["composite"] == pytest.approx(0.34)


def test_consider_and_delegate_thresholds(url: str) -> None:
    agent = fresh_agent()
    for _ in range(5):
        call(url, "record_trust_interaction", agent=agent, agent_id="high", positive=True)
    for _ in range(3):
        call(url, "record_trust_interaction", agent=agent, agent_id="low", positive=True)
    call(url, "record_trust_interaction", agent=agent, agent_id="bad", positive=False)
    call(url, "record_trust_interaction", agent=agent, agent_id="coder", domain="code", positive=True)
    trusted = call(url, "trusted_agents", agent=agent)
    assert [a["agent_id"] for a in trusted["agents"]] == ["high", "low"] and trusted["count"] == 2
    assert all(a["domain"] == "general" for a in trusted["agents"])
    assert call(url, "trusted_agents", agent=agent, min_trust=0.5)["count"] == 1
    assert call(url, "trusted_agents", agent=agent, domain="code")["count"] == 1
    assert call(url, "delegatable_agents", agent=agent) == {"agents": [], "count": 0}
    for _ in range(3):  # eight rewards: 0.3 + 8 * 0.05 reaches the delegate threshold
        call(url, "record_trust_interaction", agent=agent, agent_id="high", positive=True)
    delegatable = call(url, "delegatable_agents", agent=agent)
    assert [a["agent_id"] for a in delegatable["agents"]] == ["high"]
    # Half an hour later decay has taken it back under the threshold.
    assert call(url, "delegatable_agents", now=T0 + timedelta(minutes=30), agent=agent)["count"] == 0
    assert call(url, "trust_status", agent=agent) == {"total_entries": 4}


def test_agents_never_see_each_others_trust(url: str) -> None:
    ada, eve = fresh_agent(), fresh_agent()
    call(url, "record_trust_interaction", agent=ada, agent_id="bob", positive=True)
    assert call(url, "get_trust", agent=eve, agent_id="bob")["found"] is False
    assert call(url, "trusted_agents", agent=eve)["count"] == 0 and call(url, "trust_status", agent=eve) == {"total_entries": 0}
    assert call(url, "decay_trust", agent=eve) == {"decayed": 0}
    assert call(url, "get_trust", agent=ada, agent_id="bob")["found"] is True


def test_a_misspelt_argument_is_refused(url: str) -> None:
    with pytest.raises(sdk.StepError) as bad:
        call(url, "record_trust_interaction", agent=fresh_agent(), agentid="bob", positive=True)
    assert bad.value.type == "InvalidArguments"
    with pytest.raises(sdk.StepError) as missing:
        call(url, "record_trust_interaction", agent=fresh_agent(), agent_id="bob")
    assert missing.value.type == "InvalidArguments"


# Property tests: a history is a list of steps, each an interaction, a reinforcement or time passing.
Step = st.one_of(
    st.tuples(st.just("interaction"), st.booleans()),
    st.tuples(st.just("reinforce"), st.sampled_from(h.TRUST_DIMENSIONS), st.floats(-2.0, 2.0, allow_nan=False)),
    st.tuples(st.just("wait"), st.integers(0, 10 * 86_400)),
)


def replay(url: str, agent: str, partner: str, history: list[tuple[Any, ...]]) -> datetime:
    """Run `history` for `partner`; the time it ends at."""
    now = T0
    for step in history:
        if step[0] == "interaction":
            call(url, "record_trust_interaction", now=now, agent=agent, agent_id=partner, positive=step[1])
        elif step[0] == "reinforce":
            call(url, "reinforce_trust_dimension", now=now, agent=agent, agent_id=partner, dimension=step[1], amount=step[2])
        else:
            now += timedelta(seconds=step[1])
    return now


@settings(max_examples=40, deadline=None)
@given(history=st.lists(Step, min_size=1, max_size=10), read_after=st.integers(0, 30 * 86_400))
def test_composite_and_every_dimension_stay_in_range(url: str, history: list[tuple[Any, ...]], read_after: int) -> None:
    agent = fresh_agent()
    end = replay(url, agent, "bob", [("interaction", True), *history])
    for when in (end, end + timedelta(seconds=read_after)):
        trust = call(url, "get_trust", now=when, agent=agent, agent_id="bob")["trust"]
        assert all(0.0 <= v <= 1.0 for v in trust["dimensions"].values())
        assert 0.0 <= trust["composite"] <= 1.0
        assert trust["composite"] == pytest.approx(sum(trust["dimensions"].values()) / 4)


@settings(max_examples=40, deadline=None)
@given(history=st.lists(Step, max_size=8))
def test_a_penalty_moves_further_than_a_reward(url: str, history: list[tuple[Any, ...]]) -> None:
    agent = fresh_agent()
    end = replay(url, agent, "pos", history)
    replay(url, agent, "neg", history)
    before = call(url, "get_trust", now=end, agent=agent, agent_id="pos")
    dims = before["trust"]["dimensions"] if before["found"] else {d: h.NEUTRAL_TRUST for d in h.TRUST_DIMENSIONS}
    composite = before["trust"]["composite"] if before["found"] else h.NEUTRAL_TRUST
    gained = call(url, "record_trust_interaction", now=end, agent=agent, agent_id="pos", positive=True)["composite"] - composite
    lost = composite - call(url, "record_trust_interaction", now=end, agent=agent, agent_id="neg", positive=False)["composite"]
    if min(dims.values()) >= h.TRUST_PENALTY:  # the penalty is not cut short by the floor
        assert lost > gained
        assert lost == pytest.approx(h.TRUST_PENALTY)
    # A reward then a penalty never raise trust, and lower it unless it is already nil.
    after = call(url, "record_trust_interaction", now=end, agent=agent, agent_id="pos", positive=False)["composite"]
    assert after <= composite + 1e-12
    if composite > 0:
        assert after < composite


@settings(max_examples=40, deadline=None)
@given(history=st.lists(Step, max_size=8), first=st.integers(0, 40 * 86_400), second=st.integers(0, 40 * 86_400))
def test_decay_is_monotone_in_elapsed_time(url: str, history: list[tuple[Any, ...]], first: int, second: int) -> None:
    agent = fresh_agent()
    end = replay(url, agent, "bob", [("interaction", True), *history])
    early, late = sorted((first, second))
    a = call(url, "get_trust", now=end + timedelta(seconds=early), agent=agent, agent_id="bob")["trust"]
    b = call(url, "get_trust", now=end + timedelta(seconds=late), agent=agent, agent_id="bob")["trust"]
    assert b["composite"] <= a["composite"]
    assert all(b["dimensions"][d] <= a["dimensions"][d] for d in h.TRUST_DIMENSIONS)
    # Decay written down in two steps is the decay read in one.
    call(url, "decay_trust", now=end + timedelta(seconds=early), agent=agent)
    c = call(url, "get_trust", now=end + timedelta(seconds=late), agent=agent, agent_id="bob")["trust"]
    assert c["composite"] == pytest.approx(b["composite"], abs=1e-9)


def test_state_is_kept_in_the_database_not_the_process(url: str, tmp_path: Path) -> None:
    """What one deployment's database holds, a call with a clean process cache still reads."""
    agent = fresh_agent()
    call(url, "record_trust_interaction", agent=agent, agent_id="bob", positive=True)
    from legion.engine import sdk as engine_sdk

    engine_sdk._states_by_url.pop(url, None)  # as a new process would: nothing kept in memory
    assert call(url, "get_trust", agent=agent, agent_id="bob")["trust"]["composite"] == pytest.approx(0.35)
