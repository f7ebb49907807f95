"""Other autoscalers are refused with a clear message; every outcome becomes a Kubernetes Event."""

from __future__ import annotations

import kmock
import pytest
from kube_emulator import Cluster, Factory, status

from shared.messages import ResultReason, ResultStatus
from spoke.backend import PermanentApplyError
from spoke.backends.kubernetes import KubernetesBackend


async def test_an_hpa_on_the_workload_is_a_permanent_conflict(
    kube: Cluster, backend: KubernetesBackend, scale_command
) -> None:
    kube.workload("llama")
    kube.hpa("llama-hpa", "llama")
    kube.hpa("other-hpa", "llama", target_kind="StatefulSet")

    with pytest.raises(PermanentApplyError) as caught:
        await backend.apply(scale_command("llama", {"H100": 4}))

    assert caught.value.reason == ResultReason.CONFLICT
    assert str(caught.value) == (
        "Deployment/llama is already scaled by HorizontalPodAutoscaler llm/llama-hpa; Fleetscale will not "
        "fight another controller. Pick one path: remove it so Fleetscale writes /scale, or keep KEDA as the "
        "actuator (SPOKE_ACTUATOR=keda and a ScaledObject whose trigger is the Fleetscale external scaler, "
        "docs/keda.md), or exclude the workload."
    )
    assert kube.requests(kmock.method.PATCH, "apps/v1/deployments") == []


async def test_an_hpa_on_another_kind_with_the_same_name_is_no_conflict(
    kube: Cluster, backend: KubernetesBackend, scale_command
) -> None:
    kube.workload("llama")
    kube.hpa("sts-hpa", "llama", target_kind="StatefulSet")

    assert await backend.apply(scale_command("llama", {"H100": 4})) == {"H100": 4}


async def test_a_keda_scaled_object_defaults_to_deployments_and_conflicts(
    kube: Cluster, backend: KubernetesBackend, scale_command
) -> None:
    kube.workload("llama")
    kube.scaled_object("llama-so", "llama")

    with pytest.raises(PermanentApplyError, match=r"already scaled by ScaledObject llm/llama-so;") as caught:
        await backend.apply(scale_command("llama", {"H100": 4}))

    assert caught.value.reason == ResultReason.CONFLICT


async def test_conflicts_can_be_switched_off(kube: Cluster, make_backend: Factory, scale_command) -> None:
    kube.workload("llama")
    kube.hpa("llama-hpa", "llama")

    assert await make_backend(check_conflicts=False).apply(scale_command("llama", {"H100": 4})) == {"H100": 4}


@pytest.mark.parametrize(
    ("status_", "event_reason", "event_type"),
    [
        (ResultStatus.APPLIED, "FleetscaleScaled", "Normal"),
        (ResultStatus.REJECTED, "FleetscaleRejected", "Warning"),
        (ResultStatus.FAILED, "FleetscaleFailed", "Warning"),
    ],
)
async def test_every_outcome_is_recorded_as_an_event_on_the_workload(
    status_: ResultStatus,
    event_reason: str,
    event_type: str,
    kube: Cluster,
    backend: KubernetesBackend,
    scale_command,
) -> None:
    kube.workload("llama")
    await backend.workloads()  # learns the uid, which `kubectl describe` filters events on
    command = scale_command("llama", {"H100": 4, "A100": 1})

    written = await backend.record_outcome(command, status_, ResultReason.APPLIED, "scaled up for p95 TTFT")

    assert written is True
    [(_, event)] = [(k, o.raw) for k, o in kube.k.objects.items() if k[0] == kmock.resource("v1/events")]
    assert (event["reason"], event["type"]) == (event_reason, event_type)
    assert event["involvedObject"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "llama",
        "namespace": "llm",
        "uid": "uid-llama",
    }
    assert event["metadata"]["namespace"] == "llm"
    assert event["metadata"]["name"].startswith("llama.")
    assert event["message"] == (
        f"command cmd-llama {status_}: replicas {{A100=1, H100=4}} by policy latency-slo@3 (applied): "
        "scaled up for p95 TTFT"
    )
    assert event["source"] == {"component": "fleetscale-spoke"}


async def test_an_event_that_cannot_be_written_does_not_raise(
    kube: Cluster, backend: KubernetesBackend, scale_command, caplog: pytest.LogCaptureFixture
) -> None:
    kube.k.override[kmock.method.POST, kmock.resource("v1/events")] << status(403, "events is forbidden")

    written = await backend.record_outcome(
        scale_command("llama", {"H100": 1}), ResultStatus.APPLIED, ResultReason.APPLIED
    )

    assert written is False
    assert 'needs "create" on "events"' in caplog.text
