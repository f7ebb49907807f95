"""The fleet overview: one model per view (a cluster, a workload), shared by the API, the live feed and OpenAPI.

``ClusterOverview`` and ``WorkloadOverview`` are what ``/api/v1/clusters`` and ``/api/v1/workloads``
serve, what the feed's ``fleet`` event carries and what the OpenAPI document describes: the builders
here make the models, and every consumer serialises them with the models' own serialiser, so no
consumer can see another shape. Missing measurements stay ``null``; nothing here fills a gap with a
guess. Each workload names the policy bound to it by the engine's own binding rule
(``hub.policy.binding.bind``), so label selectors and overlaps are resolved as the evaluator resolves
them. Stale clusters are listed (``stale``) but, as in the evaluator, their workloads' numbers do not
count.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field, create_model

from hub.decisions.log import DecisionLog
from hub.decisions.model import Decision, placement_json
from hub.policies.store import PolicyStore, Stored
from hub.policy.binding import bind
from hub.policy.model import Mode, Policy
from hub.state import ClusterView, FleetSnapshot, WorkloadView
from shared.messages import GpuNode, Samples, VariantStatus, WorkloadReport


class PolicySource(Protocol):
    def all(self) -> list[Policy]: ...


def _entry(policies: PolicySource, policy_id: str) -> Stored | None:
    """The stored entry (owner, times) when the source is the store itself."""
    return policies.entry(policy_id) if isinstance(policies, PolicyStore) else None


def by_gpu_type(reports: list[WorkloadReport], attr: Literal["desired_replicas", "ready_replicas"]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in reports:
        for v in r.variants:
            out[v.gpu_type] = out.get(v.gpu_type, 0) + getattr(v, attr)
        if not r.variants and getattr(r, attr):
            out["unknown"] = out.get("unknown", 0) + getattr(r, attr)
    return dict(sorted(out.items()))


# --- clusters ------------------------------------------------------------------------------------


class GpuTypeInventory(BaseModel):
    capacity_gpus: int = 0
    allocatable_gpus: int = 0
    free_gpus: int = 0


class ClusterOverview(BaseModel):
    """One cluster as its latest report shows it, and how fresh that report is."""

    cluster_id: str
    stale: bool = Field(description="No report for 3 report intervals: its capacity and replicas do not count")
    age_s: float = Field(description="Seconds since its last report arrived")
    sequence: int
    interval_s: float
    sent_at: datetime
    spoke_version: str
    free_gpus: dict[str, int] = Field(description="Free GPUs by GPU type")
    gpus_by_type: dict[str, GpuTypeInventory]
    inventory: list[GpuNode]
    replicas_by_gpu_type: dict[str, int] = Field(description="Desired replicas of all workloads, by GPU type")
    workloads: list[str] = Field(description="Workload keys (namespace/name) the cluster reports")

    @classmethod
    def of(cls, c: ClusterView, age_s: float) -> ClusterOverview:
        inventory: dict[str, GpuTypeInventory] = {}
        for n in c.report.inventory:
            t = inventory.setdefault(n.gpu_type, GpuTypeInventory())
            t.capacity_gpus += n.capacity_gpus
            t.allocatable_gpus += n.allocatable_gpus
            t.free_gpus += n.free_gpus
        return cls(
            cluster_id=c.cluster_id,
            stale=c.stale,
            age_s=round(age_s, 3),
            sequence=c.report.sequence,
            interval_s=c.report.interval_s,
            sent_at=c.report.sent_at,
            spoke_version=c.report.spoke_version,
            free_gpus=c.free_gpus(),
            gpus_by_type=dict(sorted(inventory.items())),
            inventory=list(c.report.inventory),
            replicas_by_gpu_type=by_gpu_type(list(c.report.workloads), "desired_replicas"),
            workloads=[w.workload.key for w in c.report.workloads],
        )


def cluster_overviews(snap: FleetSnapshot, *, cluster: str | None = None) -> list[ClusterOverview]:
    return [ClusterOverview.of(c, snap.taken_at - c.received_at) for cid, c in sorted(snap.clusters.items())
            if cluster is None or cid == cluster]


# --- workloads -----------------------------------------------------------------------------------

# The cluster's latest samples, with the per-GPU list summarised; built from ``Samples`` so the two
# cannot drift.
SampleSummary = create_model(
    "SampleSummary",
    __doc__="Latest samples of the workload in the cluster; null: not measured (missing_reasons says why)",
    **{name: (f.annotation, f) for name, f in Samples.model_fields.items() if name != "gpus"},  # type: ignore[call-overload]
    gpu_utilization_ratio=(float | None, Field(description="Mean over the GPUs that reported one")),
    gpu_count=(int, Field(description="GPUs that reported a sample")),
)


def sample_summary(s: Samples) -> BaseModel:
    fields = {name: getattr(s, name) for name in Samples.model_fields if name != "gpus"}
    return SampleSummary(**fields, gpu_utilization_ratio=s.gpu_utilization_ratio, gpu_count=len(s.gpus))


class WorkloadCluster(BaseModel):
    kind: str
    age_s: float = Field(description="Seconds since this cluster's last report")
    desired_replicas: int
    ready_replicas: int
    variants: list[VariantStatus]
    samples: SampleSummary


class BoundPolicy(BaseModel):
    id: str
    revision: int
    mode: Mode
    source: str | None = Field(description="rest, crd or file")
    matched_by: Literal["name", "labels"] | None
    signals: list[dict[str, Any]] = Field(description="The policy's signals, each with its name (ttft_p95...)")
    overridden: list[str] = Field(description="Other policies that also select the workload and lost")

    @classmethod
    def of(cls, policy: Policy, overridden: tuple[str, ...], *, source: str | None = None,
           matched_by: Literal["name", "labels"] | None = None) -> BoundPolicy:
        return cls(id=policy.id, revision=policy.revision, mode=policy.mode, source=source, matched_by=matched_by,
                   signals=[s.model_dump(mode="json") | {"name": s.name} for s in policy.signals],
                   overridden=list(overridden))


class WorkloadOverview(BaseModel):
    """One workload over the fresh clusters, with the policy bound to it and its latest decision."""

    workload: str
    desired_replicas: int = Field(description="Over fresh clusters")
    ready_replicas: int
    replicas_by_gpu_type: dict[str, int] = Field(description="Desired replicas over fresh clusters, by GPU type")
    ready_by_gpu_type: dict[str, int]
    placement: dict[str, int] = Field(description='Desired replicas by "cluster/gpu_type"')
    stale_clusters: list[str]
    clusters: dict[str, WorkloadCluster] = Field(description="Fresh clusters only, by cluster id")
    policy: BoundPolicy | None = Field(description="The policy that scales it, if any")
    last_decision: Decision | None

    @classmethod
    def of(cls, snap: FleetSnapshot, view: WorkloadView, policy: BoundPolicy | None,
           last: Decision | None) -> WorkloadOverview:
        reports = list(view.reports.values())
        return cls(
            workload=view.key,
            desired_replicas=view.desired_replicas,
            ready_replicas=view.ready_replicas,
            replicas_by_gpu_type=by_gpu_type(reports, "desired_replicas"),
            ready_by_gpu_type=by_gpu_type(reports, "ready_replicas"),
            placement=placement_json(view.placement()),
            stale_clusters=list(view.stale_clusters),
            clusters={
                cid: WorkloadCluster(
                    kind=r.workload.kind.value,
                    age_s=round(snap.taken_at - snap.clusters[cid].received_at, 3),
                    desired_replicas=r.desired_replicas,
                    ready_replicas=r.ready_replicas,
                    variants=list(r.variants),
                    samples=sample_summary(r.samples),
                )
                for cid, r in sorted(view.reports.items())
            },
            policy=policy,
            last_decision=last,
        )


def workload_overviews(
    snap: FleetSnapshot, decisions: DecisionLog, policies: PolicySource, *,
    workload: str | None = None, cluster: str | None = None,
) -> list[WorkloadOverview]:
    """Every workload (or the one named, or those the cluster runs), with its bound policy."""

    def selected(view: WorkloadView) -> bool:
        if workload is not None and view.key != workload:
            return False
        return cluster is None or cluster in view.reports or cluster in view.stale_clusters

    bindings = {b.view.key: b for b in bind(policies.all(), snap.workloads)}
    out = []
    for key, view in snap.workloads.items():
        if not selected(view):
            continue
        binding = bindings.get(key)
        policy = None
        if binding is not None:
            entry = _entry(policies, binding.policy.id)
            policy = BoundPolicy.of(binding.policy, binding.overridden,
                                    source=entry.source.value if entry is not None else None,
                                    matched_by=binding.policy.targets.match(key, view.labels))
        out.append(WorkloadOverview.of(snap, view, policy, decisions.latest.get(key)))
    return out


# --- policies ------------------------------------------------------------------------------------


def policy_json(entry: Stored) -> dict[str, Any]:
    """A stored policy as the API shows it: the model, its revision, its owner and its times."""
    return entry.policy.model_dump(mode="json") | {
        "source": entry.source.value,
        "updated_by": entry.updated_by,
        "created_at": None if entry.created_at is None else entry.created_at.isoformat(),
        "updated_at": None if entry.updated_at is None else entry.updated_at.isoformat(),
    }


def policies_json(policies: PolicySource) -> list[dict[str, Any]]:
    out = []
    for p in policies.all():
        entry = _entry(policies, p.id)
        out.append(policy_json(entry) if entry is not None else p.model_dump(mode="json"))
    return out


class FleetOverview(BaseModel):
    """The three list endpoints' bodies in one object (the live feed's periodic ``fleet`` event)."""

    clusters: list[ClusterOverview]
    workloads: list[WorkloadOverview]
    policies: list[dict[str, Any]]


def fleet_json(snap: FleetSnapshot, decisions: DecisionLog, policies: PolicySource) -> FleetOverview:
    return FleetOverview(clusters=cluster_overviews(snap), workloads=workload_overviews(snap, decisions, policies),
                         policies=policies_json(policies))
