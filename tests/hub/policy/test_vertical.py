"""The vertical recommender: VPA's decaying histograms, percentiles, bounds, and the rails of a proposal."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.policy.histogram import CPU_BUCKETS, MEMORY_BUCKETS, DecayingHistogram, HistogramOptions
from hub.policy.vertical import DAY_S, ResourceHistory, VerticalSettings
from shared.messages import ContainerUsage, Samples, VariantStatus, WorkloadRef, WorkloadReport

GI = 2.0**30
HOUR = 3600.0


def report(*containers: ContainerUsage, gpu_type: str = "H100") -> WorkloadReport:
    return WorkloadReport(
        workload=WorkloadRef(namespace="llm", name="chat"), desired_replicas=1, ready_replicas=1,
        variants=(VariantStatus(gpu_type=gpu_type, desired_replicas=1, ready_replicas=1),),
        samples=Samples(containers=containers))


def usage(pod: str = "chat-0", **fields: float) -> ContainerUsage:
    return ContainerUsage(pod=pod, container="engine", **fields)  # type: ignore[arg-type]


# --- the histogram -------------------------------------------------------------------------------


def test_buckets_are_vpas_exponential_ones() -> None:
    # VPA: first bucket 0.01 cores, each 5 % wider; bucket b starts at first * (1.05**b - 1) / 0.05.
    assert CPU_BUCKETS.bucket_start(0) == 0.0
    assert CPU_BUCKETS.bucket_start(1) == 0.01
    assert math.isclose(CPU_BUCKETS.bucket_start(2), 0.01 + 0.0105)
    assert CPU_BUCKETS.find_bucket(0.005) == 0 and CPU_BUCKETS.find_bucket(0.015) == 1
    assert CPU_BUCKETS.find_bucket(1e9) == CPU_BUCKETS.buckets - 1


def test_percentile_is_the_end_of_the_bucket_reaching_the_share() -> None:
    h = DecayingHistogram(CPU_BUCKETS, DAY_S)
    for v in (1.0, 2.0, 3.0, 4.0):
        h.add(v, 1.0, 0.0)
    p50 = h.percentile(0.5)
    assert p50 is not None
    bucket = CPU_BUCKETS.find_bucket(2.0)
    assert p50 == CPU_BUCKETS.bucket_start(bucket + 1)  # the end of 2.0's bucket
    assert 2.0 < p50 <= 2.0 * 1.05 + 0.01


def test_an_empty_histogram_has_no_percentile() -> None:
    assert DecayingHistogram(CPU_BUCKETS, DAY_S).percentile(0.9) is None


def test_a_sample_one_half_life_newer_weighs_twice_as_much() -> None:
    h = DecayingHistogram(CPU_BUCKETS, HOUR)
    h.add(1.0, 1.0, 0.0)
    h.add(8.0, 1.0, HOUR)
    # Weights 1 and 2: the 8-core bucket holds 2/3 of the weight, so p34 already lands there.
    assert h.percentile(0.3) is not None and h.percentile(0.3) < 1.1  # type: ignore[operator]
    assert h.percentile(0.34) is not None and h.percentile(0.34) > 8.0  # type: ignore[operator]


def test_old_samples_fade_after_many_half_lives_without_overflow() -> None:
    h = DecayingHistogram(CPU_BUCKETS, HOUR)
    h.add(1.0, 1.0, 0.0)
    h.add(8.0, 1.0, 300 * HOUR)  # 2**300 would overflow a naive weight's sum of squares; the reference moves
    assert math.isfinite(h.total)
    assert h.percentile(0.01) is not None and h.percentile(0.01) > 8.0  # type: ignore[operator]


def test_subtract_takes_a_peak_back_out() -> None:
    h = DecayingHistogram(MEMORY_BUCKETS, DAY_S)
    h.add(4 * GI, 1.0, 10.0)
    h.subtract(4 * GI, 1.0, 10.0)
    assert h.empty and h.percentile(0.5) is None


@given(st.lists(st.floats(min_value=0.0, max_value=900.0), min_size=1, max_size=60),
       st.floats(min_value=0.01, max_value=0.99))
@settings(max_examples=200, deadline=None)
def test_percentile_is_at_least_the_share_of_samples_below_it(values: list[float], p: float) -> None:
    h = DecayingHistogram(CPU_BUCKETS, DAY_S)
    for v in values:
        h.add(v, 1.0, 0.0)
    q = h.percentile(p)
    assert q is not None
    # The bucket end is above every value in the buckets counted: at least p of the samples lie below it.
    assert sum(1 for v in values if v < q) >= p * len(values) - 1e-9
    assert q <= CPU_BUCKETS.bucket_start(CPU_BUCKETS.find_bucket(max(values)) + 1)


def test_options_refuse_nonsense() -> None:
    try:
        HistogramOptions(first=0.0, ratio=1.05, max_value=1.0)
    except ValueError:
        return
    raise AssertionError("first=0 accepted")


# --- the recommender ------------------------------------------------------------------------------


def test_a_recommendation_follows_vpas_estimators() -> None:
    history = ResourceHistory()
    for minute in range(3 * 24 * 60):  # three days, one sample a minute
        history.observe("eu", report(usage(cpu_cores=1.0 + (minute % 10) / 10, memory_bytes=6 * GI,
                                           cpu_request_cores=8.0, memory_request_bytes=64 * GI)), minute * 60.0)
    [rec] = history.recommend("llm/chat")
    assert rec.gpu_type == "H100" and rec.container == "engine"
    assert 0.99 < rec.confidence_days <= 3.0
    cpu = rec.cpu_cores
    assert cpu.target is not None and cpu.lower is not None and cpu.upper is not None
    # p90 of 1.0..1.9 is within one bucket of 1.8, plus the 15 % margin.
    assert 1.8 * 1.15 <= cpu.target <= 1.9 * 1.05 * 1.15 + 0.02
    assert cpu.lower <= cpu.target <= cpu.upper
    # upper = p95 * margin * (1 + 1/confidence): about twice p95 at one... three days
    assert cpu.upper >= 1.9 * 1.15 * (1 + 1 / rec.confidence_days) - 0.01
    memory = rec.memory_bytes
    assert memory.target is not None and 6 * GI * 1.15 <= memory.target <= 6 * GI * 1.05 * 1.15 + 1e7
    assert rec.current["cpu_request_cores"] == 8.0
    assert rec.proposal.cpu_request_cores == cpu.target
    assert rec.samples == 3 * 24 * 60


def test_a_first_sample_gives_a_target_with_an_unbounded_upper_bound() -> None:
    history = ResourceHistory()
    history.observe("eu", report(usage(cpu_cores=0.5)), 1000.0)
    [rec] = history.recommend("llm/chat")
    assert rec.cpu_cores.target is not None and rec.cpu_cores.upper is None and rec.cpu_cores.lower == 0.025
    assert rec.memory_bytes.target is None  # memory was not measured: no estimate, never a zero


def test_samples_closer_than_the_sample_interval_count_once() -> None:
    history = ResourceHistory()
    for second in range(120):
        history.observe("eu", report(usage(cpu_cores=1.0)), float(second))
    [rec] = history.recommend("llm/chat")
    assert rec.samples == 2


def test_memory_keeps_one_peak_per_pod_per_interval() -> None:
    s = VerticalSettings(memory_aggregation_interval_s=HOUR)
    history = ResourceHistory(s)
    for minute, gib in enumerate([2, 9, 3, 4]):  # one hour: its peak is 9 GiB, added once
        history.observe("eu", report(usage(memory_bytes=gib * GI)), minute * 60.0)
    agg = history._aggregates["llm/chat"][("H100", "engine")]
    assert math.isclose(agg.memory.total, sum(agg.memory.weights.values()))
    assert len(agg.memory.weights) == 1 and MEMORY_BUCKETS.find_bucket(9 * GI) in agg.memory.weights


def test_containers_are_kept_apart_by_gpu_type() -> None:
    history = ResourceHistory()
    history.observe("eu", report(usage(cpu_cores=1.0, gpu_type="H100"), usage("chat-1", cpu_cores=3.0,
                                                                              gpu_type="L4")), 0.0)
    recs = history.recommend("llm/chat")
    assert [(r.gpu_type, r.container) for r in recs] == [("H100", "engine"), ("L4", "engine")]
    assert recs[0].cpu_cores.target < recs[1].cpu_cores.target  # type: ignore[operator]


def test_gpu_memory_is_recommended_from_its_peaks() -> None:
    history = ResourceHistory()
    history.observe("eu", report(usage(gpu_memory_bytes=70 * GI)), 0.0)
    [rec] = history.recommend("llm/chat")
    assert rec.gpu_memory_bytes.target is not None and rec.gpu_memory_bytes.target >= 70 * GI * 1.15
    assert rec.gpu_memory_bytes.peak == 70 * GI


@given(st.lists(st.tuples(st.floats(min_value=0.0, max_value=64.0), st.floats(min_value=0.0, max_value=256 * GI)),
                min_size=1, max_size=40),
       st.sampled_from([None, 2.0]), st.sampled_from([None, 1.0, 2.0]))
@settings(max_examples=150, deadline=None)
def test_a_proposal_is_never_below_the_observed_peak(
    samples: list[tuple[float, float]], limit_ratio: float | None, cpu_limit_ratio: float | None
) -> None:
    history = ResourceHistory(VerticalSettings(memory_aggregation_interval_s=300.0))
    for i, (cpu, memory) in enumerate(samples):
        history.observe("eu", report(usage(
            cpu_cores=cpu, memory_bytes=memory, cpu_request_cores=4.0, memory_request_bytes=32 * GI,
            cpu_limit_cores=None if cpu_limit_ratio is None else 4.0 * cpu_limit_ratio,
            memory_limit_bytes=None if limit_ratio is None else 32 * GI * limit_ratio)), i * 60.0)
    [rec] = history.recommend("llm/chat")
    p = rec.proposal
    peak_memory = max(m for _, m in samples)
    peak_cpu = max(c for c, _ in samples)
    assert p.memory_request_bytes is not None and p.memory_request_bytes >= peak_memory
    if p.memory_limit_bytes is not None:
        assert p.memory_limit_bytes >= max(peak_memory, p.memory_request_bytes)
    if p.cpu_limit_cores is not None:
        assert p.cpu_limit_cores >= max(peak_cpu, p.cpu_request_cores or 0.0)
    for est in (rec.cpu_cores, rec.memory_bytes):
        assert est.lower is not None and est.target is not None
        assert est.lower <= est.target and (est.upper is None or est.target <= est.upper)


def test_prune_forgets_workloads_no_longer_reported() -> None:
    history = ResourceHistory()
    history.observe("eu", report(usage(cpu_cores=1.0)), 0.0)
    history.prune(10.0, keep=[])
    assert history.recommend("llm/chat") == [] and history.workloads() == []
