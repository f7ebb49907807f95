"""``python -m spoke`` / ``fleetscale spoke``: build the configured backend and run the agent.

Settings are read once from ``SPOKE_*`` variables. The Kubernetes backend gets its telemetry from
the configured sources (``spoke.telemetry``); the simulated backend is one cluster of a simulated
world driven by a bundled trace, for trying a spoke without a GPU cluster.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

from pydantic import ValidationError

from shared import logs
from shared.errors import ConfigurationError
from shared.lifecycle import failure_status, install_signal_handlers, run
from spoke.agent import run_agent
from spoke.metrics import SpokeMetrics
from spoke.settings import SpokeSettings

USAGE = "usage: fleetscale spoke\n\nSettings come from SPOKE_* environment variables; see README.md."


async def _main(settings: SpokeSettings) -> None:
    stop = asyncio.Event()
    install_signal_handlers(stop)
    metrics = SpokeMetrics(cluster=settings.cluster_id)
    extra: dict[str, Coroutine[Any, Any, Any]] = {}
    if settings.backend == "simulated":
        from shared.simulation import ClusterSpec, NodeSpec, SimWorld, WorkloadSpec, bundled_trace, load_trace
        from spoke.backends.simulated import SimulatedBackend, drive

        nodes = []
        for part in settings.sim_nodes.split(","):
            gpu_type, _, shape = part.partition(":")
            count, _, gpus = shape.partition("x")
            nodes += [NodeSpec(f"{gpu_type.lower()}-{i}", gpu_type, int(gpus)) for i in range(int(count))]
        namespace, _, name = settings.sim_workload.partition("/")
        trace_name = settings.sim_trace
        trace = load_trace(trace_name) if trace_name.endswith(".csv") else bundled_trace(trace_name)
        gpu_type = nodes[0].gpu_type
        world = SimWorld(
            (ClusterSpec(settings.cluster_id, tuple(nodes)),),
            (WorkloadSpec(namespace, name, trace, cold_start_s=settings.sim_cold_start_s,
                          initial_replicas={(settings.cluster_id, gpu_type): settings.sim_initial_replicas}),),
        )
        backend: Any = SimulatedBackend(world, settings.cluster_id)
        extra["simulated world"] = drive(world, time_scale=settings.sim_time_scale, tick_s=0.1, stop=stop)
        sampler = None
    else:
        from spoke.backends.kubernetes import KubernetesBackend, KubernetesSettings
        from spoke.telemetry import Sampler, build_sources

        sampler = Sampler(settings, metrics, build_sources(settings))
        backend = await KubernetesBackend.from_config(
            KubernetesSettings(
                namespaces=tuple(settings.kube_namespaces),
                managed_label_selector=settings.kube_managed_label or None,
                create_variants=settings.kube_create_variants,
                apply_resources=settings.kube_apply_resources,
                measure_starts=settings.kube_measure_starts,
            ),
            sampler=sampler,
            pod_loads=sampler.pod_loads,
        )
        sampler.attach(backend)
    try:
        await run_agent(settings, backend, stop=stop, metrics=metrics, extra_tasks=extra,
                        readiness_detail=sampler.readiness_detail if sampler is not None else None)
    finally:
        await backend.aclose()
        if sampler is not None:
            await sampler.aclose()


def main(argv: list[str] | None = None) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    try:
        settings = SpokeSettings()
    except ValidationError as e:
        print(f"fleetscale spoke: invalid settings:\n{e}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    try:
        run(_main(settings))
    except (ConfigurationError, ValueError) as e:
        print(f"fleetscale spoke: {e}", file=sys.stderr)
        return 2
    except BaseExceptionGroup as failed:  # a root task failed or ended: the process stopped
        return failure_status("fleetscale spoke", failed)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
