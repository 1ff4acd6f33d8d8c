"""identity: the partner's fingerprint (six dimensions), entropy against it, classification,
trend and maturity, through legion.sdk.call; an entropy only from real observations."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from legion import sdk
from legion.extensions.identity import helpers

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
AGENTS = itertools.count()


def call(url: str, function: str, args: dict[str, Any] | None = None, *, agent: str = "ada", now: datetime = NOW) -> Any:
    return sdk.call(f"identity.identity.{function}", args or {}, now=now, agent=agent, database_url=url)


def settle(url: str, dimension: str, value: float, times: int, agent: str = "ada") -> None:
    for _ in range(times):
        call(url, "observe_behavior", {"dimension": dimension, "value": value}, agent=agent)


# --- observing ---------------------------------------------------------------------------------

def test_observe_one_behaviour(url: str) -> None:
    result = call(url, "observe_behavior", {"dimension": "communication_cadence", "value": 0.9})
    assert result == {"dimension": "communication_cadence", "recorded": True, "observation_count": 1, "maturity": "nascent"}
    cadence = call(url, "identity_status")["model"]["communication_cadence"]
    # mean 0.1 x 0.9 + 0.9 x 0.5; variance 0.1 x |0.9 - 0.54| + 0.9 x 0.1
    assert cadence == {"mean": pytest.approx(0.54), "variance": pytest.approx(0.126), "observations": 1,
                       "last_observed": NOW.isoformat()}


def test_observe_several_behaviours_at_once(url: str) -> None:
    result = call(url, "observe_all", {"observations": {"communication_cadence": 0.6, "vocabulary_patterns": 0.7,
                                                        "emotional_response": 0.5}})
    assert result == {"dimensions_observed": ["communication_cadence", "vocabulary_patterns", "emotional_response"],
                      "observation_count": 3, "maturity": "nascent"}
    status = call(url, "identity_status")
    assert status["observation_count"] == 3 and status["entropy_history_size"] == 0
    assert status["model"]["decision_patterns"] == helpers.new_dimension()
    assert set(status["model"]) == set(helpers.IDENTITY_DIMENSIONS)


def test_an_unknown_dimension_or_value_out_of_range_is_refused(url: str) -> None:
    for function, args in (("observe_behavior", {"dimension": "nonexistent", "value": 0.5}),
                           ("observe_behavior", {"dimension": "temporal_patterns", "value": 10.0}),
                           ("observe_all", {"observations": {"mood": 0.5}}),
                           ("check_entropy", {"observations": {"communication_cadence": -0.1}}),
                           ("check_entropy", {"obsevations": {}})):
        with pytest.raises(sdk.StepError) as refused:
            call(url, function, args)
        assert refused.value.type == "InvalidArguments"
    assert call(url, "identity_status")["observation_count"] == 0


def test_the_mean_moves_toward_what_is_observed(url: str) -> None:
    settle(url, "vocabulary_patterns", 0.9, 10)
    assert call(url, "identity_status")["model"]["vocabulary_patterns"]["mean"] == pytest.approx(0.9 - 0.4 * 0.9 ** 10)


# --- entropy -----------------------------------------------------------------------------------

def test_without_observations_there_is_no_entropy_and_nothing_is_recorded(url: str) -> None:
    assert call(url, "check_entropy") == {"entropy": None, "classification": "unknown", "trend": "stable", "in_range": None,
                                          "basis": "no_observations"}
    # Observations on dimensions never observed before have nothing to be compared with.
    assert call(url, "check_entropy", {"observations": {"decision_patterns": 0.9}})["basis"] == "no_baseline"
    assert call(url, "identity_status")["entropy_history_size"] == 0


@pytest.mark.parametrize(("value", "entropy", "classification", "extra"), [
    (1.0, 1.0, "high_entropy", {"warning": "possible_impersonation_or_drift", "action": "enter_caution_mode"}),
    (0.5, 0.0, "low_entropy", {"warning": "possible_automation", "action": "trigger_verification"}),
    (0.65, 0.5, "normal", {}),
])
def test_entropy_is_divergence_from_the_fingerprint(url: str, value: float, entropy: float, classification: str,
                                                    extra: dict[str, str]) -> None:
    settle(url, "communication_cadence", 0.5, 20)  # mean 0.5; the variance shrinks below the 0.1 floor
    result = call(url, "check_entropy", {"observations": {"communication_cadence": value}})
    assert result == {"entropy": pytest.approx(entropy), "classification": classification, "trend": "stable",
                      "in_range": classification == "normal", **extra}
    assert call(url, "identity_status")["entropy_history_size"] == 1


def test_entropy_pins_from_the_specs() -> None:
    model = helpers.new_model()
    assert helpers.compute_entropy({}, model) is None  # LegionIO: 0.5
    model["communication_cadence"]["observations"] = 50
    assert helpers.compute_entropy({"communication_cadence": 0.5}, model) < 0.3
    assert helpers.compute_entropy({"communication_cadence": 1.0}, model) > 0.3
    # A dimension with no baseline is left out rather than counted as a perfect match.
    assert helpers.compute_entropy({"communication_cadence": 1.0, "temporal_patterns": 0.5}, model) == pytest.approx(1.0)
    assert [helpers.classify_entropy(e) for e in (0.8, 0.1, 0.5, 0.7, 0.2)] == [
        "high_entropy", "low_entropy", "normal", "normal", "normal"]
    assert helpers.in_range(0.2) and helpers.in_range(0.7) and not helpers.in_range(0.71)


def test_the_trend_compares_the_later_half_of_the_last_ten_with_the_earlier(url: str) -> None:
    settle(url, "emotional_response", 0.5, 20)
    trends = [call(url, "check_entropy", {"observations": {"emotional_response": v}})["trend"] for v in [0.5] * 5 + [1.0] * 3]
    assert trends[:5] == ["stable"] * 5 and trends[-1] == "rising"
    falling = [call(url, "check_entropy", {"observations": {"emotional_response": 0.5}})["trend"] for _ in range(10)]
    assert "falling" in falling and falling[-1] == "stable"  # ten lows: the window has forgotten the highs
    assert helpers.entropy_trend([]) == helpers.entropy_trend([0.9]) == "stable"
    assert helpers.entropy_trend([0.1, 0.5]) == "rising" and helpers.entropy_trend([0.9, 0.1, 0.2]) == "falling"
    # Only the last ten count: over all twenty this would be rising.
    assert helpers.entropy_trend([0.1] * 10 + [0.9] * 7 + [0.1, 0.1, 0.12]) == "falling"


def test_the_entropy_history_keeps_200() -> None:
    history: list[list[Any]] = []
    for i in range(205):
        history = helpers.append_history(history, i / 205, f"t{i}")
    assert len(history) == 200 and history[0] == [5 / 205, "t5"] and history[-1][1] == "t204"


def test_check_entropy_can_also_learn_from_what_it_measured(url: str) -> None:
    first = call(url, "check_entropy", {"observations": {"temporal_patterns": 0.8}, "observe": True})
    assert first["entropy"] is None and first["basis"] == "no_baseline"
    assert first["observation_count"] == 1 and first["maturity"] == "nascent"
    # Measured against the fingerprint as it was (mean 0.53 after one 0.8), then folded in.
    second = call(url, "check_entropy", {"observations": {"temporal_patterns": 0.8}, "observe": True},
                  now=NOW + timedelta(minutes=1))
    assert second["entropy"] == pytest.approx(abs(0.8 - 0.53) / 0.117 / 3)
    assert second["observation_count"] == 2
    status = call(url, "identity_status")
    assert status["model"]["temporal_patterns"]["observations"] == 2
    assert status["model"]["temporal_patterns"]["last_observed"] == (NOW + timedelta(minutes=1)).isoformat()
    untouched = call(url, "check_entropy", {"observations": {"temporal_patterns": 0.8}})
    assert "observation_count" not in untouched and call(url, "identity_status")["observation_count"] == 2


# --- maturity, agents, properties --------------------------------------------------------------

def test_maturity_grows_with_observations(url: str) -> None:
    assert call(url, "identity_maturity") == {"maturity": "nascent"}
    settle(url, "communication_cadence", 0.5, 9)
    assert call(url, "identity_maturity") == {"maturity": "nascent"}
    assert call(url, "observe_behavior", {"dimension": "communication_cadence", "value": 0.5})["maturity"] == "developing"
    settle(url, "communication_cadence", 0.5, 5)
    assert call(url, "identity_maturity") == {"maturity": "developing"}
    assert [helpers.maturity(n) for n in (0, 9, 10, 99, 100, 999, 1000, 10**6)] == [
        "nascent", "nascent", "developing", "developing", "established", "established", "mature", "mature"]


def test_two_agents_never_see_each_others_fingerprint(url: str) -> None:
    settle(url, "communication_cadence", 0.9, 12, agent="ada")
    call(url, "check_entropy", {"observations": {"communication_cadence": 0.9}}, agent="ada")
    bob = call(url, "identity_status", agent="bob")
    assert bob == {"model": helpers.new_model(), "observation_count": 0, "maturity": "nascent", "entropy_history_size": 0}
    assert call(url, "check_entropy", {"observations": {"communication_cadence": 0.9}}, agent="bob")["basis"] == "no_baseline"
    assert call(url, "identity_maturity", agent="ada") == {"maturity": "developing"}


DIMENSION = st.sampled_from(helpers.IDENTITY_DIMENSIONS)
UNIT = st.floats(0.0, 1.0)
OBSERVATIONS = st.dictionaries(DIMENSION, UNIT, max_size=6)


@settings(max_examples=200)
@given(history=st.lists(st.tuples(DIMENSION, UNIT), max_size=30), observations=OBSERVATIONS)
def test_entropy_is_in_range_or_absent(history: list[tuple[str, float]], observations: dict[str, float]) -> None:
    model = helpers.new_model()
    for dimension, value in history:
        model[dimension] = helpers.observe(model[dimension], value, "t")
    entropy = helpers.compute_entropy(observations, model)
    baselined = [d for d in observations if model[d]["observations"] > 0]
    assert (entropy is None) == (not baselined)
    assert entropy is None or 0.0 <= entropy <= 1.0


@settings(max_examples=200)
@given(counts=st.lists(st.integers(0, 5000), min_size=2, max_size=10))
def test_maturity_is_monotone_in_the_observation_count(counts: list[int]) -> None:
    ranks = [helpers.MATURITY_ORDER.index(helpers.maturity(n)) for n in sorted(counts)]
    assert ranks == sorted(ranks)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(OBSERVATIONS, min_size=1, max_size=5), probe=OBSERVATIONS)
def test_through_the_runner_entropy_stays_in_range_and_maturity_never_falls(
        shared_url: str, batches: list[dict[str, float]], probe: dict[str, float]) -> None:
    agent = f"agent-{next(AGENTS)}"
    ranks, total = [], 0
    for batch in batches:
        result = call(shared_url, "observe_all", {"observations": batch}, agent=agent)
        total += len(batch)
        assert result["observation_count"] == total
        ranks.append(helpers.MATURITY_ORDER.index(result["maturity"]))
    assert ranks == sorted(ranks)
    checked = call(shared_url, "check_entropy", {"observations": probe}, agent=agent)
    if checked["entropy"] is None:
        assert checked["classification"] == "unknown" and checked["basis"] in {"no_observations", "no_baseline"}
    else:
        assert 0.0 <= checked["entropy"] <= 1.0 and checked["classification"] in {"high_entropy", "low_entropy", "normal"}
