"""The simulated cluster backend: a spoke's view of one cluster of a shared ``SimWorld``.

Several spokes in one process may share one world (one per cluster), so the backend keeps no
copies of world state: every call reads the world afresh. Everything runs on one event loop and
the world is synchronous, so no locking is needed. The backend never advances the clock; ``drive``
does, so time passes the same way for every cluster of the world.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from shared.messages import ContainerResources, GpuNode, ResultReason, Samples, ScaleCommand
from shared.simulation import CapacityError, SimWorld, UnknownTargetError
from spoke.backend import PermanentApplyError, WorkloadState

logger = logging.getLogger(__name__)

SIMULATED_LABEL = "fleetscale.io/simulated"
_RESOURCE_FIELDS = ("cpu_request_cores", "cpu_limit_cores", "memory_request_bytes", "memory_limit_bytes")


class SimulatedBackend:
    """``ClusterBackend`` over one cluster of a ``SimWorld``."""

    def __init__(self, world: SimWorld, cluster_id: str, *, window_s: float = 10.0) -> None:
        if cluster_id not in world.cluster_ids:
            known = ", ".join(world.cluster_ids)
            raise ValueError(f"no cluster {cluster_id!r} in the world; clusters: {known}")
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self._world = world
        self._cluster_id = cluster_id
        self._window_s = window_s
        self._resources: dict[tuple[str, str, str], ContainerResources] = {}
        """(workload key, GPU type, container) -> the requests and limits a command set: the simulated
        pod template, which the world itself does not model (its usage does not depend on them)."""

    @property
    def cluster_id(self) -> str:
        return self._cluster_id

    async def inventory(self) -> Sequence[GpuNode]:
        return self._world.inventory(self._cluster_id)

    async def workloads(self) -> Sequence[WorkloadState]:
        return [
            WorkloadState(
                ref=s.ref,
                desired_replicas=s.desired_replicas,
                ready_replicas=s.ready_replicas,
                gpus_per_replica=s.gpus_per_replica,
                variants=s.variants,
                labels={SIMULATED_LABEL: "true"},
            )
            for s in self._world.workload_states(self._cluster_id)
        ]

    async def samples(self, workloads: Sequence[WorkloadState]) -> Mapping[str, Samples]:
        result: dict[str, Samples] = {}
        for w in workloads:
            try:
                samples = self._world.samples(self._cluster_id, w.ref.namespace, w.ref.name, self._window_s)
            except UnknownTargetError:
                continue  # not ours: absent from the map means every sample is missing
            result[w.key] = self._with_template(w.key, samples)
        return result

    def set_container_resources(self, workload_key: str, change: ContainerResources) -> None:
        """Set a container's requests and limits in the simulated pod template (as a command does)."""
        self._resources[(workload_key, change.gpu_type, change.container)] = change

    def _with_template(self, key: str, samples: Samples) -> Samples:
        """The containers' requests and limits as the last applied commands set them."""
        if not self._resources:
            return samples
        out = []
        for c in samples.containers:
            change = self._resources.get((key, c.gpu_type or "", c.container))
            if change is not None:
                update = {k: getattr(change, k) for k in _RESOURCE_FIELDS if getattr(change, k) is not None}
                c = c.model_copy(update=update)
            out.append(c)
        return samples.model_copy(update={"containers": tuple(out)})

    async def apply(self, command: ScaleCommand) -> Mapping[str, int]:
        ref = command.workload
        if command.cluster_id != self._cluster_id:
            raise PermanentApplyError(
                ResultReason.INVALID,
                f"command for cluster {command.cluster_id} reached the backend of {self._cluster_id}",
            )
        states = {s.ref.key: s for s in self._world.workload_states(self._cluster_id)}
        state = states.get(ref.key)
        if state is None:
            raise PermanentApplyError(ResultReason.NOT_FOUND, f"no workload {ref.key} in {self._cluster_id}")
        if command.gpus_per_replica != state.gpus_per_replica:
            raise PermanentApplyError(
                ResultReason.INVALID,
                f"{ref.key} runs {state.gpus_per_replica} GPU(s) per replica, the command asks for "
                f"{command.gpus_per_replica}",
            )
        try:
            wanted = command.replicas_by_gpu_type
            observed = self._world.scale(self._cluster_id, ref.namespace, ref.name, wanted)
            for change in command.resources:
                self.set_container_resources(ref.key, change)
            # The simulated gateway follows the hub's routing rules, as a real one reads the spoke's;
            # a resources-only command (no replicas) says nothing about routing.
            if wanted or not command.resources:
                self._world.set_routing(ref.namespace, ref.name, command.routing)
        except CapacityError as e:
            raise PermanentApplyError(ResultReason.CAPACITY, str(e)) from e
        except UnknownTargetError as e:
            raise PermanentApplyError(ResultReason.NOT_FOUND, str(e)) from e
        except ValueError as e:
            raise PermanentApplyError(ResultReason.INVALID, str(e)) from e
        logger.debug("applied %s to %s in %s: %s", command.command_id, ref.key, self._cluster_id, observed)
        return observed

    async def aclose(self) -> None:
        """Nothing to release: the world belongs to whoever built it, not to one spoke."""


async def drive(
    world: SimWorld,
    *,
    time_scale: float = 1.0,
    tick_s: float = 0.1,
    stop: asyncio.Event,
    until_s: float | None = None,
) -> None:
    """Advance ``world`` so that simulated time = wall time x ``time_scale``, every ``tick_s`` of wall.

    Returns when ``stop`` is set or simulated time reaches ``until_s``. If a tick's work takes
    longer than the tick, simulated time catches up on the next one (it follows the wall clock,
    never the number of ticks).
    """
    if time_scale <= 0 or tick_s <= 0:
        raise ValueError("time_scale and tick_s must be positive")
    loop = asyncio.get_running_loop()
    wall_start = loop.time()
    sim_start = world.now_s
    while not stop.is_set():
        target = sim_start + (loop.time() - wall_start) * time_scale
        if until_s is not None and target >= until_s:
            world.advance(max(until_s, world.now_s))
            return
        world.advance(max(target, world.now_s))
        try:
            await asyncio.wait_for(stop.wait(), timeout=tick_s)
        except TimeoutError:
            pass
