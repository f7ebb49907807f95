"""The hub's targets as KEDA reads them: replicas per (workload, GPU type) on this cluster.

Written by the KEDA actuator when a command arrives, read by the gRPC scaler. A target the hub has
not sent is absent, not zero: KEDA then gets an error and uses the ScaledObject's ``fallback``,
which is the operator's choice, not ours. Every change wakes the ``StreamIsActive`` streams.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class KedaTargets:
    _replicas: dict[str, dict[str, int]] = field(default_factory=dict)
    """Workload key (namespace/name) -> GPU type -> replicas, as the newest command set them."""
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    version: int = 0

    async def set(self, workload: str, replicas_by_gpu_type: Mapping[str, int]) -> dict[str, int]:
        """Merge a command's counts (a type absent from the command keeps its count, as with /scale)."""
        current = self._replicas.setdefault(workload, {})
        current.update(replicas_by_gpu_type)
        async with self._changed:
            self.version += 1
            self._changed.notify_all()
        return dict(current)

    def replicas(self, workload: str, gpu_type: str | None = None) -> int | None:
        """The target for one GPU type, or all of the workload's types summed; None when never set."""
        by_type = self._replicas.get(workload)
        if by_type is None:
            return None
        if gpu_type is None:
            return sum(by_type.values())
        return by_type.get(gpu_type)

    async def wait_for_change(self, seen: int) -> int:
        """Return the version once it is newer than ``seen``."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.version != seen)
            return self.version
