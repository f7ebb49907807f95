"""GPU telemetry from the NVIDIA driver in-process (NVML), attributed to pods through cgroups.

For a spoke that runs on the GPU node (a DaemonSet with ``hostPID``, the driver's NVML library
mounted by the NVIDIA container toolkit). Per GPU: utilisation (``nvmlDeviceGetUtilizationRates``,
percent -> ratio), memory used/total (bytes), power (mW -> W), product name and UUID. Each compute
process is mapped PID -> ``/proc/<pid>/cgroup`` -> container id -> pod -> workload; the
container -> pod step is the caller's ``container_lookup`` (the Kubernetes backend knows
``containerStatuses[].containerID``), falling back to the container ids carried by the targets.

MIG: on a GPU in MIG mode each GPU instance is reported on its own, with the id dcgm-exporter
uses, ``<parent GPU UUID>/<GPU instance id>``, its own memory (the MIG device handle's), and the
processes running on it. NVML gives no utilisation and no power per MIG instance (power is a
whole-GPU quantity), so both stay missing for instances rather than copied from the parent.

Without a driver (``NVMLError_LibraryNotFound``) or with any other NVML error at init, the source
logs one WARNING, sets ``available = False`` and reports every field missing with reason
``"NVML unavailable: ..."``. It never simulates a GPU. ``pynvml`` is injectable (``nvml=``) so tests
can replace it with a fake at the NVML-function boundary.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shared.messages import GpuSample
from spoke.sources.base import NodeGpu, PartialSample, SourceReading, SourceTarget, gpu_partials, workloads_by_pod
from spoke.sources.cgroups import container_of

logger = logging.getLogger("fleetscale.spoke.sources.nvml")

ContainerLookup = Callable[[str], tuple[str, str] | None]
"""Bare container id -> (namespace, pod name), or None when it is not a pod we know."""
NO_PROCESS_REASON = "no GPU process of this workload's containers found by NVML on this node"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class NvmlSource:
    name = "nvml"
    capabilities = frozenset({"gpus"})

    def __init__(
        self,
        *,
        nvml: Any = None,
        proc_root: Path = Path("/proc"),
        container_lookup: ContainerLookup | None = None,
        node: str | None = None,
    ) -> None:
        if nvml is None:
            import pynvml

            nvml = pynvml
        self._nvml = nvml
        self._proc_root = proc_root
        self._lookup = container_lookup
        self.node = node or socket.gethostname()
        self.available: bool | None = None
        """None until the first read tries NVML; then whether it could be initialised."""
        self.unavailable_reason: str | None = None

    def _ensure_init(self) -> bool:
        if self.available is None:
            try:
                self._nvml.nvmlInit()
            except self._nvml.NVMLError as e:
                self.available = False
                self.unavailable_reason = f"NVML unavailable: {e} ({type(e).__name__})"
                logger.warning("%s; GPU fields from NVML will be reported missing", self.unavailable_reason)
            else:
                self.available = True
        return self.available

    async def read(self, targets: Sequence[SourceTarget]) -> SourceReading:
        return await asyncio.to_thread(self.collect, targets)

    def collect(self, targets: Sequence[SourceTarget]) -> SourceReading:
        """The blocking body of ``read`` (NVML calls and /proc reads), run in a worker thread."""
        if not self._ensure_init():
            reason = self.unavailable_reason or "NVML unavailable"
            return SourceReading(
                self.name, {t.key: PartialSample.all_missing(["gpus"], reason) for t in targets}
            )
        owner = workloads_by_pod(targets)
        by_container = {c: (p.namespace, p.name) for t in targets for p in t.pods for c in p.container_ids}
        warnings: list[str] = []
        inventory: list[NodeGpu] = []
        per_workload: dict[str, list[GpuSample]] = {}
        nv = self._nvml
        for index in range(nv.nvmlDeviceGetCount()):
            parent = nv.nvmlDeviceGetHandleByIndex(index)
            for handle, sample, product in self._units(parent, index, warnings):
                keys: set[str] = set()
                for pod in self._pods_on(handle, sample.gpu_id, by_container, warnings):
                    if pod in owner:
                        keys.add(owner[pod])
                inventory.append(NodeGpu(sample=sample, product=product, workloads=tuple(sorted(keys))))
                for key in keys:
                    per_workload.setdefault(key, []).append(sample)
        samples = gpu_partials(targets, per_workload, NO_PROCESS_REASON)
        return SourceReading(self.name, samples, gpus=tuple(inventory), warnings=tuple(warnings))

    def _units(self, parent: Any, index: int, warnings: list[str]) -> list[tuple[Any, GpuSample, str | None]]:
        """The schedulable units of one physical GPU: itself, or its MIG instances."""
        if not self._mig_enabled(parent):
            sample, product = self._gpu(parent, index, warnings)
            return [(parent, sample, product)]
        nv = self._nvml
        parent_id = _text(nv.nvmlDeviceGetUUID(parent))
        units = []
        for slot in range(nv.nvmlDeviceGetMaxMigDeviceCount(parent)):
            try:
                handle = nv.nvmlDeviceGetMigDeviceHandleByIndex(parent, slot)
                instance = nv.nvmlDeviceGetGpuInstanceId(handle)
            except nv.NVMLError:
                continue  # an empty MIG slot
            units.append((handle, *self._mig_instance(handle, f"{parent_id}/{instance}", warnings)))
        return units

    def _mig_enabled(self, handle: Any) -> bool:
        try:
            current, _pending = self._nvml.nvmlDeviceGetMigMode(handle)
        except self._nvml.NVMLError:
            return False  # not MIG-capable (NotSupported) or not queryable: a whole GPU
        return bool(current == getattr(self._nvml, "NVML_DEVICE_MIG_ENABLE", 1))

    def _mig_instance(self, handle: Any, gpu_id: str, warnings: list[str]) -> tuple[GpuSample, str | None]:
        nv = self._nvml
        try:
            memory = nv.nvmlDeviceGetMemoryInfo(handle)
        except nv.NVMLError as e:
            warnings.append(f"{gpu_id}: memory: {e}")
            memory = None
        try:
            product: str | None = _text(nv.nvmlDeviceGetName(handle))
        except nv.NVMLError:
            product = None
        sample = GpuSample(
            gpu_id=gpu_id,
            node=self.node,
            memory_used_bytes=None if memory is None else float(memory.used),
            memory_total_bytes=None if memory is None else float(memory.total),
        )
        return sample, product

    def _gpu(self, handle: Any, index: int, warnings: list[str]) -> tuple[GpuSample, str | None]:
        nv = self._nvml

        def field(what: str, call: Callable[[], Any]) -> Any:
            # One unsupported query (power on some boards) must not hide the others.
            try:
                return call()
            except nv.NVMLError as e:
                warnings.append(f"GPU {index}: {what}: {e}")
                return None

        uuid = field("UUID", lambda: _text(nv.nvmlDeviceGetUUID(handle)))
        product = field("name", lambda: _text(nv.nvmlDeviceGetName(handle)))
        util = field("utilization", lambda: nv.nvmlDeviceGetUtilizationRates(handle).gpu)
        memory = field("memory", lambda: nv.nvmlDeviceGetMemoryInfo(handle))
        power_mw = field("power", lambda: nv.nvmlDeviceGetPowerUsage(handle))
        sample = GpuSample(
            gpu_id=uuid or f"{self.node}/{index}",
            node=self.node,
            utilization_ratio=None if util is None else min(max(util / 100, 0.0), 1.0),
            memory_used_bytes=None if memory is None else float(memory.used),
            memory_total_bytes=None if memory is None else float(memory.total),
            power_w=None if power_mw is None else power_mw / 1000,
        )
        return sample, product

    def _pods_on(
        self, handle: Any, gpu_id: str, by_container: dict[str, tuple[str, str]], warnings: list[str]
    ) -> set[tuple[str, str]]:
        try:
            processes = self._nvml.nvmlDeviceGetComputeRunningProcesses(handle)
        except self._nvml.NVMLError as e:
            warnings.append(f"{gpu_id}: cannot list processes: {e}")
            return set()
        pods: set[tuple[str, str]] = set()
        for proc in processes:
            try:
                identity = container_of(proc.pid, proc_root=self._proc_root)
            except OSError as e:
                warnings.append(
                    f"{gpu_id}: pid {proc.pid} not readable ({e.strerror}); is the spoke hostPID?"
                )
                continue
            if identity is None:
                continue
            pod = self._lookup(identity.container_id) if self._lookup else None
            pod = pod or by_container.get(identity.container_id)
            if pod is not None:
                pods.add(pod)
        return pods

    async def aclose(self) -> None:
        if self.available:
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as e:
                logger.warning("nvmlShutdown failed: %s", e)
            self.available = None
