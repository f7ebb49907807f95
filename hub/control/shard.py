"""The shard: which workloads this hub decides, the fence its commands carry, its share of free GPUs.

One hub alone (the default, ``HUB_SHARDED`` unset) decides every workload, fences nothing and is
offered every free GPU: ``Shard()`` with no keeper. Sharded (docs/operations.md, "Running several
hubs"), it decides the workloads of the partitions it holds (``hub.control.leases``), stamps each
command with that partition's lease and epoch, and places growth only into its share of each pool's
free GPUs: two shards that both see the same free GPUs must not both fill them (docs/decisions.md,
"Sharded hubs (issue 11)").
"""

from __future__ import annotations

from collections.abc import Callable

from hub.control.leases import LeaseKeeper, lease_key, partition_of
from hub.state import FleetSnapshot, pool_share
from shared.messages import Fence


class Shard:
    def __init__(self, keeper: LeaseKeeper | None = None) -> None:
        self.keeper = keeper

    @property
    def sharded(self) -> bool:
        return self.keeper is not None

    @property
    def version(self) -> int:
        """Grows whenever the partitions held change: the evaluator then re-plans all it holds."""
        return 0 if self.keeper is None else self.keeper.version

    def owns(self, workload_key: str) -> bool:
        if self.keeper is None:
            return True
        return self.keeper.holds(partition_of(workload_key, self.keeper.partitions)) is not None

    def scope(self) -> Callable[[str], bool] | None:
        """The filter of a snapshot of the whole fleet (None: every workload)."""
        return None if self.keeper is None else self.owns

    def fence(self, workload_key: str) -> Fence | None:
        """The lease and epoch a command for this workload carries; None when not sharded, or when the
        partition is not held (then the command is not sent: the evaluator checks ``owns`` first)."""
        if self.keeper is None:
            return None
        partition = partition_of(workload_key, self.keeper.partitions)
        holding = self.keeper.holds(partition)
        if holding is None:
            return None
        return Fence(lease=lease_key(partition, self.keeper.partitions), epoch=holding.epoch)

    def share(self) -> tuple[int, int]:
        """(this hub's rank among the live hubs, how many there are): its part of each pool."""
        if self.keeper is None:
            return 0, 1
        live = self.keeper.live_hubs()
        return live.index(self.keeper.hub_id), len(live)

    def narrow(self, snapshot: FleetSnapshot) -> FleetSnapshot:
        """The snapshot with every cluster offering only this hub's share of its free GPUs."""
        rank, count = self.share()
        if count == 1:
            return snapshot
        return pool_share(snapshot, rank, count)
