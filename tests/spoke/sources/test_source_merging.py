"""Partial samples merge by precedence; targets come from pods; read_all survives bad sources."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from kubernetes_asyncio.client import V1ContainerStatus, V1ObjectMeta, V1Pod, V1PodSpec, V1PodStatus
from source_helpers import fixture_text

from shared.messages import GpuSample, Percentiles
from spoke.metrics import SpokeMetrics
from spoke.sources import (
    DcgmSource,
    EngineSource,
    NvmlSource,
    PartialSample,
    PodTarget,
    SourceReading,
    SourceTarget,
    SourceUnavailable,
    merge_samples,
    read_all,
)

CHAT = SourceTarget("llm", "chat")


def test_measured_value_beats_missing_whatever_the_precedence() -> None:
    prom = PartialSample(values={"requests_waiting": 3.0})
    engines = PartialSample(missing_reasons={"requests_waiting": "first scrape"})
    merged = merge_samples([("engines", engines), ("prometheus", prom)])
    assert merged.requests_waiting == 3.0
    assert "requests_waiting" not in merged.missing_reasons


def test_conflicts_go_to_the_earlier_source_in_precedence() -> None:
    prom = PartialSample(values={"requests_waiting": 3.0})
    engines = PartialSample(values={"requests_waiting": 5.0})
    assert merge_samples([("prometheus", prom), ("engines", engines)]).requests_waiting == 5.0
    custom = merge_samples([("prometheus", prom), ("engines", engines)], precedence=("prometheus", "engines"))
    assert custom.requests_waiting == 3.0


def test_gpus_merge_field_by_field_with_nvml_before_dcgm() -> None:
    nvml = PartialSample(values={"gpus": (GpuSample(gpu_id="GPU-1", power_w=300.0),)})
    dcgm = PartialSample(
        values={
            "gpus": (
                GpuSample(gpu_id="GPU-1", power_w=280.0, utilization_ratio=0.5),
                GpuSample(gpu_id="GPU-2", power_w=100.0),
            )
        }
    )
    merged = merge_samples([("dcgm", dcgm), ("nvml", nvml)])
    by_id = {g.gpu_id: g for g in merged.gpus}
    assert by_id["GPU-1"].power_w == 300.0 and by_id["GPU-1"].utilization_ratio == 0.5
    assert by_id["GPU-2"].power_w == 100.0


def test_reasons_of_a_field_nobody_measured_are_joined_with_source_names() -> None:
    a = PartialSample(missing_reasons={"ttft": "first scrape: no window yet"})
    b = PartialSample(missing_reasons={"ttft": "query returned no series"})
    merged = merge_samples([("engines", a), ("prometheus", b)])
    assert merged.ttft == Percentiles()
    assert (
        merged.missing_reasons["ttft"]
        == "engines: first scrape: no window yet; prometheus: query returned no series"
    )


def test_pod_target_is_built_from_a_kubernetes_pod() -> None:
    pod = V1Pod(
        metadata=V1ObjectMeta(namespace="llm", name="chat-0", uid="u-1"),
        spec=V1PodSpec(containers=[], node_name="gpu-node-1"),
        status=V1PodStatus(
            pod_ip="10.1.2.3",
            container_statuses=[
                V1ContainerStatus(
                    name="vllm",
                    container_id="containerd://abc123",
                    image="i",
                    image_id="i",
                    ready=True,
                    restart_count=0,
                )
            ],
        ),
    )
    target = PodTarget.from_pod(pod, metrics_port=8000)
    assert target == PodTarget(
        namespace="llm",
        name="chat-0",
        ip="10.1.2.3",
        node="gpu-node-1",
        uid="u-1",
        metrics_url="http://10.1.2.3:8000/metrics",
        container_ids=("abc123",),
    )
    pending = V1Pod(metadata=V1ObjectMeta(namespace="llm", name="chat-1"), spec=None, status=V1PodStatus())
    assert PodTarget.from_pod(pending, metrics_port=8000).metrics_url is None


class SlowSource:
    name = "slow"
    capabilities = frozenset({"requests_running"})

    async def read(self, targets: Sequence[SourceTarget]) -> SourceReading:
        await asyncio.sleep(30)  # a source that hangs: the sampler's per-source timeout must cut it off
        raise AssertionError("not reached")

    async def aclose(self) -> None:
        pass


class DownSource:
    name = "down"
    capabilities = frozenset({"kv_cache_usage_ratio"})

    async def read(self, targets: Sequence[SourceTarget]) -> SourceReading:
        raise SourceUnavailable("connection refused")

    async def aclose(self) -> None:
        pass


class BrokenSource:
    name = "broken"
    capabilities = frozenset({"request_rate_per_s"})

    async def read(self, targets: Sequence[SourceTarget]) -> SourceReading:
        raise KeyError("bug")

    async def aclose(self) -> None:
        pass


async def test_read_all_marks_only_the_failing_sources_fields_missing(metrics_server) -> None:
    metrics_server.bodies["/engine"] = fixture_text("vllm_v0_opt125m_datadog.prom")
    metrics_server.bodies["/dcgm"] = fixture_text("dcgm-exporter_h100x8_k8s_sampled.prom")
    pod = PodTarget(
        "dynamo-workload", "vllm-agg-0-vllmdecodeworker-s65j5", metrics_url=metrics_server.url("/engine")
    )
    target = SourceTarget("dynamo-workload", "vllm-agg", pods=(pod,))
    sources = [
        EngineSource(),
        DcgmSource([metrics_server.url("/dcgm")]),
        NvmlSource(node="n"),
        SlowSource(),
        DownSource(),
        BrokenSource(),
    ]
    try:
        samples, stats = await read_all(sources, [target], timeout_s=0.5)
    finally:
        for s in sources:
            await s.aclose()
    merged = samples["dynamo-workload/vllm-agg"]
    assert merged.requests_waiting == 0.0
    assert [g.gpu_id for g in merged.gpus] == ["GPU-c4529c8d-69c4-b61d-e0bc-7b2460096005"]
    assert (
        merged.requests_running == 0.0
    )  # the engine measured it; the slow source's timeout does not hide it
    assert merged.kv_cache_usage_ratio == 0.0
    assert merged.request_rate_per_s is None
    assert "broken: KeyError" in merged.missing_reasons["request_rate_per_s"]
    assert "engines: first scrape" in merged.missing_reasons["request_rate_per_s"]
    kinds = dict(stats.failure_kinds())
    assert kinds == {"slow": "timeout", "down": "unavailable", "broken": "error"}
    assert len(stats.gpus["dcgm"]) == 8

    labels = {"source": "slow", "reason": "timeout"}
    metrics = SpokeMetrics()
    metrics.count_source_failures(stats.failure_kinds())
    assert metrics.registry.get_sample_value("fleetscale_spoke_source_failures_total", labels) == 1


async def test_timed_out_source_reason_names_source_and_timeout() -> None:
    samples, _ = await read_all([SlowSource()], [CHAT], timeout_s=0.2)
    assert samples["llm/chat"].missing_reasons["requests_running"] == "slow: timed out after 0.2s"


async def test_read_all_gives_every_target_an_entry_even_with_no_sources() -> None:
    samples, stats = await read_all([], [CHAT], timeout_s=0.2)
    assert samples["llm/chat"].requests_waiting is None and stats.outcomes == []
