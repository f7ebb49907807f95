"""Discovery over the wire: which objects are managed, what their replicas, GPUs and types are."""

from __future__ import annotations

import pytest
from kube_emulator import A100, Cluster, Factory

from shared.messages import VariantStatus, WorkloadKind, WorkloadRef
from spoke.backend import ClusterBackend, PermanentApplyError
from spoke.backends.kubernetes import KubernetesBackend
from spoke.backends.kubernetes.variants import build_variant


def test_backend_satisfies_the_cluster_backend_protocol(backend: KubernetesBackend) -> None:
    assert isinstance(backend, ClusterBackend)


async def test_label_discovery_finds_all_three_kinds_and_only_labelled_ones(
    kube: Cluster, backend: KubernetesBackend
) -> None:
    kube.workload("llama", kind="Deployment", replicas=3, ready=2, gpus=2)
    kube.workload("mistral", kind="StatefulSet", replicas=1, product=A100)
    kube.workload("qwen", kind="ReplicaSet", replicas=4, gpus=4)
    kube.workload("unmanaged", labels={"app": "unmanaged"})

    states = {s.key: s for s in await backend.workloads()}

    assert sorted(states) == ["llm/llama", "llm/mistral", "llm/qwen"]
    llama = states["llm/llama"]
    assert (llama.ref.kind, llama.desired_replicas, llama.ready_replicas, llama.gpus_per_replica) == (
        WorkloadKind.DEPLOYMENT,
        3,
        2,
        2,
    )
    assert llama.variants == (
        VariantStatus(gpu_type="H100", desired_replicas=3, ready_replicas=2, gpus_per_replica=2),
    )
    assert states["llm/mistral"].ref.kind == WorkloadKind.STATEFULSET
    assert states["llm/mistral"].variants[0].gpu_type == "A100"
    assert states["llm/qwen"].ref.kind == WorkloadKind.REPLICASET
    assert states["llm/qwen"].gpus_per_replica == 4
    assert llama.labels["app"] == "llama"
    # The selector was sent to the server, not applied after listing everything.
    lists = kube.requests(kube.k.method.GET, "apps/v1/deployments")
    assert {r.params.get("labelSelector") for r in lists} >= {"fleetscale.dev/managed=true"}


async def test_gpu_type_comes_from_affinity_and_unknown_products_stay_raw(
    kube: Cluster, make_backend: Factory
) -> None:
    kube.workload("aff", product=None, affinity_products=["NVIDIA-L40S"])
    kube.workload("odd", product="Tesla-Mystery-9000")
    kube.workload("free", product=None)
    backend = make_backend(unpinned_gpu_type="any")

    types = {s.ref.name: [v.gpu_type for v in s.variants] for s in await backend.workloads()}

    assert types == {"aff": ["L40S"], "odd": ["Tesla-Mystery-9000"], "free": ["any"]}


async def test_annotation_discovery_and_namespace_restriction(kube: Cluster, make_backend: Factory) -> None:
    kube.workload("tagged", labels={"app": "tagged"}, annotations={"fleetscale.dev/manage": "yes"})
    kube.workload(
        "elsewhere", namespace="other", labels={"app": "x"}, annotations={"fleetscale.dev/manage": "yes"}
    )
    kube.workload("plain", labels={"app": "plain"})
    backend = make_backend(managed_annotation="fleetscale.dev/manage=yes", namespaces=("llm",))

    assert [s.key for s in await backend.workloads()] == ["llm/tagged"]


async def test_explicit_refs_from_hub_policies_are_managed_without_labels(
    kube: Cluster, backend: KubernetesBackend
) -> None:
    kube.workload("named", labels={"app": "named"})
    backend.set_extra_workloads(
        [
            WorkloadRef(namespace="llm", name="named"),
            WorkloadRef(namespace="llm", name="missing"),
        ]
    )

    assert [s.key for s in await backend.workloads()] == ["llm/named"]


async def test_variants_are_grouped_under_their_base_not_listed_as_workloads(
    kube: Cluster, backend: KubernetesBackend
) -> None:
    kube.workload("llama", replicas=3, ready=3, gpus=2)
    variant = kube.workload("llama-a100", replicas=2, ready=1, gpus=2, product=A100)
    variant["metadata"]["labels"] |= {"fleetscale.dev/variant-of": "llama", "fleetscale.dev/gpu-type": "A100"}
    kube.k.objects["apps/v1/deployments", "llm", "llama-a100"] = variant

    [state] = await backend.workloads()

    assert (state.key, state.desired_replicas, state.ready_replicas) == ("llm/llama", 5, 4)
    assert [(v.gpu_type, v.desired_replicas, v.ready_replicas) for v in state.variants] == [
        ("A100", 2, 1),
        ("H100", 3, 3),
    ]


async def test_commands_for_unmanaged_workloads_are_refused(
    kube: Cluster, backend: KubernetesBackend, scale_command
) -> None:
    kube.workload("unmanaged", labels={"app": "unmanaged"})

    with pytest.raises(PermanentApplyError, match="not managed by Fleetscale") as caught:
        await backend.apply(scale_command("unmanaged", {"H100": 1}))

    assert caught.value.reason == "invalid"
    assert not kube.requests(kube.k.method.PATCH, "apps/v1/deployments")


async def test_pods_of_a_workload_with_ips_nodes_container_ids_and_variant(
    kube: Cluster, backend: KubernetesBackend
) -> None:
    base = kube.workload("llama")
    # The variant as the backend itself would create it.
    kube.k.objects["apps/v1/deployments", "llm", "llama-a100"] = build_variant(
        base, WorkloadKind.DEPLOYMENT, "A100", [A100], replicas=1
    )
    marks = {"fleetscale.dev/variant-of": "llama", "fleetscale.dev/gpu-type": "A100"}
    kube.pod("llama-1", labels={"app": "llama"}, ip="10.0.0.1")
    kube.pod("llama-2", labels={"app": "llama"}, ready=False, ip="10.0.0.2")
    kube.pod("llama-a100-1", labels={"app": "llama"} | marks, node="node-a100", ip="10.0.1.1")
    kube.pod("llama-old", labels={"app": "llama"}, phase="Failed")
    kube.pod("other", labels={"app": "other"})

    pods = {p.name: p for p in await backend.pods(WorkloadRef(namespace="llm", name="llama"))}

    assert sorted(pods) == ["llama-1", "llama-2", "llama-a100-1"]
    assert (pods["llama-1"].ip, pods["llama-1"].node, pods["llama-1"].ready) == (
        "10.0.0.1",
        "node-h100",
        True,
    )
    assert pods["llama-1"].container_ids == ("llama-1-c0",)
    assert (pods["llama-1"].gpu_type, pods["llama-1"].workload) == ("H100", "llama")
    assert pods["llama-2"].ready is False
    assert (pods["llama-a100-1"].gpu_type, pods["llama-a100-1"].workload) == ("A100", "llama-a100")


async def test_samples_come_from_the_injected_sampler_or_are_all_missing(
    kube: Cluster, make_backend: Factory
) -> None:
    from shared.messages import Samples

    kube.workload("llama")
    calls = []

    async def sampler(workloads):  # type: ignore[no-untyped-def]
        calls.append([w.key for w in workloads])
        return {"llm/llama": Samples(requests_waiting=3.0)}

    plain, sampled = make_backend(), make_backend(sampler=sampler)
    states = await plain.workloads()

    assert await plain.samples(states) == {}
    assert (await sampled.samples(states))["llm/llama"].requests_waiting == 3.0
    assert calls == [["llm/llama"]]


async def test_from_config_loads_a_kubeconfig_when_not_in_a_pod(kube: Cluster, tmp_path) -> None:
    kube.workload("llama")
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: kmock\n"
        f"clusters: [{{name: kmock, cluster: {{server: '{str(kube.k.url).rstrip('/')}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: kmock, context: {cluster: kmock, user: u}}]\n"
    )

    # NB: explicit, so the test also passes when CI itself runs in a pod.
    backend = await KubernetesBackend.from_config(in_cluster=False, kubeconfig=str(kubeconfig))
    try:
        assert [s.key for s in await backend.workloads()] == ["llm/llama"]
    finally:
        await backend.aclose()

    assert all(r.headers.get("Authorization") == "Bearer t" for r in kube.k)
