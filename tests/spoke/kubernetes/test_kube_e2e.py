"""Against a real cluster (kind/k3d/any), opt-in: ``FLEETSCALE_E2E_KUBECONFIG=~/.kube/config pytest -m e2e``.

The emulator proves the wire contract; this proves the API server agrees: strategic-merge patches,
the resourceVersion precondition on ``/scale``, server-side defaulting, Events, HPA lookups and RBAC
of the current context. Each run works in a fresh namespace and deletes it afterwards. The pods run
``pause`` and ask for no GPUs, so the workload is "unpinned" (see docs/kubernetes.md).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from shared.messages import ResultReason, ResultStatus
from spoke.backend import PermanentApplyError
from spoke.backends.kubernetes import KubernetesBackend, KubernetesSettings

KUBECONFIG = os.environ.get("FLEETSCALE_E2E_KUBECONFIG")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not KUBECONFIG, reason="set FLEETSCALE_E2E_KUBECONFIG to run against a real cluster"),
]


@pytest.fixture()
async def namespace() -> AsyncIterator[str]:
    name = f"fleetscale-e2e-{uuid.uuid4().hex[:8]}"
    api = await k8s_config.new_client_from_config(config_file=KUBECONFIG)
    core = k8s.CoreV1Api(api)
    await core.create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        await core.delete_namespace(name)
        await api.close()


@pytest.fixture()
async def backend(namespace: str) -> AsyncIterator[KubernetesBackend]:
    backend = await KubernetesBackend.from_config(
        KubernetesSettings(namespaces=(namespace,)), in_cluster=False, kubeconfig=KUBECONFIG
    )
    yield backend
    await backend.aclose()


def _deployment(name: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"fleetscale.dev/managed": "true"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.9"}]},
            },
        },
    }


async def test_discover_scale_and_record_on_a_real_cluster(
    namespace: str, backend: KubernetesBackend, scale_command
) -> None:
    apps = k8s.AppsV1Api(backend.api)
    await apps.create_namespaced_deployment(namespace, _deployment("e2e"))

    [state] = await backend.workloads()
    assert (state.key, state.desired_replicas, state.variants[0].gpu_type) == (f"{namespace}/e2e", 1, "any")

    command = scale_command("e2e", {"any": 2}, namespace=namespace)
    assert await backend.apply(command) == {"any": 2}
    assert (await apps.read_namespaced_deployment("e2e", namespace)).spec.replicas == 2
    assert await backend.apply(command) == {"any": 2}  # re-delivery is harmless
    assert await backend.record_outcome(command, ResultStatus.APPLIED, ResultReason.APPLIED, "e2e")

    events = await k8s.CoreV1Api(backend.api).list_namespaced_event(namespace)
    assert any(e.reason == "FleetscaleScaled" and e.involved_object.name == "e2e" for e in events.items)


async def test_an_hpa_blocks_scaling_on_a_real_cluster(
    namespace: str, backend: KubernetesBackend, scale_command
) -> None:
    api = backend.api
    await k8s.AppsV1Api(api).create_namespaced_deployment(namespace, _deployment("e2e-hpa"))
    await k8s.AutoscalingV2Api(api).create_namespaced_horizontal_pod_autoscaler(
        namespace,
        {
            "metadata": {"name": "e2e-hpa"},
            "spec": {
                "maxReplicas": 3,
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "e2e-hpa"},
            },
        },
    )

    with pytest.raises(PermanentApplyError, match="HorizontalPodAutoscaler"):
        await backend.apply(scale_command("e2e-hpa", {"any": 2}, namespace=namespace))
