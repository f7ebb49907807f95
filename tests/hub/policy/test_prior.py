"""The datasheet prior: ordered like the datasheets, stricter with stricter targets, honest about unknowns."""

from __future__ import annotations

import math

import pytest

from hub.policy.model import Metric
from hub.policy.prior import KNATIVE_TARGET_UTILIZATION, infeasible_share, longest_prompt, prior_capacity
from shared.gpus import GPU_PROFILES

CODE = {"mean_input": 2048, "mean_output": 28}
CHAT = {"mean_input": 1155, "mean_output": 211}


def prior(gpu: str, *, metric: Metric = Metric.TTFT, percentile: str = "p95", target_s: float = 2.0, mix=CHAT):
    return prior_capacity(gpu, gpus_per_replica=1, metric=metric, percentile=percentile, target_s=target_s, **mix)


def test_faster_gpus_sustain_more_and_never_more_than_their_compute_allows() -> None:
    h100, a100, l4 = prior("H100"), prior("A100"), prior("L4")
    assert h100 > a100 > l4 > 0
    # Prefill-bound ceiling: every token costs 2 x params FLOPs at the MFU the simulator assumes.
    ceiling = GPU_PROFILES["H100"].bf16_dense_flops * 0.5 / (2 * 8.03e9)
    assert h100 <= KNATIVE_TARGET_UTILIZATION * ceiling


def test_a_slow_gpu_cannot_serve_the_long_prompts_of_a_strict_percentile() -> None:
    # An L4 prefills ~3,800 tokens/s: the p99 prompt of a 2k-token mean (4.6x) takes ~2.5 s alone.
    assert prior("L4", percentile="p99", mix=CODE) == 0.0
    assert prior("L4", percentile="p50", mix=CODE) > 0
    assert prior("H100", percentile="p99", mix=CODE) > 0


def test_a_tighter_target_never_gives_more_capacity() -> None:
    for gpu in ("H100", "A100", "L4"):
        assert prior(gpu, target_s=0.5) <= prior(gpu, target_s=2.0)
        assert prior(gpu, metric=Metric.ITL, target_s=0.03) <= prior(gpu, metric=Metric.ITL, target_s=0.2)


def test_unknown_gpu_types_and_empty_mixes_have_no_prior() -> None:
    assert prior("TPU-v5") is None
    assert prior_capacity("H100", gpus_per_replica=1, metric=Metric.TTFT, percentile="p95", target_s=2.0,
                          mean_input=0, mean_output=10) is None


@pytest.mark.parametrize("gpus", [1, 2])
def test_more_gpus_per_replica_sustain_more(gpus: int) -> None:
    one = prior_capacity("A100", gpus_per_replica=1, metric=Metric.TTFT, percentile="p95", target_s=2.0, **CHAT)
    many = prior_capacity("A100", gpus_per_replica=gpus, metric=Metric.TTFT, percentile="p95", target_s=2.0, **CHAT)
    assert many >= one


def test_the_share_no_replica_prefills_in_time_shrinks_with_faster_gpus_and_looser_targets() -> None:
    l4 = longest_prompt("L4", gpus_per_replica=1, metric=Metric.TTFT, target_s=1.0)
    h100 = longest_prompt("H100", gpus_per_replica=1, metric=Metric.TTFT, target_s=1.0)
    assert 3000 < l4 < 4500 and 6 < h100 / l4 < 10  # ~8x the FLOPs
    assert infeasible_share(l4, 2048) == pytest.approx(math.exp(-l4 / 2048))
    assert infeasible_share(h100, 2048) < 1e-5 < infeasible_share(l4, 2048) < 0.2
    assert longest_prompt("L4", gpus_per_replica=1, metric=Metric.TTFT, target_s=2.0) > l4
    assert longest_prompt("L4", gpus_per_replica=1, metric=Metric.ITL, target_s=0.1) is None
    assert longest_prompt("TPU-v5", gpus_per_replica=1, metric=Metric.TTFT, target_s=1.0) is None
    assert infeasible_share(None, 2048) == 0.0
