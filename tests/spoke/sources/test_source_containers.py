"""Container usage (protocol 1.3): quantities, dcgm-exporter's per-container GPU memory, merging and specs."""

from __future__ import annotations

import pytest

from shared.messages import ContainerUsage, Samples
from spoke.sources.base import PartialSample, PodTarget, SourceTarget, merge_samples
from spoke.sources.containers import ContainerSpec, PodContainers, parse_quantity, specs_of_pod, with_specs
from spoke.sources.dcgm import MIB, interpret
from spoke.sources.exposition import Exposition


@pytest.mark.parametrize(("text", "value"), [
    ("250m", 0.25), ("2", 2.0), ("1234567n", 0.001234567), ("1500u", 0.0015), ("1Ki", 1024.0),
    ("2Gi", 2.0 * 2**30), ("1.5G", 1.5e9), ("1e3", 1000.0), ("0.5", 0.5), (4, 4.0), (".5", 0.5),
])
def test_kubernetes_quantities_parse(text: object, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "lots", "1Xi", "-1", "1e999", "NaN", "inf", True, "1 Gi"])
def test_nonsense_quantities_are_refused(text: object) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)


def test_a_pods_spec_gives_each_container_its_requests_and_limits() -> None:
    spec = {"containers": [
        {"name": "engine", "resources": {"requests": {"cpu": "4", "memory": "32Gi"}, "limits": {"memory": "48Gi"}}},
        {"name": "proxy"},
        {"name": "bad", "resources": {"requests": {"cpu": "lots"}}},
    ]}
    engine, proxy, bad = specs_of_pod(spec)
    assert engine == ContainerSpec("engine", 4.0, None, 32 * 2**30, 48 * 2**30)
    assert proxy == ContainerSpec("proxy")
    assert bad.cpu_request_cores is None  # malformed is unknown, never zero


def _line(metric: str, pod: str, container: str, gpu: int, value: float) -> str:
    return (f'{metric}{{gpu="{gpu}",UUID="GPU-{gpu}",modelName="NVIDIA H100 80GB HBM3",Hostname="n1",'
            f'container="{container}",namespace="llm",pod="{pod}"}} {value}\n')


def test_dcgm_sums_each_containers_gpus_framebuffer() -> None:
    text = (_line("DCGM_FI_DEV_FB_USED", "chat-0", "engine", 0, 70000)
            + _line("DCGM_FI_DEV_FB_USED", "chat-0", "engine", 1, 60000)
            + _line("DCGM_FI_DEV_FB_USED", "chat-1", "engine", 2, 1000)
            + _line("DCGM_FI_DEV_GPU_UTIL", "chat-0", "engine", 3, 50))  # no FB_USED: not measured
    target = SourceTarget("llm", "chat", pods=(PodTarget("llm", "chat-0", gpu_type="H100"),
                                                PodTarget("llm", "chat-1", gpu_type="H100")))
    reading = interpret([Exposition.parse(text)], [target])
    containers = reading.samples["llm/chat"].values["containers"]
    assert isinstance(containers, tuple)
    by_pod = {c.pod: c for c in containers}
    assert by_pod["chat-0"].gpu_memory_bytes == (70000 + 60000) * MIB
    assert by_pod["chat-1"].gpu_memory_bytes == 1000 * MIB
    assert by_pod["chat-0"].gpu_type == "H100" and by_pod["chat-0"].cpu_cores is None


def test_containers_from_two_sources_merge_field_by_field() -> None:
    api, dcgm = PartialSample(), PartialSample()
    api.measured("containers", (ContainerUsage(pod="p", container="engine", cpu_cores=1.0, memory_bytes=5.0),))
    dcgm.measured("containers", (ContainerUsage(pod="p", container="engine", gpu_memory_bytes=7.0),
                                 ContainerUsage(pod="q", container="engine", gpu_memory_bytes=3.0)))
    merged = merge_samples([("metrics-api", api), ("dcgm", dcgm)])
    by_pod = {c.pod: c for c in merged.containers}
    assert (by_pod["p"].cpu_cores, by_pod["p"].memory_bytes, by_pod["p"].gpu_memory_bytes) == (1.0, 5.0, 7.0)
    assert by_pod["q"].cpu_cores is None and by_pod["q"].gpu_memory_bytes == 3.0


def test_specs_fill_in_measured_and_unmeasured_containers() -> None:
    samples = Samples(containers=(ContainerUsage(pod="p", container="engine", cpu_cores=1.0),
                                  ContainerUsage(pod="gone", container="engine", cpu_cores=2.0)),
                      missing_reasons={})
    out = with_specs(samples, [PodContainers("p", "H100", (ContainerSpec("engine", 4.0), ContainerSpec("proxy")))])
    by_key = {c.key: c for c in out.containers}
    assert by_key[("p", "engine")].cpu_cores == 1.0 and by_key[("p", "engine")].cpu_request_cores == 4.0
    assert by_key[("p", "engine")].gpu_type == "H100"
    assert by_key[("p", "proxy")].cpu_cores is None  # listed with its spec, usage not measured
    assert by_key[("gone", "engine")].cpu_cores == 2.0  # measured, pod gone since: kept as read


def test_the_wire_refuses_a_container_twice_and_unbounded_numbers() -> None:
    from pydantic import ValidationError
    one = ContainerUsage(pod="p", container="c")
    with pytest.raises(ValidationError, match="once"):
        Samples(containers=(one, one))
    for bad in ({"cpu_cores": 1e6}, {"memory_bytes": -1.0}, {"cpu_cores": "1"}, {"gpu_memory_bytes": float("inf")}):
        with pytest.raises(ValidationError):
            ContainerUsage.model_validate({"pod": "p", "container": "c", **bad})
