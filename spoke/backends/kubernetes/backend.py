"""``KubernetesBackend``: the spoke's ``ClusterBackend`` for a real cluster, over kubernetes-asyncio.

This is the composition of the concept modules: discovery finds the managed workloads and their
GPU-type variants, inventory counts free GPUs, conflicts guards against other autoscalers, scaling
goes through ``/scale`` with drain-aware deletion costs, and events tell operators what happened.

``apply`` turns one absolute command (replicas per GPU type) into per-object scales:

1. find the base the hub named and its variants; refuse it if it is not managed here;
2. plan one step per GPU type: scale the existing object, or create a variant pinned to the
   products of that type (refused if creation is off, or ``capacity`` if no node has the type);
3. refuse with ``conflict`` if an HPA or a KEDA ScaledObject targets any object in the plan;
4. run the scale-ups (and creations) before the scale-downs, so moving replicas between GPU types
   adds capacity before it removes any.

A failure midway leaves the earlier steps applied; commands are absolute, so re-delivering the
same command converges. Events are not emitted by ``apply``: the executor reports every outcome,
including its own rejections (expired, duplicate), through ``record_outcome``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.config.config_exception import ConfigException

from shared.messages import (
    ContainerResources,
    GpuNode,
    ResultReason,
    ResultStatus,
    Samples,
    ScaleCommand,
    WorkloadRef,
)
from spoke.backend import ApplyError, PermanentApplyError, WorkloadState
from spoke.backends.kubernetes import events
from spoke.backends.kubernetes.client import KINDS, KubeClient
from spoke.backends.kubernetes.conflicts import ensure_no_other_scaler, ensure_no_vpa
from spoke.backends.kubernetes.deletion_cost import PodLoads
from spoke.backends.kubernetes.discovery import Discovery
from spoke.backends.kubernetes.errors import ConflictError
from spoke.backends.kubernetes.exporters import ExporterPods
from spoke.backends.kubernetes.gpus import GpuTypes
from spoke.backends.kubernetes.inventory import products_of_type, read_inventory
from spoke.backends.kubernetes.pod_starts import PodStarts
from spoke.backends.kubernetes.pods import PodInfo, pods_of
from spoke.backends.kubernetes.resizing import resize
from spoke.backends.kubernetes.scaling import Scaler
from spoke.backends.kubernetes.settings import KubernetesSettings
from spoke.backends.kubernetes.variants import (
    GPU_TYPE_LABEL,
    VARIANT_OF_LABEL,
    ManagedWorkload,
    Variant,
    build_variant,
    variant_name,
)
from spoke.starts import StartLog

logger = logging.getLogger(__name__)

Sampler = Callable[[Sequence[WorkloadState]], Awaitable[Mapping[str, Samples]]]
"""Samples per workload key for the given workloads (wired by the spoke agent to its sources)."""


@dataclass(frozen=True, slots=True)
class _Step:
    gpu_type: str
    replicas: int
    variant: Variant | None  # None: create it
    products: tuple[str, ...] = ()

    @property
    def target_name(self) -> str:
        return self.variant.name if self.variant else ""

    def is_scale_down(self) -> bool:
        return self.variant is not None and self.replicas < self.variant.desired


class KubernetesBackend:
    """Reads and scales GPU inference workloads in one Kubernetes cluster."""

    def __init__(
        self,
        api: k8s.ApiClient,
        settings: KubernetesSettings | None = None,
        *,
        sampler: Sampler | None = None,
        pod_loads: PodLoads | None = None,
    ) -> None:
        self.settings = settings or KubernetesSettings()
        self._client = KubeClient(api, self.settings)
        self._types = GpuTypes(self.settings.gpu_types)
        self._discovery = Discovery(self._client, self.settings, self._types)
        self._scaler = Scaler(self._client, self.settings, pod_loads)
        self._sampler = sampler
        self._uids: dict[WorkloadRef, str] = {}
        self.starts = StartLog()
        """Measured pod starts per (workload, GPU type, tier); the report carries their summary."""
        self._pod_starts = PodStarts(self._client, self.starts)
        self._starts_failed = False

    @classmethod
    async def from_config(
        cls,
        settings: KubernetesSettings | None = None,
        *,
        in_cluster: bool | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        sampler: Sampler | None = None,
        pod_loads: PodLoads | None = None,
    ) -> KubernetesBackend:
        """Connect with the pod's service account, or a kubeconfig (``in_cluster=None``: try both)."""
        configuration = k8s.Configuration()
        if in_cluster is not False:
            try:
                k8s_config.load_incluster_config(client_configuration=configuration)
            except ConfigException:
                if in_cluster:
                    raise
                logger.info("Not running in a pod; loading kubeconfig %s", kubeconfig or "(default)")
                in_cluster = False
        if in_cluster is False:
            await k8s_config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
        return cls(k8s.ApiClient(configuration), settings, sampler=sampler, pod_loads=pod_loads)

    @property
    def api(self) -> k8s.ApiClient:
        """The underlying client, e.g. for the agent's own calls; closed by ``aclose``."""
        return self._client.api

    # --- ClusterBackend ----------------------------------------------------------------------------

    async def exporter_urls(self, exporters: ExporterPods) -> list[str]:
        """The metrics URLs of the running exporter pods (dcgm-exporter), one per node."""
        return await exporters.urls(self._client)

    async def inventory(self) -> Sequence[GpuNode]:
        return await read_inventory(self._client, self._types)

    async def workloads(self) -> Sequence[WorkloadState]:
        managed = await self._discovery.managed()
        self._remember(managed)
        states = [mw.state() for mw in managed]
        if not self.settings.measure_starts:
            return states
        try:
            await self._pod_starts.observe(managed, now=datetime.now(UTC))
        except ApplyError as e:
            # Start times are a refinement: a failed pod list costs this cycle's measurements only
            # (logged once at warning level, then at debug, not once per report).
            logger.log(logging.DEBUG if self._starts_failed else logging.WARNING,
                       "cannot list pods to measure start times (%s)", e)
            self._starts_failed = True
        self.starts.forget({mw.ref.key for mw in managed})
        return self.starts.attach(states, now=time.time())

    async def samples(self, workloads: Sequence[WorkloadState]) -> Mapping[str, Samples]:
        # The backend measures nothing itself; without a sampler every sample is missing.
        return await self._sampler(workloads) if self._sampler is not None else {}

    async def apply(self, command: ScaleCommand) -> Mapping[str, int]:
        workload = await self._discovery.find(command.workload)
        self._remember([workload])
        steps = await self._plan(workload, command.replicas_by_gpu_type)
        if self.settings.check_conflicts:
            targets = [
                (str(workload.ref.kind), s.target_name or variant_name(workload.ref.name, s.gpu_type))
                for s in steps
            ]
            await ensure_no_other_scaler(self._client, workload.ref.namespace, targets)
        if command.resources:
            self._check_resizable(workload, command)
            if self.settings.check_conflicts:
                kind = str(workload.ref.kind)
                objects = sorted({(kind, workload.variants[c.gpu_type].name) for c in command.resources})
                await ensure_no_vpa(self._client, workload.ref.namespace, objects)
        observed = {t: v.desired for t, v in workload.variants.items()}
        for step in sorted(steps, key=lambda s: s.is_scale_down()):
            observed[step.gpu_type] = await self._run(workload, step)
        await self._resize(workload, command)
        return observed

    async def aclose(self) -> None:
        await self._client.close()

    # --- beyond the Protocol -------------------------------------------------------------------------

    def set_extra_workloads(self, refs: Iterable[WorkloadRef]) -> None:
        """Also manage these workloads (named by hub policies), labelled or not."""
        self._discovery.set_extra(refs)

    async def pods(self, ref: WorkloadRef) -> Sequence[PodInfo]:
        """The live pods of a managed workload and all its variants (scrape targets, NVML mapping)."""
        return await pods_of(self._client, await self._discovery.find(ref))

    async def pod_metrics(self, namespace: str) -> list[dict[str, Any]]:
        """The metrics API's PodMetrics in ``namespace`` (the spoke's container usage source)."""
        return await self._client.list_pod_metrics(namespace)

    async def record_outcome(
        self, command: ScaleCommand, status: ResultStatus, reason: ResultReason, message: str = ""
    ) -> bool:
        """Emit the Event for a command's outcome on its workload; False if it could not be written."""
        uid = self._uids.get(command.workload)
        return await events.emit(
            self._client, command, status, str(reason), message, source=self.settings.event_source, uid=uid
        )

    # --- internals -----------------------------------------------------------------------------------

    def _remember(self, managed: Iterable[ManagedWorkload]) -> None:
        # Events carry the object's uid so `kubectl describe` (which filters on it) shows them.
        for mw in managed:
            uid = (mw.base.get("metadata") or {}).get("uid")
            if uid:
                self._uids[mw.ref] = str(uid)

    async def _plan(self, workload: ManagedWorkload, wanted: Mapping[str, int]) -> list[_Step]:
        ref, steps = workload.ref, []
        inventory: Sequence[GpuNode] | None = None
        for gpu_type, replicas in sorted(wanted.items()):
            variant = workload.variants.get(gpu_type)
            if variant is not None:
                steps.append(_Step(gpu_type, replicas, variant))
                continue
            if replicas == 0:
                continue  # nothing runs there and nothing should
            if gpu_type == self.settings.unpinned_gpu_type:
                raise PermanentApplyError(
                    ResultReason.INVALID,
                    f"{ref.kind}/{ref.name} pins its GPU type; there is no unpinned object to scale",
                )
            if not self.settings.create_variants:
                raise PermanentApplyError(
                    ResultReason.INVALID,
                    f"{ref.kind}/{ref.name} has no variant for GPU type {gpu_type} and creating variants is "
                    f"disabled on this spoke; create {variant_name(ref.name, gpu_type)} labelled "
                    f"{VARIANT_OF_LABEL}={ref.name},{GPU_TYPE_LABEL}={gpu_type} or enable create_variants",
                )
            inventory = inventory if inventory is not None else await self.inventory()
            products = products_of_type(inventory, gpu_type)
            if not products:
                raise PermanentApplyError(
                    ResultReason.CAPACITY,
                    f"no node in this cluster has GPU type {gpu_type}; cannot place {ref.kind}/{ref.name}",
                )
            steps.append(_Step(gpu_type, replicas, None, tuple(products)))
        return steps

    def _check_resizable(self, workload: ManagedWorkload, command: ScaleCommand) -> None:
        ref = workload.ref
        if not self.settings.apply_resources:
            raise PermanentApplyError(
                ResultReason.FORBIDDEN,
                f"{ref.kind}/{ref.name}: applying resources is off on this spoke (set SPOKE_KUBE_APPLY_RESOURCES=true "
                f"and grant patch on {KINDS[ref.kind].plural}); the hub's recommendations stay recommendations",
            )
        missing = sorted({c.gpu_type for c in command.resources} - set(workload.variants))
        if missing:
            raise PermanentApplyError(
                ResultReason.INVALID, f"{ref.kind}/{ref.name} has no object for GPU type(s) {', '.join(missing)}")

    async def _resize(self, workload: ManagedWorkload, command: ScaleCommand) -> None:
        """One patch per GPU type's object; each is rolled out by its controller."""
        by_type: dict[str, list[ContainerResources]] = {}
        for change in command.resources:
            by_type.setdefault(change.gpu_type, []).append(change)
        for gpu_type, changes in sorted(by_type.items()):
            variant = workload.variants[gpu_type]
            if await resize(self._client, variant, changes):
                logger.info("patched the resources of %s %s/%s (%s): %s", variant.kind, variant.namespace,
                            variant.name, gpu_type, ", ".join(c.container for c in changes))

    async def _run(self, workload: ManagedWorkload, step: _Step) -> int:
        if step.variant is not None:
            return await self._scaler.scale(workload.ref, step.variant, step.replicas)
        ref = workload.ref
        body = build_variant(workload.base, ref.kind, step.gpu_type, step.products, step.replicas)
        try:
            created = await self._client.create_workload(ref.kind, ref.namespace, body)
        except ConflictError:
            # Another spoke replica (or a human) created it since we looked: scale what is there,
            # if it is really our variant and not an unrelated object with the same name.
            existing = await self._client.read_workload(ref.kind, ref.namespace, body["metadata"]["name"])
            labels = (existing.get("metadata") or {}).get("labels") or {}
            if labels.get(VARIANT_OF_LABEL) != ref.name or labels.get(GPU_TYPE_LABEL) != step.gpu_type:
                raise PermanentApplyError(
                    ResultReason.CONFLICT,
                    f"{ref.kind}/{body['metadata']['name']} exists but is not the {step.gpu_type} variant of "
                    f"{ref.name}; rename it or label it {VARIANT_OF_LABEL}={ref.name},"
                    f"{GPU_TYPE_LABEL}={step.gpu_type}",
                ) from None
            variant = Variant(step.gpu_type, ref.kind, existing, is_base=False)
            return await self._scaler.scale(ref, variant, step.replicas)
        logger.info(
            "Created %s %s/%s for GPU type %s with %d replicas",
            ref.kind,
            ref.namespace,
            created["metadata"]["name"],
            step.gpu_type,
            step.replicas,
        )
        return int((created.get("spec") or {}).get("replicas") or 0)
