"""The few Kubernetes API calls the backend makes, as raw JSON dicts with classified errors.

Everything above this module works on plain camelCase dicts (``Raw``), exactly as the API server
sends them, so the GPU arithmetic and the variant building are pure functions that tests can feed
with literal manifests. kubernetes-asyncio's models are converted at this boundary with the
client's own ``sanitize_for_serialization``.

Each call names its RBAC ``Access``; a failure is re-raised through ``errors.translating`` so a
403 says which rule to grant. ``docs/kubernetes.md`` lists the same rules for the Helm chart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client as k8s

from shared.messages import WorkloadKind
from spoke.backends.kubernetes.errors import Access, NotFoundError, translating
from spoke.backends.kubernetes.settings import KubernetesSettings

Raw = dict[str, Any]


@dataclass(frozen=True, slots=True)
class KindSpec:
    """How one scalable kind is spelled in URLs and in kubernetes-asyncio's method names."""

    kind: WorkloadKind
    plural: str
    method: str  # e.g. "deployment" in list_namespaced_deployment
    api_version: str = "apps/v1"
    group: str = "apps"


KINDS: dict[WorkloadKind, KindSpec] = {
    WorkloadKind.DEPLOYMENT: KindSpec(WorkloadKind.DEPLOYMENT, "deployments", "deployment"),
    WorkloadKind.STATEFULSET: KindSpec(WorkloadKind.STATEFULSET, "statefulsets", "stateful_set"),
    WorkloadKind.REPLICASET: KindSpec(WorkloadKind.REPLICASET, "replicasets", "replica_set"),
}


class KubeClient:
    """Raw-dict facade over kubernetes-asyncio's typed APIs, sharing one ``ApiClient``."""

    def __init__(self, api: k8s.ApiClient, settings: KubernetesSettings) -> None:
        self.api = api
        self._settings = settings
        self._apps = k8s.AppsV1Api(api)
        self._core = k8s.CoreV1Api(api)
        self._autoscaling = k8s.AutoscalingV2Api(api)
        self._custom = k8s.CustomObjectsApi(api)

    # --- workloads (apps/v1) ---------------------------------------------------------------------

    async def list_workloads(
        self, kind: WorkloadKind, namespace: str | None, label_selector: str | None = None
    ) -> list[Raw]:
        spec = KINDS[kind]
        if namespace is None:
            call = getattr(self._apps, f"list_{spec.method}_for_all_namespaces")
            args: tuple[str, ...] = ()
        else:
            call = getattr(self._apps, f"list_namespaced_{spec.method}")
            args = (namespace,)
        with self._translating(Access("list", spec.plural, spec.group, namespace=namespace)):
            result = await call(*args, **self._selector(label_selector))
        return self._raw_items(result)

    async def read_workload(self, kind: WorkloadKind, namespace: str, name: str) -> Raw:
        spec = KINDS[kind]
        call = getattr(self._apps, f"read_namespaced_{spec.method}")
        access = Access("get", spec.plural, spec.group, namespace=namespace)
        with self._translating(access, target=f"{kind}/{name}"):
            return self._raw(await call(name, namespace, **self._timeout()))

    async def create_workload(self, kind: WorkloadKind, namespace: str, body: Raw) -> Raw:
        spec = KINDS[kind]
        call = getattr(self._apps, f"create_namespaced_{spec.method}")
        name = body.get("metadata", {}).get("name", "?")
        access = Access("create", spec.plural, spec.group, namespace=namespace)
        with self._translating(access, target=f"{kind}/{name}"):
            return self._raw(await call(namespace, body, **self._timeout()))

    async def patch_workload(self, kind: WorkloadKind, namespace: str, name: str, body: Raw) -> Raw:
        spec = KINDS[kind]
        call = getattr(self._apps, f"patch_namespaced_{spec.method}")
        access = Access("patch", spec.plural, spec.group, namespace=namespace)
        with self._translating(access, target=f"{kind}/{name}"):
            return self._raw(await call(name, namespace, body, **self._timeout()))

    async def read_scale(self, kind: WorkloadKind, namespace: str, name: str) -> Raw:
        spec = KINDS[kind]
        call = getattr(self._apps, f"read_namespaced_{spec.method}_scale")
        access = Access("get", spec.plural, spec.group, subresource="scale", namespace=namespace)
        with self._translating(access, target=f"{kind}/{name}/scale"):
            return self._raw(await call(name, namespace, **self._timeout()))

    async def patch_scale(self, kind: WorkloadKind, namespace: str, name: str, body: Raw) -> Raw:
        spec = KINDS[kind]
        call = getattr(self._apps, f"patch_namespaced_{spec.method}_scale")
        access = Access("patch", spec.plural, spec.group, subresource="scale", namespace=namespace)
        with self._translating(access, target=f"{kind}/{name}/scale"):
            return self._raw(await call(name, namespace, body, **self._timeout()))

    # --- core/v1 ---------------------------------------------------------------------------------

    async def list_pods(
        self, namespace: str | None, *, label_selector: str | None = None, field_selector: str | None = None
    ) -> list[Raw]:
        kwargs = self._selector(label_selector)
        if field_selector:
            kwargs["field_selector"] = field_selector
        with self._translating(Access("list", "pods", namespace=namespace)):
            if namespace is None:
                result = await self._core.list_pod_for_all_namespaces(**kwargs)
            else:
                result = await self._core.list_namespaced_pod(namespace, **kwargs)
        return self._raw_items(result)

    async def patch_pod(self, namespace: str, name: str, body: Raw) -> Raw:
        with self._translating(Access("patch", "pods", namespace=namespace), target=f"Pod/{name}"):
            return self._raw(await self._core.patch_namespaced_pod(name, namespace, body, **self._timeout()))

    async def list_nodes(self) -> list[Raw]:
        with self._translating(Access("list", "nodes")):
            return self._raw_items(await self._core.list_node(**self._timeout()))

    async def list_events(self, namespace: str, *, field_selector: str | None = None) -> list[Raw]:
        kwargs = self._timeout()
        if field_selector:
            kwargs["field_selector"] = field_selector
        with self._translating(Access("list", "events", namespace=namespace)):
            return self._raw_items(await self._core.list_namespaced_event(namespace, **kwargs))

    async def create_event(self, namespace: str, body: Raw) -> Raw:
        with self._translating(Access("create", "events", namespace=namespace)):
            # The client serialises a plain dict as it does a model; its .pyi asks for a CoreV1Event.
            event = await self._core.create_namespaced_event(namespace, body, **self._timeout())  # type: ignore[arg-type]
            return self._raw(event)

    # --- other scalers -----------------------------------------------------------------------------

    async def list_hpas(self, namespace: str) -> list[Raw]:
        access = Access("list", "horizontalpodautoscalers", "autoscaling", namespace=namespace)
        with self._translating(access):
            result = await self._autoscaling.list_namespaced_horizontal_pod_autoscaler(
                namespace, **self._timeout()
            )
        return self._raw_items(result)

    async def list_scaled_objects(self, namespace: str) -> list[Raw]:
        """KEDA ScaledObjects in ``namespace``; none when the KEDA CRD is not installed (404)."""
        access = Access("list", "scaledobjects", "keda.sh", namespace=namespace)
        try:
            with self._translating(access):
                result = await self._custom.list_namespaced_custom_object(
                    "keda.sh", "v1alpha1", namespace, "scaledobjects", **self._timeout()
                )
        except NotFoundError:
            return []
        return list(result.get("items") or [])

    async def list_vpas(self, namespace: str) -> list[Raw]:
        """VerticalPodAutoscalers in ``namespace``; none when the VPA CRD is not installed (404)."""
        access = Access("list", "verticalpodautoscalers", "autoscaling.k8s.io", namespace=namespace)
        try:
            with self._translating(access):
                result = await self._custom.list_namespaced_custom_object(
                    "autoscaling.k8s.io", "v1", namespace, "verticalpodautoscalers", **self._timeout()
                )
        except NotFoundError:
            return []
        return list(result.get("items") or [])

    # --- metrics.k8s.io ----------------------------------------------------------------------------

    async def list_pod_metrics(self, namespace: str) -> list[Raw]:
        """PodMetrics (``metrics.k8s.io/v1beta1``, served by metrics-server or a Prometheus adapter) in
        ``namespace``. Raises ``NotFoundError`` when no metrics API is installed."""
        with self._translating(Access("list", "pods", "metrics.k8s.io", namespace=namespace)):
            result = await self._custom.list_namespaced_custom_object(
                "metrics.k8s.io", "v1beta1", namespace, "pods", **self._timeout()
            )
        return list(result.get("items") or [])

    async def close(self) -> None:
        await self.api.close()

    # --- helpers ---------------------------------------------------------------------------------

    def _translating(self, access: Access, *, target: str = "") -> Any:
        return translating(access, target=target, backoff_s=self._settings.backoff_s)

    def _timeout(self) -> dict[str, Any]:
        return {"_request_timeout": self._settings.request_timeout_s}

    def _selector(self, label_selector: str | None) -> dict[str, Any]:
        kwargs = self._timeout()
        if label_selector:
            kwargs["label_selector"] = label_selector
        return kwargs

    def _raw(self, model: Any) -> Raw:
        raw: Raw = self.api.sanitize_for_serialization(model)
        return raw

    def _raw_items(self, result: Any) -> list[Raw]:
        return [self._raw(item) for item in (result.items or [])]


__all__ = ["KINDS", "KindSpec", "KubeClient", "Raw"]
