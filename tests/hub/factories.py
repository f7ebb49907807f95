"""Builders for hub tests: reports and snapshots without a bus."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.messages import GpuNode, Samples, TelemetryReport, VariantStatus, WorkloadRef, WorkloadReport

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def workload(
    name: str = "llama",
    *,
    variants: dict[str, tuple[int, int]] | None = None,
    waiting: float | None = 0.0,
    ttft_p95: float | None = None,
    gpu_util: float | None = None,
    gpr: int = 1,
) -> WorkloadReport:
    variants = variants if variants is not None else {"H100": (2, 2)}
    desired = sum(d for d, _ in variants.values())
    ready = sum(r for _, r in variants.values())
    gpus = [{"gpu_id": f"g{i}", "utilization_ratio": gpu_util} for i in range(ready)] if gpu_util is not None else []
    return WorkloadReport(
        workload=WorkloadRef(namespace="inference", name=name),
        desired_replicas=desired,
        ready_replicas=ready,
        gpus_per_replica=gpr,
        variants=tuple(VariantStatus(gpu_type=t, desired_replicas=d, ready_replicas=r, gpus_per_replica=gpr)
                       for t, (d, r) in variants.items()),
        samples=Samples.model_validate({"requests_waiting": waiting, "ttft": {"p95_s": ttft_p95}, "gpus": gpus}),
    )


def node(gpu_type: str, free: int, capacity: int = 8, name: str | None = None) -> GpuNode:
    return GpuNode(node=name or f"n-{gpu_type}", gpu_product=gpu_type, gpu_type=gpu_type,
                   capacity_gpus=capacity, allocatable_gpus=capacity, free_gpus=free)


def report(cluster: str, workloads: list[WorkloadReport], nodes: list[GpuNode], *, seq: int = 0,
           sent_at: datetime | None = None) -> TelemetryReport:
    return TelemetryReport(cluster_id=cluster, sequence=seq, sent_at=sent_at or T0 + timedelta(seconds=seq),
                           interval_s=1.0, inventory=tuple(nodes), workloads=tuple(workloads))


class FixedPolicies:
    """The policy store's read side over a fixed list, for API and metrics tests that never write
    policies (the store itself needs a NATS KV bucket)."""

    def __init__(self, *policies: Any) -> None:
        self.policies = list(policies)

    def all(self) -> list[Any]:
        return self.policies

    def get(self, policy_id: str) -> Any:
        return next((p for p in self.policies if p.id == policy_id), None)

    def entry(self, policy_id: str) -> None:
        return None  # no source: these policies were never stored
