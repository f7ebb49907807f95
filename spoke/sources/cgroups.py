"""Which container a process runs in, read from ``/proc/<pid>/cgroup``.

NVML tells us the PIDs using a GPU; Kubernetes knows pods by container id
(``pod.status.containerStatuses[].containerID``). The cgroup path is the bridge. Its shape depends
on the cgroup version, the kubelet's cgroup driver and the runtime:

* v1, cgroupfs driver: ``12:memory:/kubepods/burstable/pod<uid>/<64 hex>``
* v1/v2, systemd driver: ``0::/kubepods.slice/kubepods-burstable.slice/
  kubepods-burstable-pod<uid with _>.slice/cri-containerd-<64 hex>.scope`` (``crio-<id>.scope`` for
  CRI-O, ``docker-<id>.scope`` for Docker)
* CRI-O's monitor process lives in ``crio-conmon-<id>.scope``: that is not the container, and is
  not matched.

Only the last path segment that looks like a container is taken, so nested slices do not matter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_CONTAINER = re.compile(r"^(?:cri-containerd-|crio-|docker-|containerd-)?([0-9a-f]{64})(?:\.scope)?$")
_POD_UID = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")


@dataclass(frozen=True, slots=True)
class CgroupIdentity:
    container_id: str
    pod_uid: str | None = None


def parse_cgroup(text: str) -> CgroupIdentity | None:
    """The container (and pod uid, when the path has one) of a ``/proc/<pid>/cgroup`` text."""
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        segments = [s for s in parts[2].split("/") if s]
        for segment in reversed(segments):
            m = _CONTAINER.match(segment)
            if m:
                uid = next((u.group(1) for s in segments if (u := _POD_UID.search(s))), None)
                return CgroupIdentity(m.group(1), uid.replace("_", "-") if uid else None)
    return None


def container_of(pid: int, *, proc_root: Path = Path("/proc")) -> CgroupIdentity | None:
    """Read and parse ``<proc_root>/<pid>/cgroup``. Raises ``OSError`` when the PID is not visible
    (exited, or in another PID namespace: the spoke needs ``hostPID`` to see GPU processes)."""
    return parse_cgroup((proc_root / str(pid) / "cgroup").read_text())
