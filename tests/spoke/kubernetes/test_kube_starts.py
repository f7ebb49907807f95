"""Start times over the wire: pod conditions and the kubelet's image events, read through the API.

The event messages are the kubelet's own wording (``pkg/kubelet/images/image_manager.go``), as
``kubectl describe`` shows them on real clusters: "Successfully pulled image ... in 1m2.5s
(1m2.5s including waiting)", and "Container image ... already present on machine" (since 1.33
prefixed with ``spec.containers{name}:`` and, with image pull credentials verification, followed by
"and can be accessed by the pod").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import kmock
import pytest
from kube_emulator import A100, Cluster, Factory, status

from shared.messages import StartTier, WorkloadKind
from spoke.backends.kubernetes import KubernetesBackend
from spoke.backends.kubernetes.pod_starts import classify
from spoke.backends.kubernetes.variants import build_variant

NOW = datetime.now(UTC)


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def start_pod(kube: Cluster, name: str, *, app: str = "llama", scheduled_ago_s: float, ready_after_s: float | None,
              namespace: str = "llm") -> None:
    """A pod of ``app`` scheduled ``scheduled_ago_s`` ago and ready ``ready_after_s`` later (None: not yet)."""
    scheduled = NOW - timedelta(seconds=scheduled_ago_s)
    conditions: list[dict[str, Any]] = [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp(scheduled)},
    ]
    if ready_after_s is None:
        conditions.append({"type": "Ready", "status": "False", "lastTransitionTime": stamp(scheduled)})
    else:
        ready = scheduled + timedelta(seconds=ready_after_s)
        conditions.append({"type": "Ready", "status": "True", "lastTransitionTime": stamp(ready)})
    kube.pod(name, namespace=namespace, labels={"app": app})
    pod = kube.k.objects["v1/pods", namespace, name].raw
    pod["metadata"]["uid"] = f"uid-{name}"
    pod["status"]["conditions"] = conditions
    kube.k.objects["v1/pods", namespace, name] = pod


def event(kube: Cluster, pod: str, reason: str, message: str, *, namespace: str = "llm") -> None:
    name = f"{pod}.{reason.lower()}{len(kube.k.objects)}"
    kube.k.objects["v1/events", namespace, name] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {"kind": "Pod", "name": pod, "namespace": namespace, "uid": f"uid-{pod}",
                           "fieldPath": "spec.containers{engine}"},
        "reason": reason,
        "message": message,
        "type": "Normal",
        "source": {"component": "kubelet"},
    }


def pulled_fresh(kube: Cluster, pod: str) -> None:
    event(kube, pod, "Pulling", 'Pulling image "vllm/vllm-openai:v0.6"')
    event(kube, pod, "Pulled", 'Successfully pulled image "vllm/vllm-openai:v0.6" in 1m2.5s (1m2.5s including '
                               'waiting). Image size: 9876543210 bytes.')


def already_present(kube: Cluster, pod: str) -> None:
    event(kube, pod, "Pulled", 'spec.containers{engine}: Container image "vllm/vllm-openai:v0.6" already present '
                               'on machine and can be accessed by the pod')


def starts_of(states: Any, key: str = "llm/llama") -> dict[StartTier, tuple[tuple[float, ...], int]]:
    state = next(s for s in states if s.key == key)
    return {s.tier: (s.recent_s, s.count) for v in state.variants for s in v.starts}


async def test_each_new_pod_is_measured_once_from_scheduled_to_ready_and_classified_by_its_image_events(
    kube: Cluster, backend: KubernetesBackend
) -> None:
    kube.workload("llama", replicas=5)
    start_pod(kube, "cold", scheduled_ago_s=600, ready_after_s=240)
    pulled_fresh(kube, "cold")
    start_pod(kube, "cached", scheduled_ago_s=300, ready_after_s=95)
    already_present(kube, "cached")
    start_pod(kube, "no-events", scheduled_ago_s=200, ready_after_s=80)  # events expired: not classified
    start_pod(kube, "old", scheduled_ago_s=3 * 3600, ready_after_s=100)  # ready before the events' lifetime
    already_present(kube, "old")
    start_pod(kube, "starting", scheduled_ago_s=60, ready_after_s=None)
    event(kube, "starting", "Pulling", 'Pulling image "vllm/vllm-openai:v0.6"')

    first = await backend.workloads()

    assert starts_of(first) == {StartTier.COLD: ((240.0,), 1), StartTier.CACHED: ((95.0,), 1)}
    assert backend._pod_starts.unclassified == 1
    # Seen again, nothing is counted twice.
    assert starts_of(await backend.workloads()) == starts_of(first)

    # The starting pod becomes ready: measured on the next report.
    start_pod(kube, "starting", scheduled_ago_s=60, ready_after_s=50)
    assert starts_of(await backend.workloads()) == {
        StartTier.COLD: ((240.0, 50.0), 2), StartTier.CACHED: ((95.0,), 1)}


async def test_starts_are_kept_per_gpu_type_variant(kube: Cluster, backend: KubernetesBackend) -> None:
    base = kube.workload("llama", replicas=1)
    kube.k.objects["apps/v1/deployments", "llm", "llama-a100"] = build_variant(
        base, WorkloadKind.DEPLOYMENT, "A100", [A100], replicas=1)
    start_pod(kube, "h100-pod", scheduled_ago_s=300, ready_after_s=120)
    pulled_fresh(kube, "h100-pod")
    start_pod(kube, "a100-pod", scheduled_ago_s=300, ready_after_s=70)
    pod = kube.k.objects["v1/pods", "llm", "a100-pod"].raw
    pod["metadata"]["labels"].update({"fleetscale.dev/variant-of": "llama", "fleetscale.dev/gpu-type": "A100"})
    kube.k.objects["v1/pods", "llm", "a100-pod"] = pod
    pulled_fresh(kube, "a100-pod")

    state = next(s for s in await backend.workloads() if s.key == "llm/llama")

    by_type = {v.gpu_type: [(s.tier, s.recent_s) for s in v.starts] for v in state.variants}
    assert by_type == {"A100": [(StartTier.COLD, (70.0,))], "H100": [(StartTier.COLD, (120.0,))]}


@pytest.mark.parametrize(("resource", "code", "why"), [
    ("v1/events", 403, "events is forbidden"),  # refused once, as until the missing RBAC rule is granted
    ("v1/pods", 503, "etcd is slow"),
])
async def test_what_cannot_be_read_costs_the_measurement_not_the_report(
    kube: Cluster, backend: KubernetesBackend, resource: str, code: int, why: str
) -> None:
    kube.workload("llama", replicas=1)
    start_pod(kube, "cold", scheduled_ago_s=600, ready_after_s=240)
    pulled_fresh(kube, "cold")
    kube.k.override[kmock.method.GET, kmock.resource(resource)][:1] << status(code, why)

    states = await backend.workloads()

    assert [s.key for s in states] == ["llm/llama"] and starts_of(states) == {}
    # Once it can be read, the pod is measured after all (it was not marked as done).
    assert starts_of(await backend.workloads()) == {StartTier.COLD: ((240.0,), 1)}


async def test_measuring_starts_can_be_switched_off(kube: Cluster, make_backend: Factory) -> None:
    kube.workload("llama", replicas=1)
    start_pod(kube, "cold", scheduled_ago_s=600, ready_after_s=240)
    pulled_fresh(kube, "cold")
    backend = make_backend(measure_starts=False)

    assert starts_of(await backend.workloads()) == {}
    assert not kube.requests(kmock.method.GET, "v1/events")


def test_a_pull_of_any_container_makes_the_start_cold() -> None:
    sidecar_cached = {"reason": "Pulled", "message": 'Container image "docker.io/istio/proxyv2:1.16.0" already '
                                                     'present on machine'}
    engine_pulled = {"reason": "Pulled", "message": 'Successfully pulled image "vllm/vllm-openai:v0.6" in 6.94s '
                                                    '(6.94s including waiting)'}
    assert classify([sidecar_cached, engine_pulled]) is StartTier.COLD
    assert classify([sidecar_cached]) is StartTier.CACHED
    assert classify([{"reason": "Scheduled", "message": "Successfully assigned llm/x to node-1"}]) is None
