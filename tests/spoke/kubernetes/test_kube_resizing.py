"""Applying vertical recommendations (issue 14): a command's resources patched into the pod template,
against the emulated API server: opt-in, one rollout at a time, never below the floor, an Event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import kmock
import pytest
from kube_emulator import Cluster, Factory

from shared.messages import (
    ContainerResources,
    ResultReason,
    ResultStatus,
    ScaleCommand,
    WorkloadKind,
    WorkloadRef,
)
from spoke.backend import PermanentApplyError, TemporaryApplyError
from spoke.backends.kubernetes.resizing import cpu_quantity, memory_quantity, patched_containers

GI = 2.0**30
DEPLOYMENTS = "apps/v1/deployments"


def resize_command(*changes: ContainerResources, replicas: dict[str, int] | None = None) -> ScaleCommand:
    now = datetime.now(UTC)
    return ScaleCommand(
        command_id="cmd-resize", cluster_id="eu-1", workload=WorkloadRef(namespace="llm", name="llama",
                                                                         kind=WorkloadKind.DEPLOYMENT),
        replicas_by_gpu_type=replicas or {}, policy_id="latency-slo", policy_revision=3, issued_at=now,
        deadline=now + timedelta(minutes=1), resources=changes)


ENGINE = ContainerResources(gpu_type="H100", container="engine", cpu_request_cores=1.2, cpu_limit_cores=2.4,
                            memory_request_bytes=8 * GI, memory_limit_bytes=12 * GI, memory_floor_bytes=7 * GI)


def seed(kube: Cluster, **status: int) -> None:
    kube.node("node-h100")
    obj = kube.workload("llama", replicas=2)
    obj["metadata"]["generation"] = 4
    obj["status"] |= {"observedGeneration": 4, "updatedReplicas": 2} | status
    obj["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "1"},
        "limits": {"cpu": "16", "memory": "96Gi", "nvidia.com/gpu": "1"}}
    kube.k.objects[DEPLOYMENTS, "llm", "llama"] = obj


async def test_resources_are_patched_into_the_template_and_told_in_an_event(
    kube: Cluster, make_backend: Factory
) -> None:
    seed(kube)
    backend = make_backend(apply_resources=True)
    await backend.workloads()
    command = resize_command(ENGINE)
    observed = await backend.apply(command)
    assert observed == {"H100": 2}  # replicas untouched: no type in the map
    containers = kube.get(DEPLOYMENTS, "llm", "llama")["spec"]["template"]["spec"]["containers"]
    engine, sidecar = containers
    assert engine["resources"]["requests"] == {"cpu": "1200m", "memory": str(8 * 2**30), "nvidia.com/gpu": "1"}
    assert engine["resources"]["limits"] == {"cpu": "2400m", "memory": str(12 * 2**30), "nvidia.com/gpu": "1"}
    assert sidecar == {"name": "sidecar", "image": "busybox"}  # the other container as it was
    [patch] = kube.requests(kmock.method.PATCH, DEPLOYMENTS)
    assert set(patch.data["spec"]["template"]["spec"]) == {"containers"}  # only the containers
    assert await backend.record_outcome(command, ResultStatus.APPLIED, ResultReason.APPLIED)
    [event] = [o.raw for k, o in kube.k.objects.items() if k[0] == kmock.resource("v1/events")]
    assert event["reason"] == "FleetscaleScaled"
    assert f"resources engine@H100 cpu 1200m/2400m, memory {8 * 2**30}/{12 * 2**30}" in event["message"]


async def test_applying_again_what_the_template_says_patches_nothing(kube: Cluster, make_backend: Factory) -> None:
    seed(kube)
    backend = make_backend(apply_resources=True)
    await backend.apply(resize_command(ENGINE))
    await backend.apply(resize_command(ENGINE))
    assert len(kube.requests(kmock.method.PATCH, DEPLOYMENTS)) == 1


@pytest.mark.parametrize("status", [{"observedGeneration": 3}, {"updatedReplicas": 1}])
async def test_an_object_mid_rollout_is_not_patched_again(
    kube: Cluster, make_backend: Factory, status: dict[str, int]
) -> None:
    seed(kube, **status)
    backend = make_backend(apply_resources=True)
    with pytest.raises(TemporaryApplyError, match="mid-rollout"):
        await backend.apply(resize_command(ENGINE))
    assert not kube.requests(kmock.method.PATCH, DEPLOYMENTS)


async def test_a_spoke_that_does_not_apply_resources_refuses_and_patches_nothing(
    kube: Cluster, make_backend: Factory
) -> None:
    seed(kube)
    backend = make_backend()  # apply_resources defaults to off
    with pytest.raises(PermanentApplyError, match="SPOKE_KUBE_APPLY_RESOURCES") as refused:
        await backend.apply(resize_command(ENGINE, replicas={"H100": 3}))
    assert refused.value.reason is ResultReason.FORBIDDEN
    assert not kube.requests(kmock.method.PATCH, DEPLOYMENTS)
    assert not kube.requests(kmock.method.PATCH, DEPLOYMENTS, "scale")  # nothing half done


async def test_unknown_containers_and_gpu_types_are_invalid(kube: Cluster, make_backend: Factory) -> None:
    seed(kube)
    backend = make_backend(apply_resources=True)
    with pytest.raises(PermanentApplyError, match="no container 'vllm'"):
        await backend.apply(resize_command(ENGINE.model_copy(update={"container": "vllm"})))
    with pytest.raises(PermanentApplyError, match="no object for GPU type"):
        await backend.apply(resize_command(ENGINE.model_copy(update={"gpu_type": "L4"})))


def test_a_template_limit_below_the_floor_is_refused_and_an_old_limit_is_raised_to_a_new_request() -> None:
    template = {"containers": [{"name": "engine", "resources": {"limits": {"memory": "4Gi", "cpu": "1"}}}]}
    raise_only = ContainerResources(gpu_type="H100", container="engine", cpu_request_cores=2.0,
                                    memory_request_bytes=3 * GI, memory_floor_bytes=2 * GI)
    [engine] = patched_containers(template, [raise_only])
    assert engine["resources"]["limits"]["cpu"] == "2000m"  # the old 1-core limit was below the new request
    # A message the wire would refuse (built around its validation): the spoke checks what it writes.
    below = ContainerResources.model_construct(gpu_type="H100", container="engine", memory_request_bytes=3 * GI,
                                               memory_limit_bytes=None, cpu_request_cores=None, cpu_limit_cores=None,
                                               memory_floor_bytes=5 * GI)
    with pytest.raises(PermanentApplyError, match="below the observed peak"):
        patched_containers(template, [below])


def test_quantities_round_up() -> None:
    assert cpu_quantity(1.2341) == "1235m" and cpu_quantity(0.0) == "1m" and cpu_quantity(2.0) == "2000m"
    assert memory_quantity(1.5) == "2" and memory_quantity(8 * GI) == str(8 * 2**30)


def test_the_wire_refuses_a_change_below_its_floor() -> None:
    from pydantic import ValidationError
    with pytest.raises(ValidationError, match="below memory_floor_bytes"):
        ContainerResources(gpu_type="H100", container="engine", memory_request_bytes=GI, memory_floor_bytes=2 * GI)
    with pytest.raises(ValidationError, match="below cpu_request_cores"):
        ContainerResources(gpu_type="H100", container="engine", cpu_request_cores=2.0, cpu_limit_cores=1.0)


@pytest.mark.parametrize(("mode", "refused"), [("Auto", True), (None, True), ("Off", False)])
async def test_a_vpa_acting_on_the_object_is_a_conflict_and_one_that_only_recommends_is_not(
    kube: Cluster, make_backend: Factory, mode: str | None, refused: bool
) -> None:
    seed(kube)
    spec: dict[str, object] = {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llama"}}
    if mode is not None:
        spec["updatePolicy"] = {"updateMode": mode}
    kube.k.objects["autoscaling.k8s.io/v1/verticalpodautoscalers", "llm", "llama-vpa"] = {
        "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
        "metadata": {"name": "llama-vpa", "namespace": "llm"}, "spec": spec}
    backend = make_backend(apply_resources=True)
    if refused:
        with pytest.raises(PermanentApplyError, match="VerticalPodAutoscaler llm/llama-vpa") as e:
            await backend.apply(resize_command(ENGINE))
        assert e.value.reason is ResultReason.CONFLICT
        assert not kube.requests(kmock.method.PATCH, DEPLOYMENTS)
    else:
        await backend.apply(resize_command(ENGINE))
        assert len(kube.requests(kmock.method.PATCH, DEPLOYMENTS)) == 1


async def test_without_vpa_installed_there_is_nothing_to_conflict_with(kube: Cluster, make_backend: Factory) -> None:
    seed(kube)
    from kube_emulator import status
    kube.k.override[kmock.resource("autoscaling.k8s.io/v1/verticalpodautoscalers")] << status(404, "not found")
    await make_backend(apply_resources=True).apply(resize_command(ENGINE))
    assert len(kube.requests(kmock.method.PATCH, DEPLOYMENTS)) == 1
