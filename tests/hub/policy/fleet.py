"""A small fleet for engine tests: clusters reporting one workload, fed to a real FleetState."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hub.policy.advice import WorkloadAdvice
from hub.policy.engine import Engine, Recommendation
from hub.policy.model import Policy
from hub.state import FleetState
from shared.messages import (
    GpuNode,
    Samples,
    StartTimes,
    TelemetryReport,
    VariantStatus,
    WorkloadRef,
    WorkloadReport,
)
from tests.hub.factories import T0

KEY = "inference/llama"


def policy(signals: list[dict[str, Any]], **kw: Any) -> Policy:
    doc: dict[str, Any] = {"id": "llama", "targets": {"workloads": [{"namespace": "inference", "name": "llama"}]},
                           "signals": signals, "bounds": {"min_replicas": 1, "max_replicas": 40}}
    doc.update(kw)
    return Policy.model_validate(doc)


def samples(**fields: Any) -> Samples:
    """``Samples`` with a 10 s window; ``ttft=(p50, p95, p99)`` or a number for p95 alone."""
    ttft = fields.pop("ttft", None)
    if isinstance(ttft, (int, float)):
        fields["ttft"] = {"p95_s": ttft}
    elif ttft is not None:
        fields["ttft"] = dict(zip(("p50_s", "p95_s", "p99_s"), ttft, strict=True))
    gpu_util = fields.pop("gpu_util", None)
    ready = fields.pop("_ready", 1)
    if gpu_util is not None:
        fields["gpus"] = [{"gpu_id": f"g{i}", "utilization_ratio": gpu_util} for i in range(ready)]
    fields.setdefault("window_s", 10.0)
    return Samples.model_validate(fields)


@dataclass
class Cluster:
    cluster_id: str
    gpu_type: str = "H100"
    desired: int = 2
    ready: int = 2
    free_gpus: int = 8
    samples: dict[str, Any] = field(default_factory=dict)
    starts: tuple[StartTimes, ...] = ()
    """The variant's measured start times (protocol 1.3)."""

    def report(self, seq: int) -> TelemetryReport:
        variants = (VariantStatus(gpu_type=self.gpu_type, desired_replicas=self.desired, ready_replicas=self.ready,
                                  starts=self.starts),) if self.desired or self.ready else ()
        w = WorkloadReport(workload=WorkloadRef(namespace="inference", name="llama"), desired_replicas=self.desired,
                           ready_replicas=self.ready, variants=variants,
                           samples=samples(_ready=self.ready, **self.samples))
        node = GpuNode(node=f"{self.cluster_id}-n", gpu_product=self.gpu_type, gpu_type=self.gpu_type,
                       capacity_gpus=16, allocatable_gpus=16, free_gpus=self.free_gpus)
        return TelemetryReport(cluster_id=self.cluster_id, sequence=seq, sent_at=T0 + timedelta(seconds=seq),
                               interval_s=1.0, inventory=(node,), workloads=(w,))


@dataclass
class Fleet:
    """Clusters whose reports are re-sent at every ``evaluate``; change them between calls."""

    clusters: list[Cluster]
    engine: Engine = field(default_factory=Engine)
    state: FleetState = field(default_factory=FleetState)
    seq: int = 0

    def evaluate(self, p: Policy, now: float, advice: Mapping[str, WorkloadAdvice] | None = None) -> Recommendation:
        self.seq += 1
        for c in self.clusters:
            self.state.ingest(c.report(self.seq), now=now)
        recs = self.engine.evaluate(self.state.snapshot(now=now), [p], advice=advice)
        assert len(recs) == 1
        return recs[0]

    def follow(self, rec: Recommendation) -> None:
        """Apply the recommendation to the first cluster, replicas ready at once (a perfect spoke)."""
        c = self.clusters[0]
        others = sum(x.desired for x in self.clusters[1:])
        c.desired = c.ready = max(rec.desired_replicas - others, 0)
