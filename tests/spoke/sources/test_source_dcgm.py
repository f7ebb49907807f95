"""dcgm-exporter scrapes become per-workload GPU samples; GPUs without pod labels stay unattributed."""

from __future__ import annotations

import pytest
from source_helpers import fixture_text

from spoke.sources.base import PodTarget, SourceTarget, SourceUnavailable
from spoke.sources.dcgm import MIB, NO_GPU_REASON, DcgmSource, interpret
from spoke.sources.exposition import Exposition

T4 = fixture_text("dcgm-exporter_t4_datadog.prom")
H100 = fixture_text("dcgm-exporter_h100x8_k8s_sampled.prom")
DECODE = SourceTarget(
    "dynamo-workload", "vllm-agg", pods=(PodTarget("dynamo-workload", "vllm-agg-0-vllmdecodeworker-s65j5"),)
)
OTHER = SourceTarget("dynamo-workload", "other", pods=(PodTarget("dynamo-workload", "other-0"),))
GPU0 = "GPU-c4529c8d-69c4-b61d-e0bc-7b2460096005"


def test_h100_gpu_with_pod_labels_is_attributed_to_its_workload_only() -> None:
    reading = interpret([Exposition.parse(H100)], [DECODE, OTHER])
    gpus = reading.samples["dynamo-workload/vllm-agg"].values["gpus"]
    assert isinstance(gpus, tuple)
    assert [g.gpu_id for g in gpus] == [GPU0]
    assert gpus[0].node == "gpu-node-1"
    assert gpus[0].power_w == pytest.approx(113.6, abs=0.05)
    # The sampled scrape has no FB_* series: memory stays missing, not zero.
    assert gpus[0].memory_used_bytes is None and gpus[0].memory_total_bytes is None
    assert reading.samples["dynamo-workload/other"].missing_reasons["gpus"] == NO_GPU_REASON


def test_h100_gpus_without_pod_labels_are_reported_unattributed() -> None:
    reading = interpret([Exposition.parse(H100)], [DECODE])
    unattributed = reading.unattributed_gpus
    assert len(unattributed) == 7
    assert GPU0 not in {g.sample.gpu_id for g in unattributed}
    assert {g.product for g in reading.gpus} == {"NVIDIA H100 80GB HBM3"}
    assert all(g.sample.utilization_ratio is not None for g in reading.gpus)


def test_t4_percent_utilisation_becomes_a_ratio_and_mib_become_bytes() -> None:
    reading = interpret([Exposition.parse(T4)], [])
    by_id = {g.sample.gpu_id: g for g in reading.gpus}
    first = by_id["GPU-20c56d28-0da5-6d26-a36a-e7af1ce2586e"].sample
    assert first.utilization_ratio == 0.0
    assert first.memory_used_bytes == 0.0
    assert first.memory_total_bytes == 15109 * MIB  # FB_USED 0 + FB_FREE 15109
    assert first.power_w == pytest.approx(8.969)
    # The second capture has FB_TOTAL but no FB_USED/FREE, and no utilisation or power.
    second = by_id["GPU-9ef1b6d0-3643-5dd7-b823-c0ec20dcf2d5"].sample
    assert second.memory_total_bytes == 15109 * MIB
    assert second.memory_used_bytes is None and second.utilization_ratio is None and second.power_w is None
    assert by_id["GPU-20c56d28-0da5-6d26-a36a-e7af1ce2586e"].sample.node == "424773df46e0"


def test_gr_engine_active_is_preferred_over_gpu_util_when_exported() -> None:
    line = next(x for x in H100.splitlines() if x.startswith('DCGM_FI_DEV_GPU_UTIL{gpu="0"'))
    active = (
        line.replace("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_PROF_GR_ENGINE_ACTIVE").rsplit(" ", 1)[0] + " 0.375"
    )
    reading = interpret([Exposition.parse(H100 + active + "\n")], [DECODE])
    gpus = reading.samples["dynamo-workload/vllm-agg"].values["gpus"]
    assert isinstance(gpus, tuple)
    assert gpus[0].utilization_ratio == 0.375


def test_lower_case_hostname_label_of_newer_exporters_is_read_too() -> None:
    lower = H100.replace('Hostname="', 'hostname="')
    assert "Hostname" not in lower
    reading = interpret([Exposition.parse(lower)], [DECODE])
    assert {g.sample.node for g in reading.gpus} == {"gpu-node-1"}


def test_gpu_without_uuid_is_identified_by_host_and_index() -> None:
    text = 'DCGM_FI_DEV_GPU_UTIL{gpu="3",hostname="n1",pod="p",namespace="ns"} 50\n'
    reading = interpret([Exposition.parse(text)], [SourceTarget("ns", "w", pods=(PodTarget("ns", "p"),))])
    gpus = reading.samples["ns/w"].values["gpus"]
    assert isinstance(gpus, tuple)
    assert gpus[0].gpu_id == "n1/3" and gpus[0].utilization_ratio == 0.5


async def test_read_scrapes_every_node_and_names_the_unreachable_ones(metrics_server) -> None:
    metrics_server.bodies["/node1"] = H100
    source = DcgmSource([metrics_server.url("/node1"), metrics_server.url("/node2")])
    try:
        reading = await source.read([DECODE, OTHER])
    finally:
        await source.aclose()
    assert "gpus" in reading.samples["dynamo-workload/vllm-agg"].values
    reason = reading.samples["dynamo-workload/other"].missing_reasons["gpus"]
    assert "unreachable" in reason and "node2" in reason
    assert len(reading.warnings) == 1


async def test_read_raises_unavailable_when_no_exporter_answers(metrics_server) -> None:
    source = DcgmSource([metrics_server.url("/nothing")])
    try:
        with pytest.raises(SourceUnavailable, match="HTTP 404"):
            await source.read([DECODE])
    finally:
        await source.aclose()


A800 = fixture_text("dcgm-exporter_a800_mig_excerpt.prom")
A800_GPU0 = "GPU-1f027ee8-6e1e-2b8c-0108-3d370e5f0418"


def test_a800_error_lines_cost_their_own_value_only_and_are_counted() -> None:
    expo = Exposition.parse(A800)
    # Ten "ERROR - FAILED TO CONVERT TO STRING" values (vGPU per-process utilisation) are dropped.
    assert expo.rejected == 10
    assert "FAILED TO CONVERT TO STRING" in expo.rejected_example
    reading = interpret([expo], [])
    assert reading.rejected_samples == 10
    assert any("10 dcgm-exporter sample line(s) did not parse" in w for w in reading.warnings)
    assert len(reading.gpus) == 10  # 3 MIG instances of GPU 0 and 7 whole GPUs: nothing lost


def test_a800_mig_instances_have_their_own_ids_and_no_copied_whole_gpu_power() -> None:
    by_id = {g.sample.gpu_id: g.sample for g in interpret([Exposition.parse(A800)], []).gpus}
    instances = [f"{A800_GPU0}/{gi}" for gi in (3, 5, 6)]
    assert all(i in by_id for i in instances)
    # dcgm-exporter prints the whole GPU's 78.174 W on every instance: not an instance's power.
    assert all(by_id[i].power_w is None for i in instances)
    # Instances are measured by GR_ENGINE_ACTIVE (GPU_UTIL is not exported for MIG).
    assert all(by_id[i].utilization_ratio == 0.0 for i in instances)
    whole = by_id["GPU-9e5b8fec-61bf-5124-a0a9-079af1b65cc6"]
    assert whole.power_w == pytest.approx(55.942) and whole.node == "msxf-hpc-64-35-ai"


async def test_read_counts_rejected_lines_from_a_scrape_with_error_values(metrics_server) -> None:
    metrics_server.bodies["/metrics"] = A800
    source = DcgmSource([metrics_server.url("/metrics")])
    reading = await source.read([])
    assert reading.rejected_samples == 10
    await source.aclose()


async def test_discovered_endpoints_are_scraped_each_read(metrics_server) -> None:
    metrics_server.bodies["/node-a"] = H100
    metrics_server.bodies["/node-b"] = T4
    found = [[metrics_server.url("/node-a")], [metrics_server.url("/node-a"), metrics_server.url("/node-b")]]

    async def discover() -> list[str]:
        return found.pop(0)

    source = DcgmSource(discover=discover)
    first = await source.read([DECODE])
    second = await source.read([DECODE])
    assert len(first.gpus) == 8
    assert len(second.gpus) == 8 + len(interpret([Exposition.parse(T4)], []).gpus)
    await source.aclose()


async def test_discovery_that_finds_nothing_is_unavailable_with_reason() -> None:
    async def nothing() -> list[str]:
        return []

    with pytest.raises(SourceUnavailable, match="none discovered"):
        await DcgmSource(discover=nothing).read([DECODE])
