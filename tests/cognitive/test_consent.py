"""consent.consent: LegionIO's consent gradient through `legion.sdk.call`, on the clock each
call is given: promotion earned one tier at a time, demotion, the 24 h cooldown, and autonomy
only with a human's approval recorded."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from legion import sdk
from legion.extensions.consent import helpers as h

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(seconds=h.PROMOTION_COOLDOWN)
NAMES = itertools.count()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('consent')}/state.db"


def fresh_agent() -> str:
    return f"agent-{next(NAMES)}"


def call(url: str, function: str, now: datetime = T0, agent: str = "ada", **args: Any) -> Any:
    return sdk.call(f"consent.consent.{function}", args, now=now, agent=agent, database_url=url)


def record(url: str, agent: str, successes: int, failures: int = 0, domain: str = "deploy", now: datetime = T0) -> None:
    for success in [True] * successes + [False] * failures:
        call(url, "record_action", now=now, agent=agent, domain=domain, success=success)


def test_constants_and_tier_steps_are_legionios() -> None:
    assert h.TIERS == ("autonomous", "act_notify", "consult", "human_only")
    assert h.TIER_ORDER == {"autonomous": 0, "act_notify": 1, "consult": 2, "human_only": 3}
    assert h.DEFAULT_TIER == "consult"
    assert (h.PROMOTION_THRESHOLD, h.DEMOTION_THRESHOLD, h.MIN_ACTIONS_TO_PROMOTE) == (0.8, 0.5, 10)
    assert (h.PROMOTION_COOLDOWN, h.APPROVAL_TIMEOUT, h.HISTORY_LIMIT) == (86_400, 259_200, 50)
    assert [h.promote(t) for t in h.TIERS] == ["autonomous", "autonomous", "act_notify", "consult"]
    assert [h.demote(t) for t in h.TIERS] == ["act_notify", "consult", "human_only", "human_only"]
    assert (h.promote("nonsense"), h.demote("nonsense")) == ("act_notify", "human_only")  # counted as consult
    assert h.more_autonomous("autonomous", "consult") and not h.more_autonomous("human_only", "consult")
    assert h.valid_tier("consult") and not h.valid_tier("root")


def test_a_new_domain_asks_first(url: str) -> None:
    agent = fresh_agent()
    assert call(url, "check_consent", agent=agent, domain="deploy") == {
        "domain": "deploy", "tier": "consult", "allowed": False, "needs_notify": False, "needs_consult": True, "human_only": False}
    assert call(url, "consent_status", agent=agent) == {"domains": {}, "count": 0}  # reading made nothing


def test_success_rate_is_cumulative(url: str) -> None:
    agent = fresh_agent()
    assert call(url, "record_action", agent=agent, domain="deploy", success=True) == {
        "domain": "deploy", "success": True, "success_rate": 1.0, "total": 1}
    done = call(url, "record_action", agent=agent, domain="deploy", success=False)
    assert (done["success_rate"], done["total"]) == (0.5, 2)
    record(url, agent, 2)
    assert call(url, "record_action", agent=agent, domain="deploy", success=True)["success_rate"] == 0.8  # 4 of 5


@pytest.mark.parametrize(("successes", "failures", "recommendation", "proposed"), [
    (9, 0, "ineligible", None),       # fewer than ten actions
    (10, 0, "promote", "act_notify"),
    (8, 2, "promote", "act_notify"),  # exactly 0.8 promotes
    (7, 3, "maintain", None),
    (5, 5, "maintain", None),         # exactly 0.5 does not demote
    (4, 6, "demote", "human_only"),
    (15, 0, "promote", "act_notify"),  # LegionIO's spec cases
    (4, 8, "demote", "human_only"),
])
def test_evaluation(url: str, successes: int, failures: int, recommendation: str, proposed: str | None) -> None:
    agent = fresh_agent()
    record(url, agent, successes, failures)
    found = call(url, "evaluate_tier_change", agent=agent, domain="deploy")
    assert found["recommendation"] == recommendation and found["current_tier"] == "consult"
    assert found.get("proposed_tier") == proposed
    assert found["success_rate"] == pytest.approx(successes / (successes + failures))
    assert call(url, "check_consent", agent=agent, domain="deploy")["tier"] == "consult"  # evaluating changes nothing


def test_the_way_to_autonomy_is_earned_cooled_and_approved(url: str) -> None:
    agent = fresh_agent()
    record(url, agent, 10)
    sweep = call(url, "evaluate_and_apply_tiers", agent=agent)
    assert sweep == {"evaluated": 1, "applied_promotions": 1, "applied_demotions": 0, "approval_requests": 0, "expired_approvals": 0,
                     "requested_domains": []}
    assert call(url, "check_consent", agent=agent, domain="deploy")["needs_notify"] is True
    # The cooldown: nothing changes for 24 h, however good the record.
    record(url, agent, 5, now=T0 + DAY / 2)
    assert call(url, "evaluate_tier_change", now=T0 + DAY - timedelta(seconds=1), agent=agent, domain="deploy")[
        "recommendation"] == "ineligible"
    assert call(url, "evaluate_and_apply_tiers", now=T0 + DAY - timedelta(seconds=1), agent=agent)["approval_requests"] == 0
    # After it, the promotion to autonomous is proposed, but becomes a request, not a change.
    assert call(url, "evaluate_tier_change", now=T0 + DAY, agent=agent, domain="deploy") | {"success_rate": 1} == {
        "domain": "deploy", "current_tier": "act_notify", "recommendation": "promote", "success_rate": 1,
        "proposed_tier": "autonomous", "requires_approval": True}
    sweep = call(url, "evaluate_and_apply_tiers", now=T0 + DAY, agent=agent)
    assert (sweep["applied_promotions"], sweep["approval_requests"], sweep["requested_domains"]) == (0, 1, ["deploy"])
    assert call(url, "check_consent", now=T0 + DAY, agent=agent, domain="deploy")["allowed"] is False
    assert call(url, "request_autonomous_approval", now=T0 + DAY, agent=agent, domain="deploy") == {
        "requested": False, "domain": "deploy", "error": "already_pending"}
    status = call(url, "consent_status", now=T0 + DAY, agent=agent, domain="deploy")
    assert (status["pending_tier"], status["pending_since"]) == ("autonomous", (T0 + DAY).isoformat())
    # A human approves: now, and only now, the domain is autonomous.
    approved = call(url, "approve_promotion", now=T0 + DAY + timedelta(hours=2), agent=agent, domain="deploy", approved_by="grace")
    assert approved == {"approved": True, "domain": "deploy", "old_tier": "act_notify", "new_tier": "autonomous", "approved_by": "grace"}
    assert call(url, "check_consent", agent=agent, domain="deploy")["allowed"] is True
    history = call(url, "consent_status", agent=agent, domain="deploy")["history"]
    assert history == [{"from": "consult", "to": "act_notify", "at": T0.isoformat()},
                       {"from": "act_notify", "to": "autonomous", "at": (T0 + DAY + timedelta(hours=2)).isoformat(),
                        "approved_by": "grace"}]
    assert call(url, "approve_promotion", agent=agent, domain="deploy", approved_by="grace") == {
        "approved": False, "domain": "deploy", "error": "no_pending_approval"}
    assert call(url, "request_autonomous_approval", agent=agent, domain="deploy")["error"] == "already_autonomous"


def test_failures_demote_and_drop_a_pending_request(url: str) -> None:
    agent = fresh_agent()
    record(url, agent, 10)
    call(url, "evaluate_and_apply_tiers", agent=agent)  # act_notify
    assert call(url, "request_autonomous_approval", now=T0 + DAY, agent=agent, domain="deploy")["requested"] is True
    record(url, agent, 0, 20, now=T0 + DAY)  # 10 of 30: a third
    sweep = call(url, "evaluate_and_apply_tiers", now=T0 + DAY + timedelta(hours=1), agent=agent)
    assert (sweep["applied_demotions"], sweep["approval_requests"]) == (1, 0)
    status = call(url, "consent_status", agent=agent, domain="deploy")
    assert (status["tier"], status["pending_tier"]) == ("consult", None)
    assert call(url, "approve_promotion", agent=agent, domain="deploy", approved_by="grace")["error"] == "no_pending_approval"
    # Each demotion waits out its own cooldown too, down to the floor.
    assert call(url, "evaluate_and_apply_tiers", now=T0 + DAY * 2, agent=agent)["applied_demotions"] == 0
    assert call(url, "evaluate_and_apply_tiers", now=T0 + DAY * 2 + timedelta(hours=1), agent=agent)["applied_demotions"] == 1
    assert call(url, "check_consent", agent=agent, domain="deploy")["human_only"] is True
    assert call(url, "evaluate_tier_change", now=T0 + DAY * 5, agent=agent, domain="deploy")["recommendation"] == "already_min"


def test_requests_expire_after_72_hours(url: str) -> None:
    agent = fresh_agent()
    record(url, agent, 10)
    call(url, "apply_tier_change", agent=agent, domain="deploy", new_tier="act_notify")
    asked = T0 + DAY
    assert call(url, "request_autonomous_approval", now=asked, agent=agent, domain="deploy", requested_by="ops-bot") == {
        "requested": True, "domain": "deploy", "current_tier": "act_notify", "proposed_tier": "autonomous", "success_rate": 1.0,
        "total_actions": 10, "requested_at": asked.isoformat(), "agent": agent}
    assert call(url, "consent_status", now=asked, agent=agent, domain="deploy")["pending_tier"] == "autonomous"
    timeout = timedelta(seconds=h.APPROVAL_TIMEOUT)
    assert call(url, "expire_pending_approvals", now=asked + timeout, agent=agent) == {"expired": 0}  # more than 72 h: not yet
    late = asked + timeout + timedelta(seconds=1)
    assert call(url, "approve_promotion", now=late, agent=agent, domain="deploy", approved_by="grace") == {
        "approved": False, "domain": "deploy", "error": "approval_expired"}
    assert call(url, "consent_status", now=late, agent=agent, domain="deploy")["pending_tier"] is None
    assert call(url, "check_consent", now=late, agent=agent, domain="deploy")["tier"] == "act_notify"
    # A custom timeout is honoured.
    call(url, "request_autonomous_approval", now=late, agent=agent, domain="deploy")
    assert call(url, "expire_pending_approvals", now=late + timedelta(seconds=1), agent=agent, timeout=999_999) == {"expired": 0}
    assert call(url, "expire_pending_approvals", now=late + timedelta(seconds=1), agent=agent, timeout=0) == {"expired": 1}
    # So does the sweep.
    call(url, "request_autonomous_approval", now=late, agent=agent, domain="deploy")
    assert call(url, "evaluate_and_apply_tiers", now=late + timeout + timedelta(seconds=1), agent=agent)["expired_approvals"] == 1


def test_a_rejection_holds_for_the_cooldown(url: str) -> None:
    agent = fresh_agent()
    record(url, agent, 10)
    call(url, "apply_tier_change", agent=agent, domain="deploy", new_tier="act_notify")
    call(url, "request_autonomous_approval", now=T0 + DAY, agent=agent, domain="deploy")
    assert call(url, "reject_promotion", now=T0 + DAY, agent=agent, domain="deploy", rejected_by="grace", reason="not yet") == {
        "rejected": True, "domain": "deploy", "rejected_by": "grace", "reason": "not yet"}
    assert call(url, "reject_promotion", agent=agent, domain="deploy", rejected_by="grace")["error"] == "no_pending_approval"
    assert call(url, "request_autonomous_approval", now=T0 + DAY + DAY / 2, agent=agent, domain="deploy")["error"] == "recently_rejected"
    assert call(url, "evaluate_and_apply_tiers", now=T0 + DAY + DAY / 2, agent=agent)["approval_requests"] == 0
    assert call(url, "evaluate_and_apply_tiers", now=T0 + DAY * 2, agent=agent)["approval_requests"] == 1
    assert call(url, "check_consent", now=T0 + DAY * 2, agent=agent, domain="deploy")["allowed"] is False


def test_applying_a_tier_by_hand_keeps_the_rules(url: str) -> None:
    agent = fresh_agent()
    refused = call(url, "apply_tier_change", agent=agent, domain="deploy", new_tier="act_notify")
    assert refused == {"domain": "deploy", "old_tier": "consult", "new_tier": "act_notify", "changed": False, "error": "not_earned"}
    assert call(url, "apply_tier_change", agent=agent, domain="deploy", new_tier="autonomous")["error"] == "skips_tier"
    assert call(url, "request_autonomous_approval", agent=agent, domain="deploy")["error"] == "skips_tier"
    record(url, agent, 10)
    assert call(url, "apply_tier_change", agent=agent, domain="deploy", new_tier="act_notify")["changed"] is True
    assert call(url, "apply_tier_change", now=T0 + DAY, agent=agent, domain="deploy", new_tier="autonomous")["error"] == "approval_required"
    assert call(url, "apply_tier_change", agent=agent, domain="deploy", new_tier="act_notify") == {
        "domain": "deploy", "old_tier": "act_notify", "new_tier": "act_notify", "changed": False}  # no change, no new cooldown
    # Away from autonomy is always allowed, at once and by any number of steps.
    assert call(url, "apply_tier_change", agent=agent, domain="deploy", new_tier="human_only")["changed"] is True
    assert len(call(url, "consent_status", agent=agent, domain="deploy")["history"]) == 2
    # Back up, earned and after the cooldown: one step at a time still.
    later = T0 + DAY * 2
    assert call(url, "apply_tier_change", now=later, agent=agent, domain="deploy", new_tier="act_notify")["error"] == "skips_tier"
    assert call(url, "apply_tier_change", now=later, agent=agent, domain="deploy", new_tier="consult")["changed"] is True
    assert call(url, "apply_tier_change", now=later, agent=agent, domain="deploy", new_tier="act_notify")["error"] == "not_earned"
    with pytest.raises(sdk.StepError) as bad:
        call(url, "apply_tier_change", agent=agent, domain="deploy", new_tier="root")
    assert bad.value.type == "InvalidArguments"


def test_evaluating_every_domain(url: str) -> None:
    agent = fresh_agent()
    record(url, agent, 10, domain="deploy")
    record(url, agent, 2, 8, domain="email")
    record(url, agent, 3, domain="refunds")
    assert call(url, "evaluate_all_tiers", agent=agent) == {"evaluated": 3, "promotions": ["deploy"], "demotions": ["email"]}
    status = call(url, "consent_status", agent=agent)
    assert status["count"] == 3 and status["domains"]["email"] == {
        "tier": "consult", "success_rate": 0.2, "total_actions": 10, "pending_tier": None, "pending_since": None}
    one = call(url, "consent_status", agent=agent, domain="deploy")
    assert (one["tier"], one["total"], one["eligible"]) == ("consult", 10, True)


def test_history_keeps_the_last_fifty_changes() -> None:
    domain = h.new_domain()
    for i in range(60):
        domain = h.set_tier(domain, "human_only" if i % 2 == 0 else "consult", T0 + timedelta(days=i))
    assert len(domain["history"]) == 50 and domain["history"][-1]["at"] == (T0 + timedelta(days=59)).isoformat()


def test_agents_never_see_each_others_consent(url: str) -> None:
    ada, eve = fresh_agent(), fresh_agent()
    record(url, ada, 10)
    call(url, "apply_tier_change", agent=ada, domain="deploy", new_tier="act_notify")
    assert call(url, "check_consent", agent=eve, domain="deploy")["tier"] == "consult"
    assert call(url, "evaluate_all_tiers", agent=eve)["evaluated"] == 0
    assert call(url, "check_consent", agent=ada, domain="deploy")["tier"] == "act_notify"


# Property tests: any sequence of what callers can do, at any pace.
# Weighted so that sequences often earn promotions, wait out cooldowns and reach a human; the
# tier drawn with each operation is used by "apply" only.
OPS = ["record+"] * 2 + ["record-"] + ["sweep"] * 4 + ["apply"] * 2 + ["request"] * 2 + ["approve"] * 4 + ["reject", "expire"]
Op = st.tuples(st.sampled_from(OPS), st.sampled_from(h.TIERS))
Gap = st.sampled_from([0, 60, 3_600, 86_399, 86_400, 86_401, 172_800, 259_201])


@settings(max_examples=30, deadline=None)
@given(ops=st.lists(st.tuples(Op, Gap), min_size=8, max_size=16), warm=st.integers(8, 14))
def test_no_skipped_tier_no_early_change_no_autonomy_without_approval(url: str, ops: list[tuple[tuple[Any, ...], int]],
                                                                      warm: int) -> None:
    agent = fresh_agent()
    record(url, agent, warm)  # a record good enough to earn promotions, sometimes
    now = T0
    approvals: set[str] = set()  # when a human approved
    by_hand: set[str] = set()  # when apply_tier_change moved the domain down (allowed at any time)
    for op, gap in ops:
        now += timedelta(seconds=gap)
        name = op[0]
        if name in ("record+", "record-"):
            call(url, "record_action", now=now, agent=agent, domain="deploy", success=name == "record+")
        elif name == "sweep":
            call(url, "evaluate_and_apply_tiers", now=now, agent=agent)
        elif name == "apply":
            done = call(url, "apply_tier_change", now=now, agent=agent, domain="deploy", new_tier=op[1])
            if done["changed"]:
                assert not h.more_autonomous(op[1], done["old_tier"]) or h.TIER_ORDER[done["old_tier"]] - h.TIER_ORDER[op[1]] == 1
                if h.more_autonomous(done["old_tier"], op[1]):
                    by_hand.add(now.isoformat())
        elif name == "request":
            call(url, "request_autonomous_approval", now=now, agent=agent, domain="deploy")
        elif name == "approve":
            if call(url, "approve_promotion", now=now, agent=agent, domain="deploy", approved_by="grace")["approved"]:
                approvals.add(now.isoformat())
        elif name == "reject":
            call(url, "reject_promotion", now=now, agent=agent, domain="deploy", rejected_by="grace")
        else:
            call(url, "expire_pending_approvals", now=now, agent=agent)
        if name not in ("sweep", "apply", "approve"):
            continue  # nothing else changes the tier
        tier = call(url, "check_consent", now=now, agent=agent, domain="deploy")["tier"]
        if tier == "autonomous":
            assert approvals, "autonomous without any approval"
            event("reached autonomous")
    history = call(url, "consent_status", now=now, agent=agent, domain="deploy")["history"]
    previous: datetime | None = None
    for change in history:
        at = datetime.fromisoformat(change["at"])
        if h.more_autonomous(change["to"], change["from"]):
            assert h.TIER_ORDER[change["from"]] - h.TIER_ORDER[change["to"]] == 1, change  # one step at a time
            if previous is not None:
                assert (at - previous).total_seconds() >= h.PROMOTION_COOLDOWN, change  # never inside the cooldown
        elif change["at"] not in by_hand and previous is not None:
            assert (at - previous).total_seconds() >= h.PROMOTION_COOLDOWN, change  # automatic demotions wait too
        if change["to"] == "autonomous":
            assert change.get("approved_by") == "grace" and change["at"] in approvals
        else:
            assert "approved_by" not in change
        previous = at
    event(f"{len(history)} tier changes" if len(history) < 3 else "3 or more tier changes")
