"""What a backtest replays: the trace, the fleet it may use, the workload and the SLO it is judged by.

Every policy of one comparison runs on its own fresh ``SimWorld`` built from the same scenario, so
they see the same requests, the same GPUs, the same physics and the same start: the scenario's
initial fleet (default one ready replica of the cheapest GPU type, see ``initial_fleet``), the
gateway's flow control, and the scored window after ``warmup_s``. Only the controller differs.

A ``FleetScenario`` is several workloads replayed together on one fleet, each a ``Scenario`` of its
own (its trace, name and initial replicas) over the same clusters: their replicas take GPUs from the
same nodes, so GPUs one workload holds are not free for another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from shared.simulation import (
    DEFAULT_MODEL,
    GPU_PROFILES,
    FlowControl,
    ModelProfile,
    ServingProfile,
    Trace,
    WorkloadSpec,
)
from shared.simulation import serving_profile as _serving_profile
from shared.simulation.fleets import DEMO_CLUSTERS
from shared.simulation.specs import ClusterSpec

DEFAULT_WARMUP_S = 600.0
DEFAULT_CONTEXT_TOKENS = 131_072
"""Llama-3.1-8B-Instruct's context window (128K tokens, model card)."""

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
    warmup_s: float = DEFAULT_WARMUP_S
    """Start of the scored window (to the trace's end); every figure is also given for the whole run."""
    initial: Mapping[Pool, int] | None = None
    """Replicas ready at time 0 for every policy; None: ``initial_fleet``'s default."""
    flow_control: FlowControl | None = field(default_factory=FlowControl)
    """The gateway's flow control, the same for every policy (None: requests go to pods at once)."""
    context_tokens: int = DEFAULT_CONTEXT_TOKENS
    """The model's context window; longer requests are clipped (``clip_to_context``)."""

    def __post_init__(self) -> None:
        if self.slo_ttft_s <= 0:
            raise ValueError(f"slo_ttft_s must be positive, got {self.slo_ttft_s}")
        if self.cold_start_s < 0 or self.sample_s <= 0 or self.drain_limit_s < 0 or self.warmup_s < 0:
            raise ValueError("cold_start_s, drain_limit_s and warmup_s must be >= 0 and sample_s > 0")
        if self.context_tokens < 2:
            raise ValueError(f"context_tokens must be at least 2, got {self.context_tokens}")

    @property
    def scored_from_s(self) -> float:
        """Start of the scored window: the warm-up, or 0 for a trace shorter than twice the warm-up."""
        return self.warmup_s if self.warmup_s * 2 <= self.duration_s else 0.0

    def initial_fleet(self) -> dict[Pool, int]:
        """The fleet every policy starts from, ready at time 0.

        Default: one replica of the cheapest GPU type (by replica-hour; first cluster in order on a
        tie), the smallest fleet that serves at all and what a scale-from-one autoscaler starts
        with. Everything else a policy wants at time 0 cold-starts, whatever the policy; the first
        burst is therefore the same surprise for all of them, and the scored window starts after it.
        """
        if self.initial is not None:
            return {k: n for k, n in self.initial.items() if n}
        pools = self.pools()
        if not pools:
            return {}
        return {min(pools, key=lambda p: (self.replica_price(p[1]), p)): 1}

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
            flow_control=self.flow_control,
        )


@dataclass(frozen=True)
class FleetScenario:
    """Several workloads on one fleet: one ``Scenario`` each, judged over the same scored window.

    They must share the clusters, the trace length and the warm-up (one scored window for the fleet),
    and the SLO and model (so that the fleet's total attainment counts every request by one rule).
    """

    name: str
    workloads: tuple[Scenario, ...]

    def __post_init__(self) -> None:
        if not self.workloads:
            raise ValueError("a fleet scenario needs at least one workload")
        keys = [s.key for s in self.workloads]
        if len(set(keys)) != len(keys):
            raise ValueError(f"workloads repeat: {', '.join(keys)}")
        first = self.workloads[0]
        for s in self.workloads[1:]:
            shared = ("clusters", "duration_s", "warmup_s", "slo_ttft_s", "model", "context_tokens", "gpus_per_replica")
            for attr in shared:
                if getattr(s, attr) != getattr(first, attr):
                    raise ValueError(f"workload {s.key}: {attr} differs from {first.key}'s; the workloads of a fleet "
                                     "share it")

    @classmethod
    def of(cls, name: str, traces: Sequence[tuple[str, Trace]], **settings: object) -> FleetScenario:
        """One ``Scenario(trace, name=workload, **settings)`` per (workload name, trace)."""
        return cls(name, tuple(Scenario(trace, name=workload, **settings) for workload, trace in traces))  # type: ignore[arg-type]

    @property
    def clusters(self) -> tuple[ClusterSpec, ...]:
        return self.workloads[0].clusters

    @property
    def duration_s(self) -> float:
        return self.workloads[0].duration_s

    @property
    def scored_from_s(self) -> float:
        return self.workloads[0].scored_from_s

    def merged(self) -> Scenario:
        """The fleet as one scenario (every workload's requests in one trace, their initial fleets summed):
        what the fleet's totals are computed over. Never replayed."""
        rows = sorted(
            (t, i, o) for s in self.workloads
            for t, i, o in zip(s.trace.arrival_s, s.trace.input_tokens, s.trace.output_tokens, strict=True)
        )
        trace = Trace(self.name, tuple(r[0] for r in rows), tuple(r[1] for r in rows), tuple(r[2] for r in rows),
                      self.duration_s)
        initial: dict[Pool, int] = {}
        for s in self.workloads:
            for pool, n in s.initial_fleet().items():
                initial[pool] = initial.get(pool, 0) + n
        return replace(self.workloads[0], trace=trace, name="fleet", initial=initial)


def clip_to_context(trace: Trace, context_tokens: int) -> tuple[Trace, int]:
    """The trace with every request fitted into the context window, and how many were clipped.

    A request of ``input + output`` tokens over the window keeps its output (up to the window less
    one prompt token) and loses the start of its prompt, as a client truncating history would.
    """
    inputs, outputs, clipped = [], [], 0
    for i, o in zip(trace.input_tokens, trace.output_tokens, strict=True):
        if i + o > context_tokens:
            clipped += 1
            o = min(o, context_tokens - 1)
            i = context_tokens - o
        inputs.append(i)
        outputs.append(o)
    if not clipped:
        return trace, 0
    return replace(trace, input_tokens=tuple(inputs), output_tokens=tuple(outputs)), clipped
