"""NVML GPUs are attributed to pods through /proc cgroups; without a driver the source says so.

The fake below replaces ``pynvml`` at its function boundary only: the source's code runs unchanged,
and errors are pynvml's own ``NVMLError`` subclasses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pynvml
import pytest

from spoke.sources.base import PodTarget, SourceTarget
from spoke.sources.cgroups import parse_cgroup
from spoke.sources.nvml import NO_PROCESS_REASON, NvmlSource

CID = "0b7f4c6a3e9d2b1a8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b"
UID = "8f5c1b4e-5f5a-4c7e-9b1e-2f7e0b1c3d4a"
V1_CGROUPFS = f"""12:memory:/kubepods/burstable/pod{UID}/{CID}
11:devices:/kubepods/burstable/pod{UID}/{CID}
1:name=systemd:/kubepods/burstable/pod{UID}/{CID}
"""
V1_SYSTEMD = (
    f"11:cpuset:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID.replace('-', '_')}"
    f".slice/cri-containerd-{CID}.scope\n"
)
V2_CONTAINERD = (
    f"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID.replace('-', '_')}"
    f".slice/cri-containerd-{CID}.scope\n"
)
V2_CRIO = f"0::/kubepods.slice/kubepods-pod{UID.replace('-', '_')}.slice/crio-{CID}.scope\n"
V2_DOCKER = f"0::/system.slice/docker-{CID}.scope\n"


@pytest.mark.parametrize("text", [V1_CGROUPFS, V1_SYSTEMD, V2_CONTAINERD, V2_CRIO])
def test_kubernetes_cgroup_paths_give_container_and_pod_uid(text: str) -> None:
    identity = parse_cgroup(text)
    assert identity is not None
    assert identity.container_id == CID
    assert identity.pod_uid == UID


def test_plain_docker_scope_gives_container_without_pod() -> None:
    identity = parse_cgroup(V2_DOCKER)
    assert identity is not None and identity.container_id == CID and identity.pod_uid is None


def test_conmon_and_host_processes_are_not_containers() -> None:
    assert (
        parse_cgroup(f"0::/kubepods.slice/kubepods-pod{UID.replace('-', '_')}.slice/crio-conmon-{CID}.scope")
        is None
    )
    assert parse_cgroup("0::/\n") is None
    assert parse_cgroup("0::/user.slice/user-0.slice/session-3.scope\n") is None


@dataclass
class _Util:
    gpu: int
    memory: int = 0


@dataclass
class _Memory:
    total: int
    free: int
    used: int


@dataclass
class _Process:
    pid: int
    usedGpuMemory: int


class FakeNvml:
    """Two GPUs: GPU 0 runs PID 4242 (our pod's container); GPU 1 is idle and cannot report power."""

    NVMLError = pynvml.NVMLError

    def __init__(self, init_error: pynvml.NVMLError | None = None) -> None:
        self.init_error = init_error
        self.inits = 0
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        self.inits += 1
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetMigMode(self, h: int) -> tuple[int, int]:
        return (0, 0)  # MIG-capable boards in whole-GPU mode answer (disabled, disabled)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetUUID(self, h: int) -> str:
        return f"GPU-fake-{h}"

    def nvmlDeviceGetName(self, h: int) -> bytes:
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetUtilizationRates(self, h: int) -> _Util:
        return _Util(gpu=(87, 0)[h])

    def nvmlDeviceGetMemoryInfo(self, h: int) -> _Memory:
        return _Memory(total=85_899_345_920, free=8_589_934_592, used=77_309_411_328)

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        if h == 1:
            raise pynvml.NVMLError_NotSupported()
        return 312_500

    def nvmlDeviceGetComputeRunningProcesses(self, h: int) -> list[_Process]:
        return (
            [_Process(pid=4242, usedGpuMemory=1 << 30), _Process(pid=999_999, usedGpuMemory=0)]
            if h == 0
            else []
        )


@pytest.fixture
def proc_root(tmp_path: Path) -> Path:
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "cgroup").write_text(V2_CONTAINERD)
    return tmp_path


TARGET = SourceTarget("llm", "chat", pods=(PodTarget("llm", "chat-0", container_ids=(CID,)),))
IDLE = SourceTarget("llm", "idle", pods=(PodTarget("llm", "idle-0", container_ids=("f" * 64,)),))


def test_gpu_used_by_a_pods_container_is_attributed_with_converted_units(proc_root: Path) -> None:
    source = NvmlSource(nvml=FakeNvml(), proc_root=proc_root, node="gpu-node-1")
    reading = source.collect([TARGET, IDLE])
    gpus = reading.samples["llm/chat"].values["gpus"]
    assert isinstance(gpus, tuple) and len(gpus) == 1
    gpu = gpus[0]
    assert (gpu.gpu_id, gpu.node) == ("GPU-fake-0", "gpu-node-1")
    assert gpu.utilization_ratio == pytest.approx(0.87)
    assert gpu.power_w == pytest.approx(312.5)
    assert gpu.memory_used_bytes == 77_309_411_328 and gpu.memory_total_bytes == 85_899_345_920
    assert reading.samples["llm/idle"].missing_reasons["gpus"] == NO_PROCESS_REASON
    assert source.available is True


def test_unsupported_query_leaves_only_that_field_missing_and_idle_gpu_unattributed(proc_root: Path) -> None:
    reading = NvmlSource(nvml=FakeNvml(), proc_root=proc_root, node="n").collect([TARGET])
    idle = reading.unattributed_gpus
    assert [g.sample.gpu_id for g in idle] == ["GPU-fake-1"]
    assert idle[0].sample.power_w is None and idle[0].sample.utilization_ratio == 0.0
    assert idle[0].product == "NVIDIA H100 80GB HBM3"
    assert any("power" in w and "Not Supported" in w for w in reading.warnings)
    # PID 999999 has no /proc entry here, as when the spoke lacks hostPID.
    assert any("999999" in w and "hostPID" in w for w in reading.warnings)


def test_container_lookup_from_the_caller_attributes_without_container_ids_in_targets(
    proc_root: Path,
) -> None:
    bare = SourceTarget("llm", "chat", pods=(PodTarget("llm", "chat-0"),))
    lookup = {CID: ("llm", "chat-0")}.get
    reading = NvmlSource(nvml=FakeNvml(), proc_root=proc_root, container_lookup=lookup, node="n").collect(
        [bare]
    )
    assert "gpus" in reading.samples["llm/chat"].values


async def test_init_failure_is_logged_once_and_every_field_is_missing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeNvml(init_error=pynvml.NVMLError_DriverNotLoaded())
    source = NvmlSource(nvml=fake, node="n")
    with caplog.at_level(logging.WARNING, logger="fleetscale.spoke.sources.nvml"):
        first = await source.read([TARGET])
        await source.read([TARGET])
    assert source.available is False
    assert first.samples["llm/chat"].missing_reasons["gpus"].startswith("NVML unavailable: Driver Not Loaded")
    assert fake.inits == 1
    assert len([r for r in caplog.records if "NVML unavailable" in r.getMessage()]) == 1
    await source.aclose()
    assert fake.shutdowns == 0


async def test_aclose_shuts_nvml_down_after_a_successful_init(proc_root: Path) -> None:
    fake = FakeNvml()
    source = NvmlSource(nvml=fake, proc_root=proc_root, node="n")
    await source.read([TARGET])
    await source.aclose()
    assert fake.shutdowns == 1


async def test_real_pynvml_without_a_driver_reports_library_not_found() -> None:
    source = NvmlSource(node="n")
    reading = await source.read([TARGET])
    if source.available:
        pytest.skip("this machine has an NVIDIA driver; the no-driver path cannot be observed here")
    assert reading.samples["llm/chat"].missing_reasons["gpus"] == (
        "NVML unavailable: NVML Shared Library Not Found (NVMLError_LibraryNotFound)"
    )


@dataclass(frozen=True)
class _Mig:
    parent: int
    slot: int


class FakeMigNvml(FakeNvml):
    """GPU 0 in MIG mode with instances in slots 0 and 2 (GPU instance ids 3 and 5, as on the A800
    in tests/fixtures); our pod's process runs on instance 5. GPU 1 is a whole GPU."""

    NVML_DEVICE_MIG_ENABLE = pynvml.NVML_DEVICE_MIG_ENABLE

    def nvmlDeviceGetMigMode(self, h: int) -> tuple[int, int]:
        if h == 0:
            return (pynvml.NVML_DEVICE_MIG_ENABLE, pynvml.NVML_DEVICE_MIG_ENABLE)
        return (0, 0)

    def nvmlDeviceGetMaxMigDeviceCount(self, h: int) -> int:
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h: int, slot: int) -> _Mig:
        if slot not in (0, 2):
            raise pynvml.NVMLError_NotFound()
        return _Mig(h, slot)

    def nvmlDeviceGetGpuInstanceId(self, mig: _Mig) -> int:
        return {0: 3, 2: 5}[mig.slot]

    def nvmlDeviceGetName(self, h: int | _Mig) -> bytes:
        return b"NVIDIA A800-SXM4-80GB MIG 2g.20gb" if isinstance(h, _Mig) else b"NVIDIA A800-SXM4-80GB"

    def nvmlDeviceGetMemoryInfo(self, h: int | _Mig) -> _Memory:
        if isinstance(h, _Mig):
            return _Memory(total=20 << 30, free=(20 << 30) - (5 << 30), used=5 << 30)
        return super().nvmlDeviceGetMemoryInfo(h)

    def nvmlDeviceGetUtilizationRates(self, h: int | _Mig) -> _Util:
        if isinstance(h, _Mig):
            raise pynvml.NVMLError_NotSupported()
        return super().nvmlDeviceGetUtilizationRates(h)

    def nvmlDeviceGetPowerUsage(self, h: int | _Mig) -> int:
        if isinstance(h, _Mig):
            raise pynvml.NVMLError_NotSupported()
        return 78_174  # the whole GPU's

    def nvmlDeviceGetComputeRunningProcesses(self, h: int | _Mig) -> list[_Process]:
        if isinstance(h, _Mig):
            return [_Process(pid=4242, usedGpuMemory=5 << 30)] if h.slot == 2 else []
        return [] if h == 0 else super().nvmlDeviceGetComputeRunningProcesses(h)


def test_mig_instances_get_dcgm_ids_their_own_memory_and_no_copied_power(proc_root: Path) -> None:
    reading = NvmlSource(nvml=FakeMigNvml(), proc_root=proc_root, node="n").collect([TARGET])
    gpus = reading.samples["llm/chat"].values["gpus"]
    assert isinstance(gpus, tuple)
    (instance,) = gpus
    # The id dcgm-exporter gives the same instance: UUID/GPU_I_ID.
    assert instance.gpu_id == "GPU-fake-0/5"
    assert instance.memory_total_bytes == 20 << 30 and instance.memory_used_bytes == 5 << 30
    assert instance.power_w is None and instance.utilization_ratio is None
    ids = sorted(g.sample.gpu_id for g in reading.gpus)
    assert ids == ["GPU-fake-0/3", "GPU-fake-0/5", "GPU-fake-1"]
    assert {g.product for g in reading.gpus if "/" in g.sample.gpu_id} == {"NVIDIA A800-SXM4-80GB MIG 2g.20gb"}
