"""What a backtest replays: the trace, the fleet it may use, the workload and the SLO it is judged by.

Every policy of one comparison runs on its own fresh ``SimWorld`` built from the same scenario, so
they see the same requests, the same GPUs and the same physics; only the controller differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.simulation import DEFAULT_MODEL, GPU_PROFILES, ModelProfile, ServingProfile, Trace, WorkloadSpec
from shared.simulation import serving_profile as _serving_profile
from shared.simulation.fleets import DEMO_CLUSTERS
from shared.simulation.specs import ClusterSpec

Pool = tuple[str, str]
"""(cluster id, GPU type): where replicas of one kind can be placed."""


@dataclass(frozen=True)
class Scenario:
    trace: Trace
    clusters: tuple[ClusterSpec, ...] = DEMO_CLUSTERS
    namespace: str = "inference"
    name: str = "llama-3-8b"
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels the simulated workload carries in telemetry (a policy may select by them)."""
    slo_ttft_s: float = 2.0
    cold_start_s: float = 90.0
    model: ModelProfile = DEFAULT_MODEL
    gpus_per_replica: int = 1
    sample_s: float = 10.0
    """Resolution of the replica timeline."""
    drain_limit_s: float = 900.0
    """After the trace ends, how long requests still in the system may take to finish; requests
    unfinished by then count as SLO misses. Cost is counted up to the trace's end only."""

    def __post_init__(self) -> None:
        if self.slo_ttft_s <= 0:
            raise ValueError(f"slo_ttft_s must be positive, got {self.slo_ttft_s}")
        if self.cold_start_s < 0 or self.sample_s <= 0 or self.drain_limit_s < 0:
            raise ValueError("cold_start_s and drain_limit_s must be >= 0 and sample_s > 0")

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def duration_s(self) -> float:
        return self.trace.duration_s

    def pools(self) -> dict[Pool, int]:
        """Replicas that fit per (cluster, GPU type): a replica needs all its GPUs on one node."""
        out: dict[Pool, int] = {}
        for cluster in self.clusters:
            for node in cluster.nodes:
                key = (cluster.cluster_id, node.gpu_type)
                out[key] = out.get(key, 0) + node.gpus // self.gpus_per_replica
        return {k: v for k, v in out.items() if v > 0 and self.fits(k[1])}

    def fits(self, gpu_type: str) -> bool:
        try:
            self.profile(gpu_type)
        except ValueError:
            return False
        return True

    def profile(self, gpu_type: str) -> ServingProfile:
        return _serving_profile(
            GPU_PROFILES[gpu_type], self.model, gpus_per_replica=self.gpus_per_replica, cold_start_s=self.cold_start_s
        )

    def replica_price(self, gpu_type: str) -> float:
        """USD per replica-hour, at the simulator's price table (what ``SimWorld.cost`` bills)."""
        return GPU_PROFILES[gpu_type].price_per_gpu_hour * self.gpus_per_replica

    def workload_spec(self, initial: Mapping[Pool, int], gateway_cluster: str | None) -> WorkloadSpec:
        return WorkloadSpec(
            namespace=self.namespace,
            name=self.name,
            trace=self.trace,
            model=self.model,
            gpus_per_replica=self.gpus_per_replica,
            cold_start_s=self.cold_start_s,
            initial_replicas={k: n for k, n in initial.items() if n},
            gateway_cluster=gateway_cluster,
        )
