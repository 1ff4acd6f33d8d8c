"""emotion: valence against running baselines, arousal, gut instinct and momentum, through
legion.sdk.call (state per agent in a SQLite file, time from `now`), with LegionIO's spec cases
pinned and hypothesis for the invariants."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from legion import sdk
from legion.extensions.emotion import helpers

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DIMS = ("urgency", "importance", "novelty", "familiarity")
AGENTS = itertools.count()


def call(url: str, function: str, args: dict[str, Any] | None = None, *, agent: str = "ada", now: datetime = NOW) -> Any:
    return sdk.call(f"emotion.{function}", args or {}, now=now, agent=agent, database_url=url)


def fresh_agent() -> str:
    return f"agent-{next(AGENTS)}"


def valence(**dims: float) -> dict[str, float]:
    return {d: dims.get(d, 0.0) for d in DIMS}


# --- evaluate_valence --------------------------------------------------------------------------

def test_a_valence_has_four_dimensions_a_magnitude_a_dominant_dimension_and_arousal(url: str) -> None:
    result = call(url, "valence.evaluate_valence", {"signal": {"urgency_hint": 0.5}})
    assert set(result["valence"]) == set(DIMS)
    assert result["magnitude"] == pytest.approx(math.sqrt(sum(v * v for v in result["valence"].values())))
    assert result["arousal"] == pytest.approx(result["magnitude"] / 2)
    assert result["dominant_dimension"] == max(DIMS, key=lambda d: result["valence"][d])


def test_against_the_initial_baseline_the_centred_valence_is_the_raw_score(url: str) -> None:
    # urgency 0.3 x ambient 0.1; importance 0.3x0.5 + 0.2x0.3 + 0.25x(1-0.5) + 0.25x0.3; novelty 0.5; familiarity 0/100
    result = call(url, "valence.evaluate_valence", {"signal": {}})
    assert result["valence"] == pytest.approx({"urgency": 0.03, "importance": 0.41, "novelty": 0.5, "familiarity": 0.0})
    assert result["source_type"] == "ambient" and result["dominant_dimension"] == "novelty"


def test_legionio_normalisation_maps_anything_at_or_below_the_mean_to_zero(url: str) -> None:
    result = call(url, "valence.evaluate_valence", {"signal": {}, "normalization": "above_mean"})
    assert result["valence"] == {"urgency": 0.0, "importance": 0.0, "novelty": 0.0, "familiarity": 0.0}
    high = call(url, "valence.evaluate_valence", {"signal": {"novelty_score": 0.9}, "normalization": "above_mean"},
                agent="bob")
    # (0.9 - 0.5) / 0.25 = 1.6, clamped: one stddev above the mean already saturates
    assert high["valence"]["novelty"] == 1.0


def test_a_human_direct_signal_is_more_urgent_than_an_ambient_one(url: str) -> None:
    ambient = call(url, "valence.evaluate_valence", {"signal": {}, "source_type": "ambient"}, agent="a1")
    human = call(url, "valence.evaluate_valence", {"signal": {}, "source_type": "human_direct"}, agent="a2")
    assert human["valence"]["urgency"] == pytest.approx(0.27) and human["valence"]["urgency"] > ambient["valence"]["urgency"]
    legacy = [call(url, "valence.evaluate_valence", {"signal": {}, "source_type": s, "normalization": "above_mean"},
                   agent=f"l-{s}") for s in ("ambient", "human_direct")]
    assert legacy[1]["valence"]["urgency"] >= legacy[0]["valence"]["urgency"]


def test_the_source_type_comes_from_the_signal_unless_the_call_names_one(url: str) -> None:
    own = call(url, "valence.evaluate_valence", {"signal": {"value": "stop!", "source_type": "firmware_violation"}}, agent="a1")
    assert own["source_type"] == "firmware_violation" and own["valence"]["urgency"] == pytest.approx(0.3)
    named = call(url, "valence.evaluate_valence", {"signal": {"source_type": "firmware_violation"}, "source_type": "scheduled"},
                 agent="a2")
    assert named["source_type"] == "scheduled" and named["valence"]["urgency"] == pytest.approx(0.12)
    unknown = call(url, "valence.evaluate_valence", {"signal": {"source_type": "carrier_pigeon"}}, agent="a3")
    assert unknown["valence"]["urgency"] == pytest.approx(0.03)  # unknown sources count as ambient's 0.1
    text = call(url, "valence.evaluate_valence", {"signal": "a plain text has no hints"}, agent="a4")
    assert text["source_type"] == "ambient" and text["valence"]["importance"] == pytest.approx(0.41)
    for source, urgency in helpers.SOURCE_URGENCY.items():
        assert helpers.raw_scores({}, source, None, 0)["urgency"] == pytest.approx(0.3 * urgency)


def test_a_deadline_raises_urgency_over_its_last_day(url: str) -> None:
    none = call(url, "valence.evaluate_valence", {"signal": {}}, agent="a1")
    soon = call(url, "valence.evaluate_valence", {"signal": {}, "deadline": (NOW + timedelta(seconds=60)).isoformat()}, agent="a2")
    assert soon["valence"]["urgency"] == pytest.approx(0.5 * (1 - 60 / 86_400) + 0.03)
    assert soon["valence"]["urgency"] >= none["valence"]["urgency"]
    past = call(url, "valence.evaluate_valence", {"signal": {}, "deadline": (NOW - timedelta(hours=1)).timestamp()}, agent="a3")
    assert past["valence"]["urgency"] == pytest.approx(0.53)
    far = call(url, "valence.evaluate_valence", {"signal": {}, "deadline": (NOW + timedelta(days=3)).isoformat()}, agent="a4")
    assert far["valence"]["urgency"] == pytest.approx(0.03)
    # The deadline is measured on the run's clock: the same deadline, seen 23 hours later, is nearer.
    later = call(url, "valence.evaluate_valence", {"signal": {}, "deadline": (NOW + timedelta(days=1)).isoformat()},
                 agent="a5", now=NOW + timedelta(hours=23))
    assert later["valence"]["urgency"] == pytest.approx(0.5 * (1 - 3600 / 86_400) + 0.03)


def test_the_baseline_moves_slowly_toward_what_it_sees(url: str) -> None:
    initial = call(url, "gut.emotional_state")["baseline"]
    assert initial == {d: {"mean": 0.5, "stddev": 0.25, "count": 0} for d in DIMS}
    call(url, "valence.evaluate_valence", {"signal": {"novelty_score": 1.0}})
    novelty = call(url, "gut.emotional_state")["baseline"]["novelty"]
    assert novelty["mean"] == pytest.approx(0.525) and novelty["count"] == 1  # 0.05 x 1.0 + 0.95 x 0.5
    assert novelty["stddev"] == pytest.approx(0.05 * abs(1.0 - 0.525) + 0.95 * 0.25)
    # The second identical signal is judged against the moved baseline: less novel than the first.
    first = helpers.normalize(1.0, {"mean": 0.5, "stddev": 0.25})
    second = call(url, "valence.evaluate_valence", {"signal": {"novelty_score": 1.0}})["valence"]["novelty"]
    assert second < first == 1.0


def test_familiarity_grows_with_the_signals_of_a_domain(url: str) -> None:
    call(url, "valence.evaluate_valence", {"signal": {}, "domain": "ops"})   # raw familiarity 0/100
    call(url, "valence.evaluate_valence", {"signal": {"domain": "ops"}})     # 1/100: the signal's own domain
    mean = call(url, "gut.emotional_state")["baseline"]["familiarity"]["mean"]
    assert mean == pytest.approx(0.05 * 0.01 + 0.95 * (0.95 * 0.5))
    call(url, "valence.evaluate_valence", {"signal": {}, "domain": "sales"})  # a new domain starts at 0
    assert call(url, "gut.emotional_state")["baseline"]["familiarity"]["mean"] == pytest.approx(0.95 * mean)
    assert [helpers.raw_scores({}, "ambient", None, n)["familiarity"] for n in (0, 50, 100, 150)] == [0.0, 0.5, 1.0, 1.0]


def test_misspelt_or_out_of_range_arguments_are_refused(url: str) -> None:
    for args in ({"sigal": {}}, {"signal": {"urgency_hint": 1.5}}, {"signal": {}, "normalization": "z"}):
        with pytest.raises(sdk.StepError) as refused:
            call(url, "valence.evaluate_valence", args)
        assert refused.value.type == "InvalidArguments"
    with pytest.raises(sdk.StepError) as refused:
        call(url, "gut.gut_instinct", {"valences": [{"urgency": 0.5, "joy": 1.0}]})
    assert refused.value.type == "InvalidArguments"


# --- aggregate, arousal, attention, absence, vulnerability ---------------------------------------

def test_aggregate_of_two_valences(url: str) -> None:
    result = call(url, "valence.aggregate_valences", {"valences": [valence(urgency=0.8, importance=0.2),
                                                                   valence(urgency=0.4, importance=0.6)]})
    assert result["aggregate"] == pytest.approx(valence(urgency=0.6, importance=0.4))
    assert result["count"] == 2 and result["dominant"] == "urgency"
    assert result["arousal"] == pytest.approx((math.sqrt(0.68) + math.sqrt(0.52)) / 4)
    assert call(url, "valence.aggregate_valences", {"valences": []}) == {
        "aggregate": valence(), "arousal": 0.0, "dominant": "urgency", "count": 0}


def test_arousal_and_attention(url: str) -> None:
    assert call(url, "valence.compute_arousal", {"valences": []}) == {"arousal": 0.0}
    assert call(url, "valence.compute_arousal", {"valences": [valence(urgency=1, importance=1, novelty=1, familiarity=1)]}) \
        == {"arousal": pytest.approx(1.0)}
    assert call(url, "valence.compute_arousal", {"valences": [valence(urgency=0.9, importance=0.9)]})["arousal"] \
        == pytest.approx(math.sqrt(1.62) / 2)
    boosted = call(url, "valence.modulate_attention", {"base_salience": 0.5, "valence": valence(urgency=0.8, importance=0.7)})
    assert boosted["boost"] == pytest.approx(0.3 * (0.4 * 0.8 + 0.35 * 0.7)) and boosted["modulated"] > boosted["original"]
    capped = call(url, "valence.modulate_attention", {"base_salience": 0.9, "valence": valence(urgency=1, importance=1, novelty=1)})
    assert capped["modulated"] == 1.0 and capped["boost"] == pytest.approx(0.1)


def test_partner_absence_is_a_fixed_valence_whose_importance_grows_with_the_misses(url: str) -> None:
    one = call(url, "valence.evaluate_partner_absence")
    assert one["valence"] == pytest.approx({"urgency": 0.2, "importance": 0.4 + 0.1 * math.log(2), "novelty": 0.1,
                                            "familiarity": 0.8})
    assert one["event"] == "partner_absence" and one["consecutive_misses"] == 1 and one["dominant_dimension"] == "familiarity"
    assert call(url, "valence.evaluate_partner_absence", {"consecutive_misses": 0})["valence"]["importance"] == 0.4
    assert call(url, "valence.evaluate_partner_absence", {"consecutive_misses": 100})["valence"]["importance"] == 0.7
    assert call(url, "gut.emotional_state")["baseline"]["urgency"]["count"] == 0  # it keeps nothing


def test_knowledge_vulnerability_injects_urgency_as_a_mesh_priority_signal(url: str) -> None:
    warning = call(url, "valence.raise_urgency_for_knowledge_vulnerability", {"domains_at_risk": "billing"}, agent="a1")
    assert warning["event"] == "knowledge_vulnerability" and warning["domains_at_risk"] == ["billing"]
    assert warning["urgency_boost"] == 0.3 and warning["source_type"] == "mesh_priority"
    assert warning["valence"]["urgency"] == pytest.approx(0.3 * 0.7 + 0.2 * 0.3)
    critical = call(url, "valence.raise_urgency_for_knowledge_vulnerability",
                    {"domains_at_risk": ["billing", "ops"], "severity": "critical"}, agent="a2")
    assert critical["urgency_boost"] == pytest.approx(0.45) and critical["valence"]["urgency"] == pytest.approx(0.21 + 0.09)
    capped = call(url, "valence.raise_urgency_for_knowledge_vulnerability",
                  {"domains_at_risk": [], "severity": "critical", "urgency_boost": 0.8}, agent="a3")
    assert capped["urgency_boost"] == 1.0


# --- gut instinct and momentum -----------------------------------------------------------------

@pytest.mark.parametrize(("dims", "signal"), [
    ({"urgency": 0.9, "importance": 0.9, "novelty": 0.5, "familiarity": 0.5}, "alarm"),
    ({"urgency": 0.6, "importance": 0.6, "novelty": 0.9, "familiarity": 0.9}, "heightened"),
    ({"urgency": 0.2, "importance": 0.2, "novelty": 0.9, "familiarity": 0.1}, "explore"),
    ({"importance": 0.65}, "attend"),
    ({"urgency": 0.05, "importance": 0.05, "novelty": 0.05, "familiarity": 0.05}, "calm"),
    ({"urgency": 0.3, "importance": 0.3, "novelty": 0.3, "familiarity": 0.3}, "neutral"),
])
def test_gut_instinct_signals(url: str, dims: dict[str, float], signal: str) -> None:
    result = call(url, "gut.gut_instinct", {"valences": [valence(**dims)]})
    assert result["signal"] == signal
    assert result["aggregate"] == pytest.approx(valence(**dims))
    assert result["arousal"] == pytest.approx(math.sqrt(sum(v * v for v in dims.values())) / 2)


def test_gut_instinct_without_valences_is_neutral_for_lack_of_data(url: str) -> None:
    assert call(url, "gut.gut_instinct", {"valences": []}) == {"signal": "neutral", "confidence": 0.0,
                                                               "basis": "insufficient_data"}
    assert call(url, "gut.emotional_state")["momentum"]["history_size"] == 0  # nothing fed the momentum


def test_gut_confidence_is_consensus_and_memory_evidence(url: str) -> None:
    one = valence(urgency=0.5)
    low = call(url, "gut.gut_instinct", {"valences": [one], "memory_signals": []})
    high = call(url, "gut.gut_instinct", {"valences": [one], "memory_signals": [1] * 10})
    assert low["confidence"] == pytest.approx(0.6) and high["confidence"] == pytest.approx(1.0)
    assert high["confidence"] >= low["confidence"]
    some = call(url, "gut.gut_instinct", {"valences": [one], "memory_signals": [{"trace_id": "t"}] * 3,
                                          "confidence_threshold": 0.75})
    assert some["confidence"] == pytest.approx(0.72) and some["reliable"] is False
    split = call(url, "gut.gut_instinct", {"valences": [valence(), valence(urgency=1, importance=1, novelty=1, familiarity=1)]})
    assert split["confidence"] == pytest.approx(0.0)  # magnitudes 0 and 2: stddev 1, no consensus


def test_gut_instinct_feeds_the_momentum_and_decay_draws_it_to_neutral(url: str) -> None:
    v = valence(urgency=0.8, importance=0.6)
    call(url, "gut.gut_instinct", {"valences": [v]})
    momentum = call(url, "gut.emotional_state")["momentum"]
    assert momentum["valence_ema"] == pytest.approx({d: 0.3 * x for d, x in v.items()})
    assert momentum["arousal_ema"] == pytest.approx(0.3 * 0.5)  # arousal = |(0.8, 0.6)| / 2 = 0.5
    assert momentum["stability"] == pytest.approx(0.0) and momentum["history_size"] == 1  # magnitude 1.0 vs 0
    decayed = call(url, "gut.decay_momentum")
    assert decayed["decayed"] is True and 0.0 <= decayed["stability"] <= 1.0
    after = call(url, "gut.emotional_state")["momentum"]
    assert after["valence_ema"]["urgency"] == pytest.approx(0.3 * 0.5 + 0.7 * 0.24)
    assert after["arousal_ema"] == pytest.approx(0.3 * 0.5 + 0.7 * 0.15)
    for _ in range(60):
        call(url, "gut.decay_momentum")
    settled = call(url, "gut.emotional_state")["momentum"]
    assert settled["valence_ema"] == pytest.approx(helpers.NEUTRAL_VALENCE, abs=1e-6)
    assert settled["stability"] == pytest.approx(1.0) and settled["history_size"] == 62


def test_momentum_history_is_capped_at_100(url: str) -> None:
    for _ in range(105):
        call(url, "gut.decay_momentum")
    assert call(url, "gut.emotional_state")["momentum"]["history_size"] == 100


def test_two_agents_never_see_each_others_state(url: str) -> None:
    for _ in range(5):
        call(url, "valence.evaluate_valence", {"signal": {"novelty_score": 1.0, "source_type": "human_direct"}, "domain": "ops"},
             agent="ada")
    call(url, "gut.gut_instinct", {"valences": [valence(urgency=0.9)]}, agent="ada")
    bob = call(url, "gut.emotional_state", agent="bob")
    assert bob["baseline"] == helpers.new_baseline()
    assert bob["momentum"] == {"valence_ema": valence(), "arousal_ema": 0.0, "stability": 1.0, "history_size": 0}
    first = call(url, "valence.evaluate_valence", {"signal": {"novelty_score": 1.0}, "domain": "ops"}, agent="bob")
    assert first["valence"]["novelty"] == 1.0 and first["valence"]["familiarity"] == 0.0
    assert call(url, "gut.emotional_state", agent="ada")["baseline"]["novelty"]["count"] == 5


# --- properties --------------------------------------------------------------------------------

UNIT = st.floats(0.0, 1.0)
HINTS = ("urgency_hint", "domain_weight", "impact_scope", "reversibility", "outcome_severity", "novelty_score")
SIGNALS = st.fixed_dictionaries({}, optional={
    **{h: st.one_of(st.none(), UNIT) for h in HINTS},
    "source_type": st.sampled_from([*helpers.SOURCE_URGENCY, "elsewhere"]),
    "domain": st.sampled_from(["ops", "sales", "home"]),
})
CALLS = st.fixed_dictionaries({"signal": SIGNALS}, optional={
    "deadline": st.integers(-200_000, 200_000).map(lambda s: (NOW + timedelta(seconds=s)).isoformat()),
    "normalization": st.sampled_from(["centered", "above_mean"]),
})


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(CALLS, min_size=1, max_size=6))
def test_every_dimension_and_arousal_stay_in_range(shared_url: str, calls: list[dict[str, Any]]) -> None:
    agent = fresh_agent()
    results = [call(shared_url, "valence.evaluate_valence", args, agent=agent) for args in calls]
    for result in results:
        assert all(0.0 <= result["valence"][d] <= 1.0 for d in DIMS)
        assert 0.0 <= result["arousal"] <= 1.0 and 0.0 <= result["magnitude"] <= 2.0
    gut = call(shared_url, "gut.gut_instinct", {"valences": [r["valence"] for r in results]}, agent=agent)
    assert gut["signal"] in {"alarm", "heightened", "explore", "attend", "calm", "neutral"}
    assert 0.0 <= gut["arousal"] <= 1.0 and 0.0 <= gut["confidence"] <= 1.0
    for baseline in call(shared_url, "gut.emotional_state", agent=agent)["baseline"].values():
        assert 0.0 <= baseline["mean"] <= 1.0 and baseline["stddev"] >= 0.0 and baseline["count"] == len(calls)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(novelty=UNIT, warmup=st.lists(UNIT, max_size=4))
def test_baselines_move_toward_what_they_observe(shared_url: str, novelty: float, warmup: list[float]) -> None:
    agent = fresh_agent()
    for seen in warmup:
        call(shared_url, "valence.evaluate_valence", {"signal": {"novelty_score": seen}}, agent=agent)
    before = call(shared_url, "gut.emotional_state", agent=agent)["baseline"]["novelty"]["mean"]
    call(shared_url, "valence.evaluate_valence", {"signal": {"novelty_score": novelty}}, agent=agent)
    after = call(shared_url, "gut.emotional_state", agent=agent)["baseline"]["novelty"]["mean"]
    assert min(before, novelty) <= after <= max(before, novelty)
    assert abs(after - novelty) == pytest.approx(0.95 * abs(before - novelty))


@settings(max_examples=100)
@given(mean=UNIT, stddev=st.floats(0.0, 1.0), raw=UNIT, other=UNIT)
def test_baseline_update_and_normalisation_laws(mean: float, stddev: float, raw: float, other: float) -> None:
    baseline = {"mean": mean, "stddev": stddev, "count": 3}
    updated = helpers.update_baseline(baseline, raw)
    assert abs(updated["mean"] - raw) <= abs(mean - raw) + 1e-12 and updated["count"] == 4 and updated["stddev"] >= 0.0
    for mode in ("centered", "above_mean"):
        low, high = sorted((raw, other))
        assert 0.0 <= helpers.normalize(low, baseline, mode) <= helpers.normalize(high, baseline, mode) <= 1.0
    assert helpers.normalize(mean, baseline, "centered") == pytest.approx(0.5)
    assert helpers.normalize(mean, baseline, "above_mean") == 0.0


@settings(max_examples=100)
@given(valences=st.lists(st.fixed_dictionaries({d: UNIT for d in DIMS}), min_size=1, max_size=5), arousal=UNIT)
def test_momentum_stays_in_range(valences: list[dict[str, float]], arousal: float) -> None:
    momentum = helpers.new_momentum()
    for v in valences:
        momentum = helpers.update_momentum(momentum, v, arousal)
        assert all(0.0 <= momentum["valence_ema"][d] <= 1.0 for d in DIMS)
        assert 0.0 <= momentum["arousal_ema"] <= 1.0 and 0.0 <= momentum["stability"] <= 1.0
    assert 0.0 <= helpers.gut_confidence(valences, len(valences)) <= 1.0
