"""conflict.conflict: LegionIO's conflicts (severity, posture, exchanges, resolution, stale
checks) through `legion.sdk.call`, kept in agent state, aged on the clock each call is given;
with no model configured, resolutions and stale marks are written by rule. (The model's path:
test_conflict_llm.py.)"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legion import sdk
from legion.extensions.conflict import helpers as h

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(seconds=h.STALE_CONFLICT_TIMEOUT)
UUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
NAMES = itertools.count()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('conflict')}/state.db"


@pytest.fixture(autouse=True)
def no_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("LEGION_LLM_MODEL", raising=False)
    yield


def fresh_agent() -> str:
    return f"agent-{next(NAMES)}"


def call(url: str, function: str, now: datetime = T0, agent: str = "ada", **args: Any) -> Any:
    return sdk.call(f"conflict.conflict.{function}", args, now=now, agent=agent, database_url=url)


def register(url: str, agent: str, severity: str = "high", now: datetime = T0, description: str = "disagreement") -> str:
    return str(call(url, "register_conflict", now=now, agent=agent, parties=["agent", "human"], severity=severity,
                    description=description)["conflict_id"])


def test_levels_and_postures_are_legionios() -> None:
    assert h.LEVELS == ("low", "medium", "high", "critical")
    assert h.LEVEL_ORDER == {"low": 0, "medium": 1, "high": 2, "critical": 3}
    assert h.POSTURES == ("speak_once", "persistent_engagement", "stubborn_presence")
    assert (h.PERSISTENT_THRESHOLD, h.STUBBORN_THRESHOLD, h.STALE_CONFLICT_TIMEOUT) == ("high", "critical", 86_400)
    assert (h.MAX_CONFLICTS, h.RESOLVED_RETENTION_DAYS) == (1000, 30)
    assert [h.recommended_posture(s) for s in (*h.LEVELS, "unknown")] == [
        "speak_once", "speak_once", "persistent_engagement", "stubborn_presence", "speak_once"]
    assert all(h.valid_level(s) for s in h.LEVELS) and not any(h.valid_level(s) for s in ("catastrophic", None, "HIGH"))
    assert all(h.valid_posture(p) for p in h.POSTURES) and not h.valid_posture("passive") and not h.valid_posture(None)
    assert h.severity_gte("medium", "medium") and h.severity_gte("high", "medium") and not h.severity_gte("low", "medium")
    assert h.severity_gte("critical", "high") and not h.severity_gte("low", "critical")
    assert not h.severity_gte("unknown", "medium") and h.severity_gte("low", "unknown")  # unknown counts as low


def test_registering_sets_the_posture_from_the_severity(url: str) -> None:
    agent = fresh_agent()
    done = call(url, "register_conflict", agent=agent, parties=["agent", "human"], severity="high", description="disagreement")
    assert UUID.match(done["conflict_id"]) and (done["severity"], done["posture"]) == ("high", "persistent_engagement")
    critical = call(url, "register_conflict", agent=agent, parties=["agent", "human"], severity="critical", description="safety")
    assert critical["posture"] == "stubborn_presence" and critical["conflict_id"] != done["conflict_id"]
    conflict = call(url, "get_conflict", agent=agent, conflict_id=done["conflict_id"])["conflict"]
    assert conflict == {"conflict_id": done["conflict_id"], "parties": ["agent", "human"], "severity": "high",
                        "posture": "persistent_engagement", "description": "disagreement", "status": "active", "outcome": None,
                        "created_at": T0.isoformat(), "resolved_at": None, "exchanges": [], "resolution_notes": None,
                        "stale_marked_at": None}
    assert call(url, "recommended_posture", severity="critical") == {"severity": "critical", "posture": "stubborn_presence"}
    for bad in ({"severity": "invalid"}, {"severity": "high", "parties": "agent"}):
        with pytest.raises(sdk.StepError) as refused:
            call(url, "register_conflict", agent=agent, **({"parties": [], "description": "test"} | bad))
        assert refused.value.type == "InvalidArguments"


def test_exchanges_are_kept_in_order_with_their_time(url: str) -> None:
    agent = fresh_agent()
    cid = register(url, agent)
    for i, (speaker, message) in enumerate((("agent", "I object"), ("human", "proceed anyway"), ("agent", "noted"))):
        assert call(url, "add_exchange", now=T0 + timedelta(minutes=i), agent=agent, conflict_id=cid, speaker=speaker,
                    message=message) == {"recorded": True}
    exchanges = call(url, "get_conflict", agent=agent, conflict_id=cid)["conflict"]["exchanges"]
    assert exchanges == [{"speaker": "agent", "message": "I object", "at": T0.isoformat()},
                         {"speaker": "human", "message": "proceed anyway", "at": (T0 + timedelta(minutes=1)).isoformat()},
                         {"speaker": "agent", "message": "noted", "at": (T0 + timedelta(minutes=2)).isoformat()}]
    assert call(url, "add_exchange", agent=agent, conflict_id="no-such-id", speaker="x", message="y") == {"error": "not_found"}
    assert call(url, "get_conflict", agent=agent, conflict_id="missing-id") == {"found": False}


def test_resolving_with_notes_given(url: str) -> None:
    agent = fresh_agent()
    cid = register(url, agent)
    done = call(url, "resolve_conflict", now=T0 + timedelta(hours=2), agent=agent, conflict_id=cid, outcome="compromise",
                resolution_notes="both parties agreed to defer")
    assert done == {"resolved": True, "outcome": "compromise", "notes_source": "given",
                    "resolution_notes": "both parties agreed to defer"}
    conflict = call(url, "get_conflict", agent=agent, conflict_id=cid)["conflict"]
    assert (conflict["status"], conflict["outcome"], conflict["resolved_at"]) == ("resolved", "compromise",
                                                                                    (T0 + timedelta(hours=2)).isoformat())
    assert conflict["resolution_notes"] == "both parties agreed to defer"
    assert call(url, "resolve_conflict", agent=agent, conflict_id=cid, outcome="agreement") == {
        "error": "already_resolved", "outcome": "compromise"}
    assert call(url, "resolve_conflict", agent=agent, conflict_id="ghost-id", outcome="compromise") == {"error": "not_found"}


def test_without_a_model_the_rules_write_the_notes(url: str) -> None:
    agent = fresh_agent()
    quiet = register(url, agent, severity="medium")
    done = call(url, "resolve_conflict", now=T0 + timedelta(hours=3), agent=agent, conflict_id=quiet, outcome="withdrawn")
    assert (done["notes_source"], done["suggested_outcome"]) == ("rules", "deferred")  # nobody has spoken yet
    assert done["resolution_notes"] == ("Closed as withdrawn: a medium conflict between agent, human (posture speak_once), "
                                        "after 0 exchanges over 3.0 h. Suggested by rule: deferred.")
    argued = register(url, agent, severity="low")
    call(url, "add_exchange", agent=agent, conflict_id=argued, speaker="human", message="fine")
    assert call(url, "resolve_conflict", agent=agent, conflict_id=argued, outcome="agreement")["suggested_outcome"] == "resolved"
    critical = register(url, agent, severity="critical")
    assert call(url, "resolve_conflict", agent=agent, conflict_id=critical, outcome="x")["suggested_outcome"] == "escalated"


def test_active_conflicts_and_what_was_resolved_lately(url: str) -> None:
    agent = fresh_agent()
    assert call(url, "active_conflicts", agent=agent) | {"since": None} == {
        "conflicts": [], "count": 0, "resolved": 0, "resolved_ids": [], "since": None}
    first = register(url, agent, severity="low", description="resolved one")
    second = register(url, agent, severity="high", now=T0 + timedelta(minutes=1), description="still active")
    third = register(url, agent, severity="medium", now=T0 + timedelta(minutes=2))
    call(url, "resolve_conflict", now=T0 + timedelta(hours=1), agent=agent, conflict_id=first, outcome="withdrawn")
    call(url, "resolve_conflict", now=T0 + timedelta(hours=30), agent=agent, conflict_id=third, outcome="agreement")
    now = T0 + timedelta(hours=31)
    found = call(url, "active_conflicts", now=now, agent=agent)
    assert [c["conflict_id"] for c in found["conflicts"]] == [second] and found["count"] == 1
    assert all(c["status"] == "active" for c in found["conflicts"])
    # The dream cycle's "Resolved N contradiction(s)": within the last 24 h by default.
    assert (found["resolved"], found["resolved_ids"], found["since"]) == (1, [third], (now - DAY).isoformat())
    everything = call(url, "active_conflicts", now=now, agent=agent, since=T0.isoformat())
    assert (everything["resolved"], everything["resolved_ids"]) == (2, [first, third])
    naive = call(url, "active_conflicts", now=now, agent=agent, since="2026-03-01T10:00:00")  # no zone: UTC
    assert (naive["resolved_ids"], naive["since"]) == ([first, third], "2026-03-01T10:00:00+00:00")


def test_stale_conflicts_are_marked_once_a_day(url: str) -> None:
    agent = fresh_agent()
    old = register(url, agent, severity="high")
    register(url, agent, severity="low", now=T0 + timedelta(hours=12))
    assert call(url, "check_stale_conflicts", now=T0 + DAY, agent=agent) == {
        "checked": 2, "stale_count": 0, "stale_ids": [], "marked_ids": []}  # 24 h exactly: not yet
    first = T0 + DAY + timedelta(seconds=1)
    assert call(url, "check_stale_conflicts", now=first, agent=agent) == {
        "checked": 2, "stale_count": 1, "stale_ids": [old], "marked_ids": [old]}
    exchanges = call(url, "get_conflict", agent=agent, conflict_id=old)["conflict"]["exchanges"]
    assert exchanges == [{"speaker": "system", "message": "conflict marked stale — no resolution after 24h", "at": first.isoformat()}]
    # An hour later it is still stale, but is not marked again until a day has passed.
    assert call(url, "check_stale_conflicts", now=first + timedelta(hours=1), agent=agent)["marked_ids"] == []
    again = call(url, "check_stale_conflicts", now=first + DAY, agent=agent)
    assert again["stale_count"] == 2 and again["marked_ids"] == again["stale_ids"]
    assert len(call(url, "get_conflict", agent=agent, conflict_id=old)["conflict"]["exchanges"]) == 2
    call(url, "resolve_conflict", agent=agent, conflict_id=old, outcome="agreement", resolution_notes="done")
    assert call(url, "check_stale_conflicts", now=first + DAY * 3, agent=agent)["checked"] == 1  # resolved: not checked


def test_resolved_conflicts_are_forgotten_after_thirty_days(url: str) -> None:
    agent = fresh_agent()
    done = register(url, agent, severity="low")
    kept = register(url, agent, severity="low")
    call(url, "resolve_conflict", agent=agent, conflict_id=done, outcome="agreement", resolution_notes="ok")
    register(url, agent, now=T0 + timedelta(days=30), severity="low")
    assert call(url, "get_conflict", agent=agent, conflict_id=done)["found"] is True  # 30 days exactly: kept
    register(url, agent, now=T0 + timedelta(days=30, seconds=1), severity="low")
    assert call(url, "get_conflict", agent=agent, conflict_id=done) == {"found": False}
    assert call(url, "get_conflict", agent=agent, conflict_id=kept)["found"] is True  # active ones stay


def test_an_overflowing_log_drops_the_oldest_resolved_then_the_oldest_active() -> None:
    def entry(status: str, created: float, resolved: float | None = None) -> dict[str, Any]:
        return {"status": status, "created_at": created, "resolved_at": resolved}

    now = T0.timestamp()
    index = {f"r{i:04}": entry("resolved", now - 1000 + i, now - 900 + i) for i in range(100)}
    index |= {f"a{i:04}": entry("active", now - 5000 + i) for i in range(901)}
    gone = h.evictions(index, T0)
    assert gone == [f"r{i:04}" for i in range(50)]  # down to the newest 50 resolved
    index |= {f"a{i:04}": entry("active", now - 5000 + i) for i in range(901, 1100)}
    gone = set(h.evictions(index, T0))
    assert {i for i in index if i.startswith("r")} - gone == {f"r{i:04}" for i in range(50, 100)}
    assert {i for i in index if i.startswith("a")} - gone == {f"a{i:04}" for i in range(1090, 1100)}  # the newest 10 active
    assert h.evictions(dict(list(index.items())[:1000]), T0) == []  # at the limit: nothing


@settings(max_examples=50, deadline=None)
@given(count=st.integers(0, 1300), resolved_share=st.floats(0, 1), seed=st.integers(0, 2**32))
def test_eviction_keeps_the_log_within_bounds(count: int, resolved_share: float, seed: int) -> None:
    rnd = random.Random(seed)  # ages drawn from the seed hypothesis chose: cheap, and replayable
    now = T0.timestamp()
    index: dict[str, dict[str, Any]] = {}
    for i in range(count):
        later, age = rnd.uniform(0, 90 * 86_400), rnd.uniform(0, 90 * 86_400)
        done = rnd.random() < resolved_share
        index[f"c{i}"] = {"status": "resolved" if done else "active", "created_at": now - later - age,
                          "resolved_at": now - later if done else None}
    gone = set(h.evictions(index, T0))
    left = {i: e for i, e in index.items() if i not in gone}
    assert len(left) <= h.MAX_CONFLICTS
    month = h.RESOLVED_RETENTION_DAYS * 86_400
    assert not any(e["status"] == "resolved" and now - e["resolved_at"] > month for e in left.values())
    expired = sum(1 for e in index.values() if e["status"] == "resolved" and now - e["resolved_at"] > month)
    if count - expired <= h.MAX_CONFLICTS:
        assert all(index[i]["status"] == "resolved" for i in gone)  # active conflicts go only on overflow


def test_agents_never_see_each_others_conflicts(url: str) -> None:
    ada, eve = fresh_agent(), fresh_agent()
    cid = register(url, ada)
    assert call(url, "get_conflict", agent=eve, conflict_id=cid) == {"found": False}
    assert call(url, "active_conflicts", agent=eve)["count"] == 0
    assert call(url, "add_exchange", agent=eve, conflict_id=cid, speaker="eve", message="mine now") == {"error": "not_found"}
    assert call(url, "resolve_conflict", agent=eve, conflict_id=cid, outcome="x") == {"error": "not_found"}
    assert call(url, "active_conflicts", agent=ada)["count"] == 1
