"""A Kubernetes API at the HTTP wire for the backend's tests: kmock's emulator plus gap-fillers.

Kept out of ``conftest.py`` so tests can import the helpers by a unique module name (several
``conftest`` modules can exist in one run, and ``from conftest import`` would pick any of them).

kmock 0.8's ``KubernetesEmulator`` stores objects and serves CRUD, but four things the real API
server does are missing (shared/reference/infra.md §2), so they are filled in here:

1. ``?watch=True`` (kubernetes-asyncio's spelling) is not recognised as a watch;
2. ``/version/`` (with the trailing slash the client uses) is a 404;
3. the ``scale`` subresource answers with the whole object; here it answers an autoscaling/v1
   ``Scale`` built from the stored object (the emulator itself merges a PATCH into the object);
4. ``labelSelector`` is ignored on LIST; here it filters (with the backend's own selector matcher,
   whose grammar is unit-tested separately).

Pitfalls that stay: no resourceVersion conflicts (409s are injected with ``kube.override``), plain
JSON merge instead of strategic merge, no server-side defaulting (seed complete objects), and a
write answered with an injected error is still applied to the stored object.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import kmock

from spoke.backends.kubernetes import KubernetesBackend, selectors
from spoke.backends.kubernetes.settings import GPU_PRODUCT_LABEL, GPU_RESOURCE

SCALABLE = ("apps/v1/deployments", "apps/v1/statefulsets", "apps/v1/replicasets")
RESOURCE_OF_KIND = dict(zip(("Deployment", "StatefulSet", "ReplicaSet"), SCALABLE, strict=True))
H100 = "NVIDIA-H100-80GB-HBM3"
A100 = "NVIDIA-A100-SXM4-80GB"


def _scale_view(emulator: kmock.KubernetesEmulator):  # type: ignore[no-untyped-def]
    def view(request: kmock.Request) -> dict[str, Any]:
        obj = emulator.objects[request.resource, request.namespace, request.name]
        if obj.deleted:
            raise kmock.KubernetesObjectNotFoundError()
        spec = obj.get("spec") or {}
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            # The emulator keeps no resourceVersion; the object's history length is a faithful one.
            "metadata": {
                "name": request.name,
                "namespace": request.namespace,
                "resourceVersion": str(len(obj.history)),
            },
            "spec": {"replicas": spec.get("replicas", 1)},
            "status": {
                "replicas": (obj.get("status") or {}).get("replicas", 0),
                "selector": selectors.render(spec.get("selector")),
            },
        }

    return view


def _list_view(emulator: kmock.KubernetesEmulator):  # type: ignore[no-untyped-def]
    def view(request: kmock.Request) -> dict[str, Any]:
        selector = request.params.get("labelSelector")
        items = [
            obj.raw
            for (resource, namespace, _), obj in emulator.objects.items()
            if resource == request.resource and not obj.deleted
            if request.namespace is None or namespace == request.namespace
            if selectors.matches(selector, (obj.get("metadata") or {}).get("labels"))
        ]
        return {"metadata": {"resourceVersion": "1"}, "items": items}

    return view


def install_gap_fillers(emulator: kmock.KubernetesEmulator) -> None:
    emulator[kmock.method.GET, kmock.params(watch="True")] << emulator._serve_watch
    emulator["get /version/"] << emulator._serve_server_version
    for resource in SCALABLE:
        scale = kmock.resource(resource), kmock.subresource("scale")
        emulator[kmock.method.GET, *scale] << _scale_view(emulator)
        emulator[kmock.method.PATCH, *scale] << _scale_view(emulator)
    for resource in (*SCALABLE, "v1/pods"):
        emulator[kmock.action.LIST, kmock.resource(resource)] << _list_view(emulator)


def status(code: int, message: str, **headers: str) -> kmock.Response:
    """An API-server-like error reply, for ``kube.override[...] << status(403, "...")``."""
    body = {"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": code, "message": message}
    return kmock.Response(status=code, payload=body, headers=headers or None)


def refuse(emulator: kmock.KubernetesEmulator, code: int, message: str, **headers: str) -> Callable[..., Any]:
    """Like ``status``, but also undoes the write the emulator stored before the reaction ran,
    as a real API server would: ``kube.override[...] << refuse(kube.k, 409, "...")``."""

    def react(request: kmock.Request) -> kmock.Response:
        if request.method in (kmock.method.PATCH, kmock.method.POST) and request.resource is not None:
            name = request.name or (request.data or {}).get("metadata", {}).get("name")
            key = (request.resource, request.namespace, name)
            if key in emulator.objects:
                obj = emulator.objects[key]
                obj.history = list(obj.history)[:-1]
        return status(code, message, **headers)

    return react


class Cluster:
    """Seeding helpers over the emulator; objects are complete because the client validates them."""

    def __init__(self, emulator: kmock.KubernetesEmulator) -> None:
        self.k = emulator

    def workload(
        self,
        name: str,
        *,
        kind: str = "Deployment",
        namespace: str = "llm",
        replicas: int = 2,
        ready: int | None = None,
        gpus: int = 1,
        product: str | None = H100,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        affinity_products: list[str] | None = None,
    ) -> dict[str, Any]:
        pod_spec: dict[str, Any] = {
            "containers": [
                {
                    "name": "engine",
                    "image": "vllm/vllm-openai:v0.6",
                    "resources": {"limits": {GPU_RESOURCE: str(gpus), "cpu": "4"}},
                },
                {"name": "sidecar", "image": "busybox"},
            ]
        }
        if product:
            pod_spec["nodeSelector"] = {GPU_PRODUCT_LABEL: product}
        if affinity_products:
            pod_spec["affinity"] = {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": GPU_PRODUCT_LABEL, "operator": "In", "values": affinity_products}
                                ]
                            }
                        ]
                    }
                }
            }
        obj: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": f"uid-{name}",
                "labels": {"fleetscale.dev/managed": "true", "app": name} if labels is None else labels,
                "annotations": annotations or {},
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
            },
            "status": {"replicas": replicas, "readyReplicas": replicas if ready is None else ready},
        }
        if kind == "StatefulSet":
            obj["spec"]["serviceName"] = name
        self.k.objects[RESOURCE_OF_KIND[kind], namespace, name] = obj
        return obj

    def node(
        self, name: str, *, product: str | None = H100, gpus: int = 8, allocatable: int | None = None
    ) -> None:
        labels = {GPU_PRODUCT_LABEL: product} if product else {}
        resources = {"cpu": "64"} | ({GPU_RESOURCE: str(gpus)} if gpus else {})
        alloc = dict(resources) | ({GPU_RESOURCE: str(allocatable)} if allocatable is not None else {})
        self.k.objects["v1/nodes", None, name] = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": labels},
            "status": {"capacity": resources, "allocatable": alloc},
        }

    def pod(
        self,
        name: str,
        *,
        namespace: str = "llm",
        labels: dict[str, str] | None = None,
        node: str | None = "node-h100",
        gpus: int = 1,
        phase: str = "Running",
        ready: bool = True,
        ip: str = "10.0.0.1",
    ) -> None:
        self.k.objects["v1/pods", namespace, name] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {
                "nodeName": node,
                "containers": [
                    {"name": "engine", "image": "vllm", "resources": {"requests": {GPU_RESOURCE: str(gpus)}}}
                ],
            },
            "status": {
                "phase": phase,
                "podIP": ip,
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                "containerStatuses": [
                    {
                        "name": "engine",
                        "containerID": f"containerd://{name}-c0",
                        "ready": ready,
                        "restartCount": 0,
                        "image": "vllm",
                        "imageID": "",
                    }
                ],
            },
        }

    def hpa(
        self, name: str, target_name: str, *, target_kind: str = "Deployment", namespace: str = "llm"
    ) -> None:
        self.k.objects["autoscaling/v2/horizontalpodautoscalers", namespace, name] = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "maxReplicas": 4,
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": target_kind, "name": target_name},
            },
        }

    def scaled_object(self, name: str, target_name: str, *, namespace: str = "llm") -> None:
        self.k.objects["keda.sh/v1alpha1/scaledobjects", namespace, name] = {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"scaleTargetRef": {"name": target_name}, "triggers": []},
        }

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.k.objects[resource, namespace, name].raw)

    def requests(
        self, method: kmock.method, resource: str, subresource: str | None = ...
    ) -> list[kmock.Request]:  # type: ignore[assignment]
        return [
            r
            for r in self.k
            if r.method == method and r.resource == kmock.resource(resource)
            if subresource is ... or r.subresource == subresource
        ]


Factory = Callable[..., KubernetesBackend]
"""``make_backend(**settings)``: a backend over the emulator (fixture in conftest.py)."""
