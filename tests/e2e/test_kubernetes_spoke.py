"""The real spoke path on an emulated cluster: kmock's Kubernetes API over HTTP, the vLLM and
dcgm-exporter scrapes (real fixtures) served locally, real NATS, the real hub.

The spoke discovers the labelled Deployment, reads its pods, scrapes the engine and DCGM, reports
normalised telemetry; the hub's policy raises the replica floor, and the spoke applies the command
through the /scale subresource and records an Event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import kmock
import pytest
from aiohttp import web
from kubernetes_asyncio.client import ApiClient, Configuration

from shared.web import serve
from spoke.agent import run_agent
from spoke.backends.kubernetes import KubernetesBackend, KubernetesSettings
from spoke.metrics import SpokeMetrics
from spoke.settings import SpokeSettings
from spoke.telemetry import Sampler, build_sources
from tests.e2e.conftest import eventually, running_hub, write_policies
from tests.spoke.kubernetes.kube_emulator import Cluster, install_gap_fillers

pytestmark = pytest.mark.nats

FIXTURES = Path(__file__).parents[1] / "fixtures"
NS, NAME = "dynamo-workload", "vllm-agg"
ATTRIBUTED_POD = "vllm-agg-0-vllmdecodeworker-s65j5"  # carries GPU 0 in the DCGM fixture


@pytest.fixture
async def exporters() -> AsyncIterator[int]:
    """One local server standing in for the pods' vLLM /metrics and for dcgm-exporter."""
    vllm = (FIXTURES / "vllm_mixed_v0_v1_datadog.prom").read_bytes()
    dcgm = (FIXTURES / "dcgm-exporter_h100x8_k8s_sampled.prom").read_bytes()

    async def engine(_: web.Request) -> web.Response:
        return web.Response(body=vllm, content_type="text/plain")

    async def exporter(_: web.Request) -> web.Response:
        return web.Response(body=dcgm, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", engine)
    app.router.add_get("/dcgm", exporter)
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(app, "127.0.0.1", 0, on_bound=bound.set_result))
    done, _ = await asyncio.wait([task, bound], timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # it failed to start: say why
    yield bound.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def seed(kmock: kmock.KubernetesEmulator) -> Cluster:
    for resource, kind in [("v1/pods", "Pod"), ("v1/nodes", "Node"), ("v1/events", "Event"),
                           ("apps/v1/deployments", "Deployment"), ("apps/v1/statefulsets", "StatefulSet"),
                           ("apps/v1/replicasets", "ReplicaSet"),
                           ("autoscaling/v2/horizontalpodautoscalers", "HorizontalPodAutoscaler")]:
        kmock.resources[resource] = {"kind": kind, "namespaced": resource != "v1/nodes"}
    install_gap_fillers(kmock)
    cluster = Cluster(kmock)
    cluster.node("gpu-node-1", product="NVIDIA-H100-80GB-HBM3", gpus=8)
    cluster.workload(NAME, namespace=NS, replicas=2, product="NVIDIA-H100-80GB-HBM3")
    for pod in (ATTRIBUTED_POD, "vllm-agg-0-vllmdecodeworker-x7k2p"):
        cluster.pod(pod, namespace=NS, labels={"app": NAME}, node="gpu-node-1", ip="127.0.0.1")
    return cluster


async def test_spoke_on_emulated_cluster_reports_real_scrapes_and_scales_through_the_api(
    kmock: kmock.KubernetesEmulator, exporters: int, nats_server, tmp_path: Path
) -> None:
    cluster = seed(kmock)
    policies = write_policies(tmp_path / "p.yaml", {
        "id": "vllm-agg", "targets": {"workloads": [{"namespace": NS, "name": NAME}]},
        "bounds": {"min_replicas": 3, "max_replicas": 6}, "signals": [{"metric": "queue_per_replica", "target": 5}],
    })
    settings = SpokeSettings(
        # 1 s: the reporter reads the cluster within 0.8 of it; at 0.3 s (0.24 s to read) a loaded
        # machine timed out every read of the emulator and the scrapes.
        cluster_id="kube-east", backend="kubernetes", nats_url=nats_server.url, report_interval_s=1.0,
        health_host="127.0.0.1", health_port=0, engine_metrics_port=exporters,
        dcgm_endpoints=[f"http://127.0.0.1:{exporters}/dcgm"], kube_namespaces=[NS], shutdown_timeout_s=3,
    )
    metrics = SpokeMetrics()
    sampler = Sampler(settings, metrics, build_sources(settings))
    api = ApiClient(Configuration(host=str(kmock.url).rstrip("/")))
    backend = KubernetesBackend(api, KubernetesSettings(namespaces=(NS,), backoff_s=0.2), sampler=sampler)
    sampler.lister = backend
    stop = asyncio.Event()
    async with running_hub(nats_server.url, policy_file=policies) as hub:
        spoke_task = asyncio.create_task(run_agent(settings, backend, stop=stop, metrics=metrics))
        try:
            def report():  # type: ignore[no-untyped-def]
                c = hub.state.snapshot().clusters.get("kube-east")
                return c.report if c and c.report.sequence >= 2 else None

            r = await eventually(report, timeout_s=20)
            (node,) = r.inventory
            assert (node.gpu_type, node.capacity_gpus, node.free_gpus) == ("H100", 8, 6)  # 2 pods × 1 GPU
            (w,) = r.workloads
            assert w.workload.key == f"{NS}/{NAME}" and w.desired_replicas >= 2
            s = w.samples
            # The engine exports these, at 0: measured zeros, not missing values.
            assert s.requests_waiting == 0.0 and s.requests_running == 0.0 and s.kv_cache_usage_ratio == 0.0
            # No request finished between scrapes: latency is missing, and says why.
            assert s.ttft.p95_s is None and "ttft" in " ".join(s.missing_reasons)
            # DCGM attributes GPU 0 to our pod, with its real power reading.
            gpu = next(g for g in s.gpus if g.power_w is not None)
            assert gpu.gpu_id == "GPU-c4529c8d-69c4-b61d-e0bc-7b2460096005" and gpu.power_w == pytest.approx(113.611)

            await eventually(lambda: cluster.get("apps/v1/deployments", NS, NAME)["spec"]["replicas"] == 3,
                             timeout_s=20)
            patches = cluster.requests(kmock.method.PATCH, "apps/v1/deployments", "scale")
            assert patches and patches[-1].data["spec"]["replicas"] == 3

            def scaled_event() -> bool:
                return any(e.raw.get("reason") == "FleetscaleScaled" for e in kmock.objects.values()
                           if (e.raw.get("kind") == "Event"))

            await eventually(scaled_event, timeout_s=10)
        finally:
            stop.set()
            await asyncio.wait_for(spoke_task, 10)
            await backend.aclose()
            await sampler.aclose()
            await api.close()
