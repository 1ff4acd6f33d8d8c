"""memory.traces and memory.consolidation: LegionIO's trace model, formulas and spec cases through
`legion.sdk.call`, each agent's traces kept in its state, decay accumulating with the time that
passes on the clock each call is given (one tick an hour) until traces are pruned."""

from __future__ import annotations

import itertools
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from legion import sdk
from legion.extensions.memory import helpers as h

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
NAMES = itertools.count()
UUID = re.compile(r"\A[0-9a-f-]{36}\Z")


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('memory')}/state.db"


def fresh_agent() -> str:
    """An agent no other test (or hypothesis example) has used: its memory starts empty."""
    return f"mem-{next(NAMES)}"


def call(url: str, function: str, now: datetime = T0, agent: str = "ada", **args: Any) -> Any:
    return sdk.call(f"memory.{function}", args, now=now, agent=agent, database_url=url)


def store(url: str, agent: str, type: str = "semantic", now: datetime = T0, **fields: Any) -> str:  # noqa: A002
    fields.setdefault("content_payload", {})
    return str(call(url, "traces.store_trace", now, agent, type=type, **fields)["trace_id"])


def trace(url: str, agent: str, trace_id: str, now: datetime = T0) -> dict[str, Any]:
    found = call(url, "traces.get_trace", now, agent, trace_id=trace_id)
    assert found["found"], trace_id
    return dict(found["trace"])


# ---------------------------------------------------------------- constants and pure formulas


def test_constants_are_legionios() -> None:
    assert h.TRACE_TYPES == ("firmware", "identity", "procedural", "trust", "semantic", "episodic", "sensory")
    assert h.BASE_DECAY_RATES == {"firmware": 0.0, "identity": 0.001, "procedural": 0.005, "trust": 0.008, "semantic": 0.01,
                                  "episodic": 0.02, "sensory": 0.1}
    assert h.STARTING_STRENGTHS == {"firmware": 1.0, "identity": 1.0, "procedural": 0.4, "trust": 0.3, "semantic": 0.5,
                                    "episodic": 0.6, "sensory": 0.4}
    assert h.ORIGINS == ("firmware", "direct_experience", "mesh_transfer", "imprint")
    assert h.STORAGE_TIERS == ("hot", "warm", "cold", "erased")
    assert (h.E_WEIGHT, h.R_AMOUNT, h.IMPRINT_MULTIPLIER) == (0.3, 0.10, 3.0)
    assert (h.AUTO_FIRE_THRESHOLD, h.ARCHIVE_THRESHOLD, h.PRUNE_THRESHOLD) == (0.85, 0.05, 0.01)
    assert (h.HOT_TIER_WINDOW, h.WARM_TIER_WINDOW, h.RETRIEVAL_RECENCY_HALF) == (86_400, 7_776_000, 3600)
    assert (h.ASSOCIATION_BONUS, h.MAX_ASSOCIATIONS, h.COACTIVATION_THRESHOLD) == (0.15, 20, 3)
    assert (h.QUOTA_MAX_TRACES, h.QUOTA_MAX_BYTES, h.QUOTA_EVICTION) == (10_000, 52_428_800, "lru")
    assert h.TICK_SECONDS == 3600.0  # one tick of decay: an hour


def test_compute_decay_is_legionios_power_law() -> None:
    assert h.compute_decay(1.0, 0.0, 1000) == 1.0  # firmware returns its peak
    assert h.compute_decay(0.4, 0.1, 100) < h.compute_decay(0.5, 0.01, 100)  # sensory fastest
    assert h.compute_decay(0.6, 0.02, 50, 0.9) > h.compute_decay(0.6, 0.02, 50, 0.0)  # intensity slows decay
    assert h.compute_decay(0.0, 0.01, 10) == 0.0
    assert 0.0 <= h.compute_decay(1.0, 0.001, 1) <= 1.0
    assert h.compute_decay(0.5, 0.01, 1000) < h.compute_decay(0.5, 0.01, 10)  # more ticks, lower
    assert h.compute_decay(0.5, 0.01, 100) == pytest.approx(0.5 * 101 ** -0.01)
    assert h.compute_decay(0.6, 0.02, 50, 0.5) == pytest.approx(0.6 * 51 ** -(0.02 / 1.15))
    assert h.effective_rate(0.1, 1.0) == pytest.approx(0.1 / 1.3)


def test_cumulative_decay_is_legionios_one_tick_step_compounded() -> None:
    # One tick is exactly LegionIO's decay with ticks_since_access = 1 ...
    assert h.decayed_strength(0.5, 0.01, 1) == pytest.approx(h.compute_decay(0.5, 0.01, 1))
    assert h.decayed_strength(0.6, 0.02, 1, 0.7) == pytest.approx(h.compute_decay(0.6, 0.02, 1, 0.7))
    # ... and every further tick applies it to what the last one left: a factor 2 ** -rate per tick.
    assert h.decayed_strength(0.4, 0.1, 10) == pytest.approx(0.2)  # sensory halves in 10 ticks
    assert h.decayed_strength(0.6, 0.02, 50) == pytest.approx(0.3)  # episodic in 50
    assert h.decayed_strength(0.5, 0.01, 100) == pytest.approx(0.25)  # semantic in 100
    assert h.decayed_strength(h.decayed_strength(0.5, 0.01, 7.5), 0.01, 12.25) == pytest.approx(h.decayed_strength(0.5, 0.01, 19.75))
    assert h.decayed_strength(1.0, 0.0, 1e9) == 1.0  # firmware never decays
    assert h.ticks_to_prune(0.4, 0.1) == pytest.approx(math.log2(40) / 0.1)  # 53.2 ticks
    assert h.ticks_to_prune(1.0, 0.0) == math.inf
    assert h.ticks_between("2026-03-01T09:00:00+00:00", T0 + 90 * timedelta(minutes=1)) == 1.5
    assert h.ticks_between("2026-03-01T09:00:00+00:00", T0 - DAY) == 0.0  # a clock that went back decays nothing


def test_reinforcement_retrieval_score_and_tiers() -> None:
    assert h.compute_reinforcement(0.5) == 0.6
    assert h.compute_reinforcement(0.5, imprint_active=True) == 0.8
    assert h.compute_reinforcement(0.95) == 1.0
    assert h.compute_reinforcement(0.8, imprint_active=True) == 1.0
    assert h.compute_retrieval_score(0.5, 0, 0.5) == pytest.approx(0.75)
    assert h.compute_retrieval_score(0.5, 3600, 0.5) == pytest.approx(0.375)  # an hour halves it
    assert h.compute_retrieval_score(0.5, 0, 0.5, associated=True) == pytest.approx(0.75 * 1.15)
    assert h.compute_retrieval_score(0.5, 7200, 0.5) < h.compute_retrieval_score(0.5, 0, 0.5)
    assert h.compute_storage_tier(0.5, 0) == "hot"
    assert h.compute_storage_tier(0.5, 86_400) == "hot"
    assert h.compute_storage_tier(0.5, 30 * 86_400) == "warm"
    assert h.compute_storage_tier(0.5, 100 * 86_400) == "cold"
    assert h.compute_storage_tier(0.005, 0) == "erased"
    assert h.compute_storage_tier(0.01, 0) == "erased"


def test_emotional_context_is_normalized_and_clamped() -> None:
    assert (h.normalize_valence(2.5), h.normalize_intensity(-0.5)) == (1.0, 0.0)
    assert h.normalize_valence("-0.3") == -0.3
    assert h.normalize_valence('{"sentiment": -0.7}') == -0.7
    assert h.normalize_valence({"score": 5}) == 1.0
    assert h.normalize_valence({"polarity": "0.25", "other": 9}) == 0.25
    assert h.normalize_intensity({"level": 0.4}) == 0.4  # a mapping's only scalar
    assert h.normalize_intensity({"a": 0.2, "b": 0.3}) == 0.0  # ambiguous
    assert [h.normalize_valence(v) for v in ("", "calm", True, None, [0.5], float("nan"))] == [0.0] * 6


# ---------------------------------------------------------------- traces


def test_store_trace_gives_each_type_its_starting_strength_and_legionios_fields(url: str) -> None:
    agent = fresh_agent()
    for trace_type in h.TRACE_TYPES:
        stored = call(url, "traces.store_trace", agent=agent, type=trace_type, content_payload={"fact": trace_type})
        assert UUID.match(stored["trace_id"])
        assert stored == {"trace_id": stored["trace_id"], "trace_type": trace_type, "strength": h.STARTING_STRENGTHS[trace_type]}
    semantic_id = store(url, agent, "semantic", content_payload={"fact": "test"}, domain_tags=["work", "calendar", "work"],
                        emotional_valence=2.5, emotional_intensity=-0.5)
    got = trace(url, agent, semantic_id)
    assert got["content_payload"] == {"fact": "test"} and got["domain_tags"] == ["work", "calendar"]
    assert (got["emotional_valence"], got["emotional_intensity"]) == (1.0, 0.0)
    assert (got["confidence"], got["storage_tier"], got["reinforcement_count"], got["origin"]) == (0.5, "hot", 0, "direct_experience")
    assert got["partition_id"] == agent and got["created_at"] == got["last_reinforced"] == "2026-03-01T09:00:00+00:00"
    assert got["associated_traces"] == [] and got["child_trace_ids"] == [] and got["parent_trace_id"] is None
    assert got["unresolved"] is False and got["consolidation_candidate"] is False
    firmware = trace(url, agent, store(url, agent, "firmware", content_payload={"directive_text": "protect"}))
    assert (firmware["strength"], firmware["base_decay_rate"], firmware["confidence"]) == (1.0, 0.0, 1.0)
    imprinted = trace(url, agent, store(url, agent, "episodic", origin="imprint", imprint_active=True, unresolved=True, confidence=0.9))
    assert (imprinted["reinforcement_count"], imprinted["origin"], imprinted["unresolved"], imprinted["confidence"]) == (1, "imprint", True, 0.9)


def test_bad_arguments_are_refused(url: str) -> None:
    for args in ({"type": "bogus", "content_payload": {}}, {"type": "semantic", "content_payload": {}, "origin": "unknown"},
                 {"type": "semantic", "content_payload": {}, "tags": ["x"]}, {"type": "semantic"},
                 {"type": "semantic", "content_payload": {}, "confidence": 1.5}):
        with pytest.raises(sdk.StepError) as bad:
            call(url, "traces.store_trace", **args)
        assert bad.value.type == "InvalidArguments"
    with pytest.raises(sdk.StepError) as bad:
        call(url, "consolidation.decay_cycle", tick=3)  # a misspelt argument is an error, not ignored
    assert bad.value.type == "InvalidArguments"


def test_get_retrieve_and_delete(url: str) -> None:
    agent = fresh_agent()
    assert call(url, "traces.get_trace", agent=agent, trace_id="nonexistent") == {"found": False}
    a = store(url, agent, "semantic", content_payload={"fact": "a"}, domain_tags=["work"])
    store(url, agent, "semantic", content_payload={"fact": "b"}, domain_tags=["personal"])
    episodic = store(url, agent, "episodic", content_payload={"event": "meeting"}, domain_tags=["work"])
    assert trace(url, agent, episodic)["content_payload"] == {"event": "meeting"}
    assert call(url, "traces.retrieve_by_type", agent=agent, type="semantic")["count"] == 2
    work = call(url, "traces.retrieve_by_domain", agent=agent, domain_tag="work")
    assert [t["trace_id"] for t in work["traces"]] == [episodic, a]  # strongest first: 0.6, 0.5
    assert call(url, "traces.retrieve_by_type", agent=agent, type="semantic", limit=1)["count"] == 1
    assert call(url, "traces.retrieve_by_domain", agent=agent, domain_tag="work", min_strength=0.55)["count"] == 1
    assert call(url, "traces.delete_trace", agent=agent, trace_id=a) == {"deleted": True, "trace_id": a}
    assert call(url, "traces.get_trace", agent=agent, trace_id=a) == {"found": False}
    assert call(url, "traces.delete_trace", agent=agent, trace_id=a) == {"deleted": False, "trace_id": a}
    assert call(url, "traces.retrieve_by_type", agent=agent, type="semantic")["count"] == 1


def test_two_agents_never_see_each_others_traces(url: str) -> None:
    ada, bob = fresh_agent(), fresh_agent()
    mine = store(url, ada, "semantic", content_payload={"secret": "ada's"}, domain_tags=["private"])
    assert call(url, "traces.get_trace", agent=bob, trace_id=mine) == {"found": False}
    assert call(url, "traces.retrieve_by_domain", agent=bob, domain_tag="private")["count"] == 0
    assert call(url, "consolidation.reinforce", agent=bob, trace_id=mine) == {"found": False}
    assert call(url, "traces.delete_trace", agent=bob, trace_id=mine)["deleted"] is False
    assert call(url, "consolidation.erase_by_type", agent=bob, type="semantic") == {"erased": 0, "type": "semantic"}
    assert call(url, "consolidation.erase_by_agent", agent=bob) == {"erased": 0, "partition_id": bob}
    assert trace(url, ada, mine)["content_payload"] == {"secret": "ada's"}
    with pytest.raises(sdk.StepError) as foreign:
        call(url, "consolidation.erase_by_agent", agent=bob, partition_id=ada)
    assert foreign.value.type == "ForeignPartition"
    assert call(url, "traces.get_trace", agent=ada, trace_id=mine)["found"] is True


# ---------------------------------------------------------------- reinforcement and decay


def test_reinforce_as_legionio_specs_it(url: str) -> None:
    agent = fresh_agent()
    semantic = store(url, agent)
    assert call(url, "consolidation.reinforce", agent=agent, trace_id=semantic) == {
        "found": True, "reinforced": True, "trace_id": semantic, "new_strength": 0.6}
    imprinted = store(url, agent)
    assert call(url, "consolidation.reinforce", agent=agent, trace_id=imprinted, imprint_active=True)["new_strength"] == 0.8
    firmware = store(url, agent, "firmware", content_payload={"directive_text": "protect"})
    assert call(url, "consolidation.reinforce", agent=agent, trace_id=firmware) == {"found": True, "reinforced": False, "reason": "firmware"}
    assert call(url, "consolidation.reinforce", agent=agent, trace_id="nonexistent") == {"found": False}
    clamped = store(url, agent)
    for _ in range(10):
        call(url, "consolidation.reinforce", agent=agent, trace_id=clamped)
    got = trace(url, agent, clamped)
    assert (got["strength"], got["peak_strength"], got["reinforcement_count"]) == (1.0, 1.0, 10)
    counted = store(url, agent)
    for _ in range(3):
        call(url, "consolidation.reinforce", agent=agent, trace_id=counted)
    assert trace(url, agent, counted)["reinforcement_count"] == 3


def test_decay_accumulates_with_elapsed_time_and_prunes(url: str) -> None:
    agent = fresh_agent()
    sensory = store(url, agent, "sensory")
    episodic = store(url, agent, "episodic")
    firmware = store(url, agent, "firmware")
    # Reads show the strength now: sensory halves every 10 hours, episodic every 50.
    assert trace(url, agent, sensory, T0 + 10 * HOUR)["strength"] == pytest.approx(0.2)
    assert trace(url, agent, episodic, T0 + 50 * HOUR)["strength"] == pytest.approx(0.3)
    first = call(url, "consolidation.decay_cycle", T0 + 20 * HOUR, agent)
    assert first == {"decayed": 2, "pruned": 0, "total": 3, "remaining": 3, "maintained_at": "2026-03-02T05:00:00+00:00"}
    assert trace(url, agent, sensory, T0 + 20 * HOUR)["strength"] == pytest.approx(0.1)
    # A later cycle goes on from there (LegionIO's would start from the peak again).
    assert call(url, "consolidation.decay_cycle", T0 + 40 * HOUR, agent)["pruned"] == 0
    assert trace(url, agent, sensory, T0 + 40 * HOUR)["strength"] == pytest.approx(0.025)
    # 0.4 reaches 0.01 after log2(40) / 0.1 = 53.2 hours: pruned.
    assert trace(url, agent, sensory, T0 + 53 * HOUR)["strength"] > h.PRUNE_THRESHOLD
    assert call(url, "consolidation.decay_cycle", T0 + 54 * HOUR, agent)["pruned"] == 1
    assert call(url, "traces.get_trace", T0 + 54 * HOUR, agent, trace_id=sensory) == {"found": False}
    # Episodic goes after 50 * log2(60) = 295.3 hours; firmware never.
    assert call(url, "consolidation.decay_cycle", T0 + 296 * HOUR, agent)["pruned"] == 1
    later = T0 + timedelta(days=3650)
    assert call(url, "consolidation.decay_cycle", later, agent) == {
        "decayed": 0, "pruned": 0, "total": 1, "remaining": 1, "maintained_at": h.iso(later)}
    assert trace(url, agent, firmware, later)["strength"] == 1.0


def test_decay_does_not_depend_on_how_often_the_cycle_runs(url: str) -> None:
    often, never = fresh_agent(), fresh_agent()
    ids = {agent: store(url, agent, "episodic", emotional_intensity=0.6) for agent in (often, never)}
    for minutes in range(0, 48 * 60, 37):  # a cycle every 37 minutes for two days
        call(url, "consolidation.decay_cycle", T0 + timedelta(minutes=minutes), often)
    end = T0 + 2 * DAY
    expected = h.decayed_strength(0.6, 0.02, 48, 0.6)
    assert trace(url, often, ids[often], end)["strength"] == pytest.approx(expected, abs=1e-9)
    assert trace(url, never, ids[never], end)["strength"] == pytest.approx(expected, abs=1e-9)


def test_intensity_slows_decay_and_reinforcement_restarts_from_the_strength_now(url: str) -> None:
    agent = fresh_agent()
    calm = store(url, agent, "episodic", emotional_intensity=0.0)
    intense = store(url, agent, "episodic", emotional_intensity=0.9)
    at = T0 + 100 * HOUR
    assert trace(url, agent, intense, at)["strength"] > trace(url, agent, calm, at)["strength"]
    reinforced = call(url, "consolidation.reinforce", at, agent, trace_id=calm)["new_strength"]
    assert reinforced == pytest.approx(0.15 + 0.1)  # 0.6 halved twice, plus one reinforcement
    assert trace(url, agent, calm, at + 50 * HOUR)["strength"] == pytest.approx(0.125)
    assert trace(url, agent, calm, at)["peak_strength"] == 0.6  # the peak is the highest ever reached


def test_decay_cycle_without_maintenance_touches_nothing_and_tick_count_is_legionios(url: str) -> None:
    agent = fresh_agent()
    semantic = store(url, agent, "semantic")
    assert call(url, "consolidation.decay_cycle", T0 + 10 * DAY, agent, maintenance=False) == {
        "decayed": 0, "pruned": 0, "total": 0, "remaining": 0, "maintained_at": None, "deferred": True, "reason": "background_decay_actor"}
    summary = call(url, "consolidation.decay_cycle", T0 + HOUR, agent)
    deferred = call(url, "consolidation.decay_cycle", T0 + 10 * DAY, agent, maintenance=False)
    assert deferred == {**summary, "deferred": True, "reason": "background_decay_actor"}
    # LegionIO's own decay: every trace at peak * (tick_count + 1) ** -rate, whatever the time:
    # repeated cycles leave it there, so it never reaches the prune threshold.
    for _ in range(3):
        assert call(url, "consolidation.decay_cycle", T0 + 2 * HOUR, agent, tick_count=1)["pruned"] == 0
    assert trace(url, agent, semantic, T0 + 2 * HOUR)["strength"] == pytest.approx(0.5 * 2 ** -0.01)
    call(url, "consolidation.decay_cycle", T0 + 2 * HOUR, agent, tick_count=100)
    assert trace(url, agent, semantic, T0 + 2 * HOUR)["strength"] == pytest.approx(0.5 * 101 ** -0.01)


def test_retrieve_and_reinforce_marks_the_strongest_as_retrieved(url: str) -> None:
    agent = fresh_agent()
    firmware = store(url, agent, "firmware", content_payload="protect the partner")
    semantic = store(url, agent, "semantic", content_payload="a fact", domain_tags=["facts"])
    sensory = store(url, agent, "sensory", content_payload="a flash")
    at = T0 + 40 * HOUR  # sensory is down to 0.025 (< 0.1): not retrieved
    got = call(url, "traces.retrieve_and_reinforce", at, agent, limit=10)
    assert got["count"] == 2 and [t["trace_id"] for t in got["traces"]] == [firmware, semantic]
    assert set(got["traces"][1]) == set(h.SUMMARY_FIELDS)  # small: no times, links or embedding
    assert got["traces"][1]["strength"] == pytest.approx(0.5 * 2 ** -0.4) and got["traces"][1]["reinforcement_count"] == 1
    after = trace(url, agent, semantic, at)
    assert after["last_reinforced"] == h.iso(at) and after["strength"] == pytest.approx(0.5 * 2 ** -0.4)  # strength unchanged
    assert trace(url, agent, firmware, at)["reinforcement_count"] == 0  # firmware untouched
    assert trace(url, agent, sensory, at)["reinforcement_count"] == 0
    assert call(url, "traces.retrieve_and_reinforce", at, agent, limit=1)["count"] == 1


def test_retrieve_ranked_scores_strength_recency_intensity_and_association(url: str) -> None:
    agent = fresh_agent()
    plain = store(url, agent, "semantic", emotional_intensity=0.5)
    other = store(url, agent, "semantic", emotional_intensity=0.5)
    linked = store(url, agent, "semantic", emotional_intensity=0.5)
    for _ in range(3):
        call(url, "consolidation.hebbian_link", agent=agent, trace_id_a=other, trace_id_b=linked)
    ranked = call(url, "traces.retrieve_ranked", agent=agent, trace_ids=[plain, linked, other])
    scores = {item["trace_id"]: item["score"] for item in ranked["traces"]}
    assert ranked["success"] is True and ranked["count"] == 3
    assert scores[plain] == pytest.approx(0.5 * 1.5)
    assert scores[linked] == pytest.approx(0.5 * 1.5 * 1.15) and scores[other] == pytest.approx(scores[linked])
    later = call(url, "traces.retrieve_ranked", agent=agent, trace_ids=[plain], query_time="2026-03-01T11:00:00Z")
    assert later["traces"][0]["score"] == pytest.approx(h.decayed_strength(0.5, 0.01, 2, 0.5) * 0.25 * 1.5)  # two hours on
    everything = call(url, "traces.retrieve_ranked", agent=agent, limit=2)  # no ids: every trace (the dream's memory_audit)
    assert everything["count"] == 2 and {t["trace_id"] for t in everything["traces"]} == {linked, other}
    assert call(url, "traces.retrieve_ranked", agent=agent, trace_ids=["nonexistent"])["count"] == 0


def test_migrate_tier_moves_traces_by_time_since_reinforcement(url: str) -> None:
    agent = fresh_agent()
    firmware = store(url, agent, "firmware")
    identity = store(url, agent, "identity")
    assert call(url, "consolidation.migrate_tier", T0 + HOUR, agent) == {"migrated": 0}
    assert call(url, "consolidation.migrate_tier", T0 + 30 * DAY, agent) == {"migrated": 2}
    assert trace(url, agent, firmware, T0 + 30 * DAY)["storage_tier"] == "warm"
    assert trace(url, agent, identity, T0 + 30 * DAY)["storage_tier"] == "warm"
    assert call(url, "consolidation.migrate_tier", T0 + 100 * DAY, agent) == {"migrated": 2}
    assert trace(url, agent, firmware, T0 + 100 * DAY)["storage_tier"] == "cold"
    assert trace(url, agent, identity, T0 + 100 * DAY)["storage_tier"] == "cold"  # at 0.19: not yet gone
    assert call(url, "consolidation.migrate_tier", T0 + 300 * DAY, agent) == {"migrated": 1}
    assert trace(url, agent, identity, T0 + 300 * DAY)["storage_tier"] == "erased"  # decayed below 0.01 after 277 days


# ---------------------------------------------------------------- associations


def test_hebbian_links_form_at_the_third_coactivation(url: str) -> None:
    agent = fresh_agent()
    a, b = store(url, agent, content_payload={"fact": "a"}), store(url, agent, content_payload={"fact": "b"})
    assert call(url, "consolidation.hebbian_link", agent=agent, trace_id_a=a, trace_id_b=b) == {
        "linked": True, "coactivation_count": 1, "associated": False}
    assert call(url, "traces.retrieve_associated", agent=agent, trace_id=a) == {"count": 0, "traces": []}
    call(url, "consolidation.hebbian_link", agent=agent, trace_id_a=b, trace_id_b=a)  # the pair counts either way round
    assert call(url, "consolidation.hebbian_link", agent=agent, trace_id_a=a, trace_id_b=b) == {
        "linked": True, "coactivation_count": 3, "associated": True}
    associated = call(url, "traces.retrieve_associated", agent=agent, trace_id=a)
    assert associated["count"] == 1 and associated["traces"][0]["trace_id"] == b
    assert trace(url, agent, b)["associated_traces"] == [a]
    assert call(url, "consolidation.hebbian_link", agent=agent, trace_id_a=a) == {"linked": False, "reason": "missing_trace_ids"}
    assert call(url, "consolidation.hebbian_link", agent=agent, trace_id_a=a, trace_id_b=a) == {"linked": False, "reason": "same_trace"}
    assert call(url, "consolidation.hebbian_link", agent=agent, trace_id_a=a, trace_id_b="gone") == {
        "linked": False, "reason": "trace_not_found"}
    # Deleting a trace takes its links and counts with it.
    call(url, "traces.delete_trace", agent=agent, trace_id=b)
    assert trace(url, agent, a)["associated_traces"] == []
    c = store(url, agent)
    assert call(url, "consolidation.hebbian_link", agent=agent, trace_id_a=a, trace_id_b=c)["coactivation_count"] == 1


def test_each_trace_keeps_at_most_twenty_links(url: str) -> None:
    agent = fresh_agent()
    hub = store(url, agent)
    spokes = [store(url, agent) for _ in range(h.MAX_ASSOCIATIONS + 2)]
    for spoke in spokes:
        for _ in range(h.COACTIVATION_THRESHOLD):
            call(url, "consolidation.hebbian_link", agent=agent, trace_id_a=hub, trace_id_b=spoke)
    assert trace(url, agent, hub)["associated_traces"] == spokes[:h.MAX_ASSOCIATIONS]
    assert trace(url, agent, spokes[-1])["associated_traces"] == [hub]  # the spoke still lists the full hub
    assert call(url, "traces.retrieve_associated", agent=agent, trace_id=hub, limit=5)["count"] == 5


def test_walk_associations_breadth_first_with_depth_path_and_strength(url: str) -> None:
    agent = fresh_agent()
    a, b, c, d = (store(url, agent, "semantic", content_payload={"label": x}) for x in "abcd")
    sensory = store(url, agent, "sensory", content_payload={"label": "weak"})
    for x, y in ((a, b), (b, c), (c, d), (d, a), (a, sensory)):  # a ring, and a spoke to a trace that will fade
        for _ in range(3):
            call(url, "consolidation.hebbian_link", agent=agent, trace_id_a=x, trace_id_b=y)
    walked = call(url, "consolidation.walk_associations", agent=agent, start_id=a)
    by_id = {w["trace_id"]: w for w in walked["associations"]}
    assert walked["found"] is True and walked["count"] == 4 and a not in by_id
    assert (by_id[b]["depth"], by_id[d]["depth"], by_id[c]["depth"]) == (1, 1, 2)
    assert by_id[c]["path"][0] == a and by_id[c]["path"][-1] == c and len(by_id[c]["path"]) == 3
    one_hop = call(url, "consolidation.walk_associations", agent=agent, start_id=a, max_hops=1)
    assert {w["trace_id"] for w in one_hop["associations"]} == {b, d, sensory}
    faded = call(url, "consolidation.walk_associations", T0 + 40 * HOUR, agent, start_id=a)  # sensory at 0.025
    assert sensory not in {w["trace_id"] for w in faded["associations"]}
    assert call(url, "consolidation.walk_associations", agent=agent, start_id="nonexistent") == {
        "start_id": "nonexistent", "found": False, "count": 0, "associations": []}


# ---------------------------------------------------------------- quota and erasure


def test_enforce_quota_evicts_least_recently_reinforced_never_firmware(url: str) -> None:
    agent = fresh_agent()
    firmware = store(url, agent, "firmware", now=T0)
    oldest = store(url, agent, "identity", now=T0 + HOUR)
    middle = store(url, agent, "identity", now=T0 + 2 * HOUR)
    newest = store(url, agent, "identity", now=T0 + 3 * HOUR)
    call(url, "consolidation.reinforce", T0 + 4 * HOUR, agent, trace_id=oldest)  # now the most recently used
    assert call(url, "consolidation.enforce_quota", T0 + 5 * HOUR, agent) == {
        "success": True, "within_limits": True, "evicted": 0, "total": 4, "remaining": 4}
    assert call(url, "consolidation.enforce_quota", T0 + 5 * HOUR, agent, max_traces=2) == {
        "success": True, "within_limits": True, "evicted": 2, "total": 4, "remaining": 2}
    left = {t["trace_id"] for t in call(url, "traces.retrieve_ranked", T0 + 5 * HOUR, agent)["traces"]}
    assert left == {firmware, oldest} and middle not in left and newest not in left
    # Over the byte cap: LegionIO's estimate evicts ceil(overage / 1024 * 10) traces, at least one.
    assert h.bytes_eviction_count(1) == 1 and h.bytes_eviction_count(1024) == 10 and h.bytes_eviction_count(2000) == 20
    over = call(url, "consolidation.enforce_quota", T0 + 5 * HOUR, agent, max_bytes=1)
    assert over == {"success": True, "within_limits": False, "evicted": 1, "total": 2, "remaining": 1}  # firmware stays
    assert trace(url, agent, firmware, T0 + 5 * HOUR)["strength"] == 1.0


def test_enforce_quota_by_lowest_confidence(url: str) -> None:
    agent = fresh_agent()
    sure = store(url, agent, confidence=0.9)
    unsure = store(url, agent, confidence=0.2)
    assert call(url, "consolidation.enforce_quota", agent=agent, max_traces=1, eviction="lowest_confidence")["evicted"] == 1
    assert call(url, "traces.get_trace", agent=agent, trace_id=unsure) == {"found": False}
    assert trace(url, agent, sure)["confidence"] == 0.9


def test_erase_by_type_and_by_agent(url: str) -> None:
    agent = fresh_agent()
    keep = store(url, agent, "semantic")
    s1, s2 = store(url, agent, "sensory"), store(url, agent, "sensory")
    for _ in range(3):
        call(url, "consolidation.hebbian_link", agent=agent, trace_id_a=keep, trace_id_b=s1)
    assert call(url, "consolidation.erase_by_type", agent=agent, type="sensory") == {"erased": 2, "type": "sensory"}
    assert call(url, "traces.retrieve_by_type", agent=agent, type="sensory")["count"] == 0
    assert trace(url, agent, keep)["associated_traces"] == []
    assert call(url, "traces.get_trace", agent=agent, trace_id=s2) == {"found": False}
    store(url, agent, "episodic")
    call(url, "consolidation.decay_cycle", agent=agent)
    assert call(url, "consolidation.erase_by_agent", agent=agent, partition_id=agent) == {"erased": 2, "partition_id": agent}
    assert call(url, "traces.retrieve_ranked", agent=agent)["count"] == 0
    assert call(url, "consolidation.decay_cycle", agent=agent, maintenance=False)["maintained_at"] is None  # the summary went too


# ---------------------------------------------------------------- properties

strengths = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
rates = st.sampled_from(sorted(set(h.BASE_DECAY_RATES.values())))
intensities = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
ticks = st.floats(min_value=0.0, max_value=1e7, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(strengths, rates, ticks, ticks, intensities)
def test_decay_stays_in_range_and_is_monotone_in_elapsed_time(strength: float, rate: float, t1: float, t2: float,
                                                              intensity: float) -> None:
    early, late = sorted((t1, t2))
    first, second = h.decayed_strength(strength, rate, early, intensity), h.decayed_strength(strength, rate, late, intensity)
    assert 0.0 <= second <= first <= strength <= 1.0
    if rate == 0:
        assert first == second == strength  # firmware never decays
    assert 0.0 <= h.compute_decay(strength, rate, late, intensity) <= h.compute_decay(strength, rate, early, intensity) <= 1.0


@settings(max_examples=100, deadline=None)
@given(strengths, st.booleans())
def test_reinforcement_never_lowers_strength_and_stays_in_range(strength: float, imprint: bool) -> None:
    assert strength <= h.compute_reinforcement(strength, imprint) <= 1.0
    assert h.compute_reinforcement(strength, True) >= h.compute_reinforcement(strength, False)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trace_type=st.sampled_from(h.TRACE_TYPES), hours=st.lists(st.floats(min_value=0, max_value=24 * 400), min_size=1, max_size=4),
       reinforce_at=st.floats(min_value=0, max_value=24 * 400), imprint=st.booleans(), intensity=intensities)
def test_through_the_runners_strength_stays_in_range_decays_monotonically_and_firmware_never_changes(
        url: str, trace_type: str, hours: list[float], reinforce_at: float, imprint: bool, intensity: float) -> None:
    agent = fresh_agent()
    trace_id = store(url, agent, trace_type, emotional_intensity=intensity)
    seen = []
    for offset in sorted(hours):
        found = call(url, "traces.get_trace", T0 + timedelta(hours=offset), agent, trace_id=trace_id)
        seen.append(found["trace"]["strength"])
    assert all(0.0 <= s <= 1.0 for s in seen)
    assert all(later <= earlier for earlier, later in itertools.pairwise(seen))
    at = T0 + timedelta(hours=reinforce_at)
    before = call(url, "traces.get_trace", at, agent, trace_id=trace_id)
    result = call(url, "consolidation.reinforce", at, agent, trace_id=trace_id, imprint_active=imprint)
    if trace_type == "firmware":
        assert seen == [1.0] * len(seen) and result == {"found": True, "reinforced": False, "reason": "firmware"}
        assert trace(url, agent, trace_id, at)["strength"] == 1.0
    elif before["found"]:
        assert before["trace"]["strength"] <= result["new_strength"] <= 1.0
        assert trace(url, agent, trace_id, at)["strength"] == result["new_strength"]
    summary = call(url, "consolidation.decay_cycle", at + timedelta(days=30), agent)
    assert summary["total"] == 1 and summary["pruned"] + summary["remaining"] == 1
