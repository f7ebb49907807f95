"""The capacity model: sizing, the monotone fit of misses, and how evidence corrects the prior."""

from __future__ import annotations

import pytest

from hub.policy.capacity import (
    FACTOR_FLOOR,
    HALF_LIFE_S,
    PROBE,
    CapacityLearner,
    CapacityModel,
    Evidence,
    estimate,
    isotonic,
    mix_capacity,
    size,
)


def test_size_is_load_with_headroom_over_capacity_rounded_up() -> None:
    assert size(10_000, 20, 3_000) == 4  # 12,000 / 3,000
    assert size(9_000, 0, 3_000) == 3  # exactly 3, not 4 by float error
    assert size(0, 50, 3_000) == 0


def test_mix_capacity_is_the_replica_weighted_mean_and_counts_types_that_cannot_serve() -> None:
    assert mix_capacity({"H100": 20_000, "L4": 2_000}, {"H100": 1, "L4": 4}) == pytest.approx(5_600)
    assert mix_capacity({"H100": 20_000, "L4": 0.0}, {"H100": 1, "L4": 1}) == pytest.approx(10_000)
    assert mix_capacity({"H100": None}, {"H100": 3}) is None
    assert mix_capacity({"H100": 1.0}, {}) is None


def test_isotonic_pools_violators_weighted() -> None:
    assert isotonic([(0.0, 1), (0.5, 1), (0.1, 3), (1.0, 1)]) == pytest.approx([0.0, 0.2, 0.2, 1.0])
    assert isotonic([(0.3, 1), (0.2, 1), (0.1, 1)]) == pytest.approx([0.2, 0.2, 0.2])


def test_estimate_follows_the_evidence_around_the_prior() -> None:
    assert estimate(1.0, Evidence(None, None, 0)) == 1.0  # nothing seen: the prior
    # Loads that worked far below the prior say nothing against it (an over-provisioned fleet's load
    # took the factor to 0.075 and kept the fleet 13x too large).
    assert estimate(1.0, Evidence(0.05, None, 10)) == 1.0
    assert estimate(None, Evidence(0.2, None, 10)) == pytest.approx(0.2 * PROBE)  # no prior: a little past it
    assert estimate(0.25, Evidence(0.2, None, 10)) == 0.25  # the prior, inside that range
    assert estimate(1.0, Evidence(0.4, 0.9, 10)) == pytest.approx((0.4 * 0.9) ** 0.5)  # between ok and bad
    assert estimate(0.5, Evidence(0.4, 0.9, 10)) == 0.5
    assert estimate(1.0, Evidence(None, 0.3, 10)) == pytest.approx(0.3 / PROBE)  # below the lowest miss
    assert estimate(2.0, Evidence(3.0, None, 10)) == 3.0  # seen to work above the prior


def test_a_miss_at_low_load_among_many_hits_does_not_collapse_the_fit() -> None:
    learner = CapacityLearner(target=2.0)
    for _ in range(20):
        learner.observe(0.2, True, 10, now=0)
        learner.observe(0.5, True, 10, now=0)
    learner.observe(0.2, False, 10, now=0)  # one noisy window
    for _ in range(5):
        learner.observe(1.0, False, 10, now=0)
    ev = learner.evidence(now=0)
    assert ev.ok == pytest.approx(0.5, rel=0.01) and ev.bad == pytest.approx(1.0, rel=0.01)


def test_evidence_decays_with_its_half_life() -> None:
    learner = CapacityLearner(target=2.0)
    learner.observe(0.5, False, 4.0, now=0)
    assert learner.evidence(now=HALF_LIFE_S).weight == pytest.approx(2.0)
    assert learner.evidence(now=20 * HALF_LIFE_S).bad is None  # forgotten


def test_misses_lower_the_factor_hits_above_the_prior_raise_it_and_a_new_target_starts_over() -> None:
    model = CapacityModel()
    assert model.factor("w", "ttft_p95", now=0)[0] == 1.0
    for _ in range(10):
        model.observe("w", "ttft_p95", 2.0, utilization=0.3, met=True, weight=5, now=0)
        model.observe("w", "ttft_p95", 2.0, utilization=0.6, met=False, weight=5, now=0)
    lowered, ev = model.factor("w", "ttft_p95", now=0)
    assert ev.ok == pytest.approx(0.3) and lowered == pytest.approx((0.3 * 0.6) ** 0.5)
    model.observe("w", "ttft_p95", 1.0, utilization=1.8, met=True, weight=5, now=0)
    assert model.factor("w", "ttft_p95", now=0)[0] == pytest.approx(1.8)
    model.forget(set())
    assert model.factor("w", "ttft_p95", now=0)[0] == 1.0


def test_the_factor_never_goes_below_its_floor() -> None:
    model = CapacityModel()
    model.observe("w", "ttft_p95", 2.0, utilization=0.001, met=False, weight=5, now=0)
    assert model.factor("w", "ttft_p95", now=0)[0] == FACTOR_FLOOR
