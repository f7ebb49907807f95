"""dcgm-exporter pods are found through the Kubernetes API and each one is scraped (issue 12).

A Service in front of the DaemonSet would answer from a random node per read; static per-node
URLs go stale as node pools scale. Here the exporter pods live in the emulated API server and one
of them really serves the H100 fixture scrape over HTTP on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
from aiohttp import web
from kube_emulator import Cluster

from spoke.backends.kubernetes import KubernetesBackend
from spoke.backends.kubernetes.exporters import ExporterPods
from spoke.sources.base import PodTarget, SourceTarget
from spoke.sources.dcgm import DcgmSource

H100 = (Path(__file__).resolve().parents[2] / "fixtures" / "dcgm-exporter_h100x8_k8s_sampled.prom").read_text()
SELECTOR = "app.kubernetes.io/name=dcgm-exporter"
EXPORTER = {"app.kubernetes.io/name": "dcgm-exporter"}


@pytest.fixture
async def exporter_port() -> AsyncIterator[int]:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=H100, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield runner.addresses[0][1]
    await runner.cleanup()


def exporters(kube: Cluster) -> None:
    kube.pod("dcgm-exporter-a", namespace="gpu-operator", labels=EXPORTER, node="node-a", ip="127.0.0.1")
    kube.pod("dcgm-exporter-b", namespace="gpu-operator", labels=EXPORTER, node="node-b", ip="10.0.0.9",
             phase="Pending")
    kube.pod("vllm-0", namespace="gpu-operator", labels={"app": "vllm"}, node="node-a", ip="10.0.0.5")


async def test_running_exporter_pods_are_listed_by_label_one_url_each(
    kube: Cluster, backend: KubernetesBackend
) -> None:
    exporters(kube)
    kube.pod("dcgm-exporter-c", namespace="monitoring", labels=EXPORTER, node="node-c", ip="fd00::7")
    urls = await backend.exporter_urls(ExporterPods(SELECTOR))
    # The pending pod has no endpoint yet; the engine pod does not match; IPv6 is bracketed.
    assert urls == ["http://127.0.0.1:9400/metrics", "http://[fd00::7]:9400/metrics"]
    scoped = await backend.exporter_urls(ExporterPods(SELECTOR, namespace="gpu-operator", port=9500, path="/m"))
    assert scoped == ["http://127.0.0.1:9500/m"]


async def test_dcgm_source_scrapes_the_discovered_pods(
    kube: Cluster, backend: KubernetesBackend, exporter_port: int
) -> None:
    exporters(kube)
    discover = partial(backend.exporter_urls, ExporterPods(SELECTOR, port=exporter_port))
    source = DcgmSource(discover=discover)
    decode = SourceTarget(
        "dynamo-workload", "vllm-agg",
        pods=(PodTarget("dynamo-workload", "vllm-agg-0-vllmdecodeworker-s65j5"),),
    )
    reading = await source.read([decode])
    gpus = reading.samples["dynamo-workload/vllm-agg"].values["gpus"]
    assert isinstance(gpus, tuple) and len(gpus) == 1
    assert len(reading.gpus) == 8
    # A node added later is in the next read's endpoints without any configuration change.
    kube.pod("dcgm-exporter-d", namespace="gpu-operator", labels=EXPORTER, node="node-d", ip="10.0.0.10")
    assert await source._urls() == (
        f"http://127.0.0.1:{exporter_port}/metrics",
        f"http://10.0.0.10:{exporter_port}/metrics",
    )
    await source.aclose()
