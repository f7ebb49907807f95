"""Per-container usage for vertical recommendations (issue 14): PodMetrics from the emulated
``metrics.k8s.io`` API, requests and limits from the pods' spec, through the spoke's real sampler."""

from __future__ import annotations

from typing import Any

import kmock
from kube_emulator import Cluster, Factory, status

from spoke.metrics import SpokeMetrics
from spoke.settings import SpokeSettings
from spoke.telemetry import Sampler, build_sources

METRICS = "metrics.k8s.io/v1beta1/pods"
GI = 2**30


def pod_metrics(kube: Cluster, name: str, containers: dict[str, dict[str, str]], namespace: str = "llm") -> None:
    kube.k.objects[METRICS, namespace, name] = {
        "apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
        "metadata": {"name": name, "namespace": namespace}, "timestamp": "2026-12-03T16:00:00Z", "window": "30s",
        "containers": [{"name": c, "usage": u} for c, u in containers.items()],
    }


def seed(kube: Cluster) -> None:
    kube.k.resources[METRICS] = {"kind": "PodMetrics", "namespaced": True}  # metrics-server is installed
    kube.node("node-h100")
    obj = kube.workload("llama", replicas=1)
    obj["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "4", "memory": "32Gi", "nvidia.com/gpu": "1"},
        "limits": {"cpu": "8", "memory": "48Gi", "nvidia.com/gpu": "1"}}
    kube.pod("llama-0", labels={"app": "llama"})
    pod = kube.k.objects["v1/pods", "llm", "llama-0"].raw
    pod["spec"]["containers"] = [
        {"name": "engine", "image": "vllm", "resources": {
            "requests": {"cpu": "4", "memory": "32Gi", "nvidia.com/gpu": "1"},
            "limits": {"cpu": "8", "memory": "48Gi", "nvidia.com/gpu": "1"}}},
        {"name": "proxy", "image": "envoy", "resources": {"requests": {"cpu": "250m"}}},
    ]
    kube.k.objects["v1/pods", "llm", "llama-0"] = pod


async def sample(make_backend: Factory, **settings: Any) -> Any:
    spoke = SpokeSettings(cluster_id="eu-1", **settings)
    sampler = Sampler(spoke, SpokeMetrics(), build_sources(spoke))
    backend = make_backend(sampler=sampler)
    sampler.attach(backend)
    [state] = [w for w in await backend.workloads() if w.ref.name == "llama"]
    try:
        return (await backend.samples([state]))["llm/llama"]
    finally:
        await sampler.aclose()


async def test_container_usage_comes_from_pod_metrics_with_the_specs_requests_and_limits(
    kube: Cluster, make_backend: Factory
) -> None:
    seed(kube)
    pod_metrics(kube, "llama-0", {"engine": {"cpu": "1500m", "memory": "6Gi"},
                                  "proxy": {"cpu": "12345678n", "memory": "40960Ki"}})
    pod_metrics(kube, "someone-else", {"x": {"cpu": "9", "memory": "9Gi"}})
    samples = await sample(make_backend)
    containers = {c.container: c for c in samples.containers}
    assert set(containers) == {"engine", "proxy"}
    engine, proxy = containers["engine"], containers["proxy"]
    assert engine.pod == "llama-0" and engine.gpu_type == "H100"
    assert engine.cpu_cores == 1.5 and engine.memory_bytes == 6 * GI
    assert engine.cpu_request_cores == 4.0 and engine.cpu_limit_cores == 8.0
    assert engine.memory_request_bytes == 32 * GI and engine.memory_limit_bytes == 48 * GI
    assert abs(proxy.cpu_cores - 0.012345678) < 1e-12 and proxy.memory_bytes == 40 * 2**20  # type: ignore[operator]
    assert proxy.cpu_request_cores == 0.25 and proxy.memory_limit_bytes is None  # not set is null, not zero
    assert engine.gpu_memory_bytes is None  # no dcgm-exporter here: not measured
    assert "containers" not in samples.missing_reasons
    [listed] = [r for r in kube.k if r.resource == kmock.resource(METRICS)]
    assert listed.namespace == "llm"


async def test_without_a_metrics_api_usage_is_missing_with_the_reason_and_the_spec_stays(
    kube: Cluster, make_backend: Factory
) -> None:
    seed(kube)
    kube.k.override[kmock.resource(METRICS)] << status(404, "the server could not find the requested resource")
    samples = await sample(make_backend)
    assert "metrics.k8s.io is not served" in samples.missing_reasons["containers"]
    engine = next(c for c in samples.containers if c.container == "engine")
    assert engine.cpu_cores is None and engine.memory_bytes is None  # missing, never zero
    assert engine.cpu_request_cores == 4.0  # what the spec says is still known


async def test_a_pod_not_scraped_yet_is_missing_not_zero(kube: Cluster, make_backend: Factory) -> None:
    seed(kube)
    samples = await sample(make_backend)
    assert "no PodMetrics" in samples.missing_reasons["containers"]
    assert all(c.cpu_cores is None for c in samples.containers)


async def test_a_malformed_quantity_costs_that_value_only(kube: Cluster, make_backend: Factory) -> None:
    seed(kube)
    pod_metrics(kube, "llama-0", {"engine": {"cpu": "lots", "memory": "6Gi"}})
    samples = await sample(make_backend)
    engine = next(c for c in samples.containers if c.container == "engine")
    assert engine.cpu_cores is None and engine.memory_bytes == 6 * GI


async def test_the_source_can_be_turned_off(kube: Cluster, make_backend: Factory) -> None:
    seed(kube)
    pod_metrics(kube, "llama-0", {"engine": {"cpu": "1", "memory": "6Gi"}})
    samples = await sample(make_backend, metrics_api_enabled=False)
    assert all(c.cpu_cores is None for c in samples.containers)
    assert not [r for r in kube.k if r.resource == kmock.resource(METRICS)]
