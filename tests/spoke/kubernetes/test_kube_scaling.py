"""Applying commands over the wire: /scale for every kind, GPU-type variants, drain-aware scale-down."""

from __future__ import annotations

import kmock
import pytest
from kube_emulator import A100, H100, RESOURCE_OF_KIND, Cluster, Factory, refuse

from shared.messages import WorkloadRef
from spoke.backend import PermanentApplyError, TemporaryApplyError
from spoke.backends.kubernetes import KubernetesBackend
from spoke.backends.kubernetes.deletion_cost import DELETION_COST_ANNOTATION
from spoke.backends.kubernetes.settings import GPU_PRODUCT_LABEL

PATCH, POST = kmock.method.PATCH, kmock.method.POST


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "ReplicaSet"])
async def test_scale_goes_through_the_scale_subresource_for_every_kind(
    kind: str, kube: Cluster, backend: KubernetesBackend, scale_command
) -> None:
    resource = RESOURCE_OF_KIND[kind]
    kube.workload("llama", kind=kind, replicas=2)

    observed = await backend.apply(scale_command("llama", {"H100": 5}, kind=kind))

    assert observed == {"H100": 5}
    assert kube.get(resource, "llm", "llama")["spec"]["replicas"] == 5
    [patch] = kube.requests(PATCH, resource)
    assert patch.subresource == "scale"
    assert patch.url.path == f"/apis/apps/v1/namespaces/llm/{resource.split('/')[-1]}/llama/scale"
    assert patch.data["spec"] == {"replicas": 5}
    # The read resourceVersion is a precondition of the write.
    assert patch.data["metadata"]["resourceVersion"]


async def test_a_command_for_the_current_count_sends_no_patch(
    kube: Cluster, backend: KubernetesBackend, scale_command
) -> None:
    kube.workload("llama", replicas=2)

    assert await backend.apply(scale_command("llama", {"H100": 2})) == {"H100": 2}
    assert kube.requests(PATCH, "apps/v1/deployments") == []


async def test_a_missing_gpu_type_gets_a_pinned_variant_created_from_the_base(
    kube: Cluster, backend: KubernetesBackend, scale_command
) -> None:
    kube.workload("llama", replicas=2, gpus=2)
    kube.node("node-a100-1", product=A100)
    kube.node("node-a100-2", product="NVIDIA-A100-PCIE-40GB")
    kube.node("node-h100", product=H100)

    observed = await backend.apply(scale_command("llama", {"H100": 1, "A100": 3}))

    assert observed == {"H100": 1, "A100": 3}
    variant = kube.get("apps/v1/deployments", "llm", "llama-a100")
    marks = {"fleetscale.dev/variant-of": "llama", "fleetscale.dev/gpu-type": "A100"}
    assert variant["metadata"]["labels"].items() >= marks.items()
    assert variant["metadata"]["ownerReferences"][0]["uid"] == "uid-llama"
    assert variant["spec"]["replicas"] == 3
    assert variant["spec"]["selector"]["matchLabels"] == {"app": "llama"} | marks
    assert variant["spec"]["template"]["metadata"]["labels"] == {"app": "llama"} | marks
    pod_spec = variant["spec"]["template"]["spec"]
    assert GPU_PRODUCT_LABEL not in pod_spec.get("nodeSelector", {})
    [term] = pod_spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert term["matchExpressions"] == [
        {"key": GPU_PRODUCT_LABEL, "operator": "In", "values": ["NVIDIA-A100-PCIE-40GB", A100]}
    ]
    assert pod_spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert kube.get("apps/v1/deployments", "llm", "llama")["spec"]["replicas"] == 1

    # The next report shows both variants; the next command scales the variant via /scale.
    [state] = await backend.workloads()
    assert [(v.gpu_type, v.desired_replicas) for v in state.variants] == [("A100", 3), ("H100", 1)]
    assert await backend.apply(scale_command("llama", {"A100": 0})) == {"H100": 1, "A100": 0}
    assert [r.url.path.rsplit("/", 2)[-2:] for r in kube.requests(PATCH, "apps/v1/deployments")][-1] == [
        "llama-a100",
        "scale",
    ]


async def test_scale_ups_run_before_scale_downs(
    kube: Cluster, backend: KubernetesBackend, scale_command
) -> None:
    kube.workload("llama", replicas=4)
    kube.node("node-a100", product=A100)

    await backend.apply(scale_command("llama", {"H100": 0, "A100": 4}))

    writes = [
        r for r in kube.k if r.method in (PATCH, POST) and r.resource == kmock.resource("apps/v1/deployments")
    ]
    assert [(r.method, r.subresource) for r in writes] == [(POST, None), (PATCH, "scale")]


async def test_variant_creation_can_be_disabled(kube: Cluster, make_backend: Factory, scale_command) -> None:
    kube.workload("llama")
    kube.node("node-a100", product=A100)
    backend = make_backend(create_variants=False)

    with pytest.raises(PermanentApplyError, match="creating variants is disabled") as caught:
        await backend.apply(scale_command("llama", {"A100": 1}))

    assert caught.value.reason == "invalid"
    assert kube.requests(POST, "apps/v1/deployments") == []


async def test_a_gpu_type_no_node_has_is_refused_for_capacity(
    kube: Cluster, backend: KubernetesBackend, scale_command
) -> None:
    kube.workload("llama")
    kube.node("node-h100", product=H100)

    with pytest.raises(PermanentApplyError, match="no node in this cluster has GPU type L4") as caught:
        await backend.apply(scale_command("llama", {"L4": 2}))

    assert caught.value.reason == "capacity"


async def test_zero_replicas_for_a_type_without_variant_is_a_no_op(
    kube: Cluster, backend: KubernetesBackend, scale_command
) -> None:
    kube.workload("llama", replicas=2)

    assert await backend.apply(scale_command("llama", {"A100": 0})) == {"H100": 2}
    assert [r for r in kube.k if r.method in (PATCH, POST)] == []


async def test_an_unpinned_base_is_scaled_under_the_unpinned_type(
    kube: Cluster, backend: KubernetesBackend, scale_command
) -> None:
    kube.workload("llama", product=None, replicas=1)

    assert await backend.apply(scale_command("llama", {"any": 3})) == {"any": 3}


async def test_existing_object_with_the_variant_name_is_not_hijacked(
    kube: Cluster, backend: KubernetesBackend, scale_command
) -> None:
    kube.workload("llama")
    kube.workload("llama-a100", labels={"app": "something-else"})
    kube.node("node-a100", product=A100)

    with pytest.raises(PermanentApplyError, match="exists but is not the A100 variant") as caught:
        await backend.apply(scale_command("llama", {"A100": 1}))

    assert caught.value.reason == "conflict"


async def test_scale_down_marks_least_loaded_pods_cheapest_first(
    kube: Cluster, make_backend: Factory, scale_command
) -> None:
    kube.workload("llama", replicas=4)
    for name in ("busy", "idle", "mid", "unknown"):
        kube.pod(name, labels={"app": "llama"})
    kube.pod("other", labels={"app": "other"})
    seen = []

    async def loads(ref: WorkloadRef, pods):  # type: ignore[no-untyped-def]
        seen.append((ref.key, sorted(p.name for p in pods)))
        return {"busy": 12.0, "idle": 0.0, "mid": 3.5}

    backend = make_backend(pod_loads=loads)
    await backend.apply(scale_command("llama", {"H100": 2}))

    assert seen == [("llm/llama", ["busy", "idle", "mid", "unknown"])]
    annotation = {
        name: kube.get("v1/pods", "llm", name)["metadata"]
        .get("annotations", {})
        .get(DELETION_COST_ANNOTATION)
        for name in ("busy", "idle", "mid", "unknown", "other")
    }
    assert annotation == {"busy": "1200", "idle": "0", "mid": "350", "unknown": "350", "other": None}
    # Costs are written before the replicas go down.
    order = [(r.resource.plural, r.subresource) for r in kube.k if r.method == PATCH]
    assert order == [("pods", None)] * 4 + [("deployments", "scale")]


async def test_statefulsets_get_no_deletion_costs(
    kube: Cluster, make_backend: Factory, scale_command
) -> None:
    kube.workload("llama", kind="StatefulSet", replicas=2)
    kube.pod("llama-0", labels={"app": "llama"})

    async def loads(ref, pods):  # type: ignore[no-untyped-def]
        raise AssertionError("StatefulSets always remove the highest ordinal; loads are not needed")

    await make_backend(pod_loads=loads).apply(scale_command("llama", {"H100": 1}, kind="StatefulSet"))

    assert [r.resource.plural for r in kube.k if r.method == PATCH] == ["statefulsets"]


async def test_a_stale_resource_version_is_retried_then_reported_temporary(
    kube: Cluster, make_backend: Factory, scale_command
) -> None:
    kube.workload("llama", replicas=2)
    scale_patch = kube.k.override[PATCH, kmock.resource("apps/v1/deployments"), kmock.subresource("scale")]
    scale_patch[:2] << refuse(kube.k, 409, "the object has been modified; please apply your changes")
    backend = make_backend(conflict_retries=3)

    assert await backend.apply(scale_command("llama", {"H100": 3})) == {"H100": 3}
    assert len(kube.requests(PATCH, "apps/v1/deployments", "scale")) == 3


async def test_conflicts_on_every_attempt_give_a_temporary_error(
    kube: Cluster, make_backend: Factory, scale_command
) -> None:
    kube.workload("llama", replicas=2)
    kube.k.override[PATCH, kmock.subresource("scale")] << refuse(kube.k, 409, "the object has been modified")
    backend = make_backend(conflict_retries=2)

    with pytest.raises(TemporaryApplyError, match="409 on 2 attempts") as caught:
        await backend.apply(scale_command("llama", {"H100": 3}))

    assert caught.value.reason == "backend_error"
    assert caught.value.delay_s == 0.5
    assert kube.get("apps/v1/deployments", "llm", "llama")["spec"]["replicas"] == 2
