"""Signals become the HPA's per-pod samples: ready, unready (asked, not ready) and missing pods."""

from __future__ import annotations

import pytest

from hub.policy.hpa import MetricSource, TargetType
from hub.policy.model import SignalSpec
from hub.policy.signals import cluster_parts, read_latency, read_load, read_signal
from hub.state import FleetState
from tests.hub.policy.fleet import KEY, Cluster


def parts(*clusters: Cluster):
    state = FleetState()
    for c in clusters:
        state.ingest(c.report(1), now=100.0)
    snap = state.snapshot(now=100.0)
    return cluster_parts(snap, snap.workloads[KEY])


def spec(metric: str, target: float, **kw) -> SignalSpec:
    return SignalSpec.model_validate({"metric": metric, "target": target, **kw})


def test_a_clusters_mean_stands_for_each_of_its_ready_replicas_and_unready_ones_are_pending() -> None:
    r = read_signal(parts(Cluster("a", desired=3, ready=2, samples={"kv_cache_usage_ratio": 0.6})),
                    spec("kv_cache", 80))
    assert r.target.source is MetricSource.RESOURCE and r.target.type is TargetType.UTILIZATION
    assert [p.value for p in r.pods] == [60.0, 60.0, None]
    assert [p.pending for p in r.pods] == [False, False, True]
    assert all(p.request == 100.0 for p in r.pods) and r.value == 60.0 and not r.partial


def test_a_cluster_that_did_not_measure_gives_missing_pods_with_its_reason() -> None:
    r = read_signal(parts(Cluster("a", samples={"kv_cache_usage_ratio": 0.5}),
                          Cluster("b", samples={"missing_reasons": {"kv_cache_usage_ratio": "engine down"}})),
                    spec("kv_cache", 80))
    assert [p.value for p in r.pods] == [50.0, 50.0, None, None]
    assert not any(p.pending for p in r.pods) and r.missing == {"b": "engine down"} and r.partial


def test_per_replica_totals_are_shared_and_a_gateway_queue_without_replicas_is_spread_over_all() -> None:
    r = read_signal(parts(Cluster("a", desired=2, ready=2, samples={"requests_waiting": 8}),
                          Cluster("gw", desired=0, ready=0, samples={"requests_waiting": 6})),
                    spec("queue_per_replica", 5))
    assert r.target.type is TargetType.AVERAGE_VALUE
    assert [p.value for p in r.pods] == [7.0, 7.0]  # 8 / 2 + 6 / 2


def test_a_fractional_percentage_stays_exact_as_an_average_value() -> None:
    r = read_signal(parts(Cluster("a", samples={"gpu_util": 0.5})), spec("gpu_utilization", 70.5))
    assert r.target.type is TargetType.AVERAGE_VALUE and r.target.value == 70.5
    assert [p.value for p in r.pods] == [50.0, 50.0]


def test_cpu_keeps_the_hpas_cpu_name_so_its_readiness_rule_applies() -> None:
    reading = read_signal(parts(Cluster("a", samples={"cpu_utilization_ratio": 0.4})), spec("cpu", 60))
    assert reading.target.name == "cpu"


def test_latency_is_request_weighted_and_an_idle_cluster_is_not_missing() -> None:
    r = read_latency(parts(Cluster("a", samples={"ttft": 1.0, "request_rate_per_s": 3.0}),
                           Cluster("b", gpu_type="L4", samples={"ttft": 3.0, "request_rate_per_s": 1.0}),
                           Cluster("c", samples={"request_rate_per_s": 0.0}),
                           Cluster("d", samples={"request_rate_per_s": 2.0})),
                     spec("ttft", 2))
    assert r.value == pytest.approx(1.5)  # (1 x 30 + 3 x 10) / 40 requests
    assert r.idle == ("c",) and list(r.missing) == ["d"]
    assert {c.cluster_id: c.gpu_type for c in r.clusters} == {"a": "H100", "b": "L4"}


def test_load_sums_clusters_and_missing_rates_of_serving_clusters_make_it_partial() -> None:
    load = read_load(parts(Cluster("a", samples={"request_rate_per_s": 2.0, "prompt_tokens_per_s": 900.0,
                                                 "generation_tokens_per_s": 100.0, "requests_waiting": 0}),
                           Cluster("b", samples={"requests_waiting": 0})))
    assert (load.request_rate, load.token_rate, load.prompt_rate, load.generation_rate) == (2.0, 1000.0, 900.0, 100.0)
    assert load.partial and "b" in load.missing and not load.idle
    idle = read_load(parts(Cluster("a", samples={"request_rate_per_s": 0.0, "prompt_tokens_per_s": 0.0,
                                                 "generation_tokens_per_s": 0.0, "requests_waiting": 0})))
    assert idle.idle
