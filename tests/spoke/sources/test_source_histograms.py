"""Window quantiles follow Prometheus' histogram_quantile and increase() rules."""

from __future__ import annotations

import math

import pytest

from spoke.sources import histograms

INF = math.inf


def test_quantile_interpolates_linearly_inside_the_bucket_holding_the_rank() -> None:
    # 10 observations: 4 in (0.1, 0.25], 6 in (0.25, 0.5]. Rank of p50 is 5: one into the 6.
    buckets = {0.1: 0.0, 0.25: 4.0, 0.5: 10.0, INF: 10.0}
    assert histograms.quantile(0.5, buckets) == pytest.approx(0.25 + 0.25 * (1 / 6))
    assert histograms.quantile(0.95, buckets) == pytest.approx(0.25 + 0.25 * (5.5 / 6))


def test_quantile_in_the_first_bucket_starts_from_zero() -> None:
    assert histograms.quantile(0.5, {1.0: 4.0, INF: 4.0}) == pytest.approx(0.5)


def test_quantile_falling_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    assert histograms.quantile(0.99, {1.0: 1.0, 2.0: 2.0, INF: 10.0}) == 2.0


def test_quantile_is_missing_without_observations_or_inf_bucket() -> None:
    assert histograms.quantile(0.5, {1.0: 0.0, INF: 0.0}) is None
    assert histograms.quantile(0.5, {1.0: 3.0, 2.0: 3.0}) is None
    assert histograms.quantile(0.5, {INF: 3.0}) is None


def test_non_monotonic_buckets_are_made_monotonic_first() -> None:
    # A scrape is not atomic; Prometheus lifts a bucket that reads below its predecessor.
    assert histograms.quantile(0.5, {1.0: 4.0, 2.0: 3.0, INF: 4.0}) == pytest.approx(0.5)


def test_quantile_outside_unit_interval_is_rejected() -> None:
    with pytest.raises(ValueError):
        histograms.quantile(1.5, {1.0: 1.0, INF: 1.0})


def test_increase_treats_a_decrease_as_a_restart_from_zero() -> None:
    assert histograms.counter_increase(100.0, 130.0) == 30.0
    assert histograms.counter_increase(100.0, 7.0) == 7.0
    assert histograms.increase({1.0: 5.0, INF: 9.0}, {1.0: 2.0, INF: 3.0}) == {1.0: 2.0, INF: 3.0}


def test_increase_counts_a_new_bucket_from_zero_and_add_sums_by_le() -> None:
    assert histograms.increase({INF: 1.0}, {1.0: 2.0, INF: 3.0}) == {1.0: 2.0, INF: 2.0}
    assert histograms.add([{1.0: 1.0, INF: 2.0}, {1.0: 3.0, INF: 3.0}]) == {1.0: 4.0, INF: 5.0}
