"""A small two-cluster simulated world for the control-loop tests, and a driver task for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from shared.simulation import ClusterSpec, NodeSpec, SimWorld, WorkloadSpec, synthetic
from spoke.backends.simulated import drive

NS, NAME = "inference", "llama"
KEY = f"{NS}/{NAME}"


def two_cluster_world(
    *, low: float = 1.0, high: float = 60.0, step_at: float = 20.0, step_back: float | None = None,
    initial: dict[tuple[str, str], int] | None = None, duration: float = 3600.0,
) -> SimWorld:
    trace = synthetic("step", duration_s=duration, rate_per_s=low, step_at_s=step_at, step_rate_per_s=high,
                      step_back_at_s=step_back, input_tokens=512, output_tokens=64, seed=3)
    return SimWorld(
        (
            ClusterSpec("alpha", (NodeSpec("a-0", "H100", 8),)),
            ClusterSpec("beta", tuple(NodeSpec(f"b-{i}", "L4", 4) for i in range(2))),
        ),
        (WorkloadSpec(NS, NAME, trace, cold_start_s=2.0, initial_replicas=initial or {("alpha", "H100"): 1}),),
    )


@asynccontextmanager
async def driven(world: SimWorld, time_scale: float) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(drive(world, time_scale=time_scale, tick_s=0.05, stop=stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
