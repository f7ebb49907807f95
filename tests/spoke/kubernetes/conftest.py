"""Fixtures for the Kubernetes backend's tests; the emulator and its helpers are in kube_emulator.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import kmock
import pytest
from kube_emulator import Cluster, Factory, install_gap_fillers
from kubernetes_asyncio.client import ApiClient, Configuration

from shared.messages import ScaleCommand, WorkloadKind, WorkloadRef
from spoke.backends.kubernetes import KubernetesBackend, KubernetesSettings


@pytest.fixture()
def kube(kmock: kmock.KubernetesEmulator) -> Cluster:
    for resource, kind in [
        ("v1/pods", "Pod"),
        ("v1/nodes", "Node"),
        ("v1/events", "Event"),
        ("apps/v1/deployments", "Deployment"),
        ("apps/v1/statefulsets", "StatefulSet"),
        ("apps/v1/replicasets", "ReplicaSet"),
        ("autoscaling/v2/horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    ]:
        kmock.resources[resource] = {"kind": kind, "namespaced": resource != "v1/nodes"}
    install_gap_fillers(kmock)
    return Cluster(kmock)


@pytest.fixture()
async def api(kmock: kmock.KubernetesEmulator) -> AsyncIterator[ApiClient]:
    client = ApiClient(Configuration(host=str(kmock.url).rstrip("/")))
    yield client
    await client.close()


@pytest.fixture()
async def make_backend(api: ApiClient) -> AsyncIterator[Factory]:
    """Build a backend over the emulator: ``make_backend(create_variants=False, pod_loads=...)``."""
    built: list[KubernetesBackend] = []

    def make(*, sampler: Any = None, pod_loads: Any = None, **settings: Any) -> KubernetesBackend:
        settings.setdefault("backoff_s", 0.5)
        backend = KubernetesBackend(api, KubernetesSettings(**settings), sampler=sampler, pod_loads=pod_loads)
        built.append(backend)
        return backend

    yield make
    for backend in built:
        await backend.aclose()


@pytest.fixture()
def backend(make_backend: Factory) -> KubernetesBackend:
    return make_backend()


@pytest.fixture()
def scale_command() -> Callable[..., ScaleCommand]:
    def make(
        name: str, replicas: dict[str, int], *, kind: str = "Deployment", namespace: str = "llm"
    ) -> ScaleCommand:
        now = datetime.now(UTC)
        return ScaleCommand(
            command_id=f"cmd-{name}",
            cluster_id="eu-1",
            workload=WorkloadRef(namespace=namespace, name=name, kind=WorkloadKind(kind)),
            replicas_by_gpu_type=replicas,
            policy_id="latency-slo",
            policy_revision=3,
            deadline=now + timedelta(minutes=1),
            issued_at=now,
        )

    return make
