"""Live fleet state: clusters with freshness and GPU inventory, workloads with replicas by GPU type,
latest samples, and the policy bound to each.

Everything is read from one ``FleetSnapshot`` per request. Stale clusters are listed (marked
``stale``) but, as in the evaluator, their workloads' numbers do not count. Missing samples stay
``null``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field, create_model

from hub.api.decisions import DecisionRecord
from hub.api.errors import json_response
from hub.api.http import query_str
from hub.api.keys import DECISIONS, POLICIES, STATE
from hub.decisions import placement_json
from hub.policy.binding import bind
from hub.state import ClusterView, WorkloadView
from shared.messages import GpuNode, Samples, VariantStatus, WorkloadReport

routes = web.RouteTableDef()


# --- response models (the OpenAPI document is generated from them) ------------------------------


class GpuTypeInventory(BaseModel):
    capacity_gpus: int
    allocatable_gpus: int
    free_gpus: int


class ClusterOut(BaseModel):
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


class ClusterList(BaseModel):
    clusters: list[ClusterOut]


# The cluster's latest samples, with the per-GPU list summarised; built from ``Samples`` so the two
# cannot drift.
SampleSummary = create_model(
    "SampleSummary",
    __doc__="Latest samples of the workload in the cluster; null: not measured (missing_reasons says why)",
    **{name: (f.annotation, f) for name, f in Samples.model_fields.items() if name != "gpus"},  # type: ignore[call-overload]
    gpu_utilization_ratio=(float | None, Field(description="Mean over the GPUs that reported one")),
    gpu_count=(int, Field(description="GPUs that reported a sample")),
)


class WorkloadCluster(BaseModel):
    kind: str
    age_s: float = Field(description="Seconds since this cluster's last report")
    desired_replicas: int
    ready_replicas: int
    variants: list[VariantStatus]
    samples: SampleSummary  # type: ignore[valid-type]


class BoundPolicy(BaseModel):
    id: str
    revision: int
    mode: Literal["enforce", "dry-run"]
    source: str | None
    matched_by: Literal["name", "labels"]
    overridden: list[str] = Field(description="Other policies that also select the workload and lost")


class WorkloadOut(BaseModel):
    workload: str
    desired_replicas: int = Field(description="Over fresh clusters")
    ready_replicas: int
    replicas_by_gpu_type: dict[str, int] = Field(description="Desired replicas over fresh clusters, by GPU type")
    ready_by_gpu_type: dict[str, int]
    placement: dict[str, int] = Field(description='Desired replicas by "cluster/gpu_type"')
    stale_clusters: list[str]
    clusters: dict[str, WorkloadCluster] = Field(description="Fresh clusters only, by cluster id")
    policy: BoundPolicy | None = Field(description="The policy that scales it, if any")
    last_decision: DecisionRecord | None


class WorkloadList(BaseModel):
    workloads: list[WorkloadOut]


# --- handlers -------------------------------------------------------------------------------------


def _by_gpu_type(reports: list[WorkloadReport], attr: Literal["desired_replicas", "ready_replicas"]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in reports:
        for v in r.variants:
            out[v.gpu_type] = out.get(v.gpu_type, 0) + getattr(v, attr)
        if not r.variants and getattr(r, attr):
            out["unknown"] = out.get("unknown", 0) + getattr(r, attr)
    return dict(sorted(out.items()))


def _cluster_json(c: ClusterView, age_s: float) -> dict[str, object]:
    inventory: dict[str, dict[str, int]] = {}
    for n in c.report.inventory:
        t = inventory.setdefault(n.gpu_type, {"capacity_gpus": 0, "allocatable_gpus": 0, "free_gpus": 0})
        t["capacity_gpus"] += n.capacity_gpus
        t["allocatable_gpus"] += n.allocatable_gpus
        t["free_gpus"] += n.free_gpus
    return {
        "cluster_id": c.cluster_id,
        "stale": c.stale,
        "age_s": round(age_s, 3),
        "sequence": c.report.sequence,
        "interval_s": c.report.interval_s,
        "sent_at": c.report.sent_at.isoformat(),
        "spoke_version": c.report.spoke_version,
        "free_gpus": c.free_gpus(),
        "gpus_by_type": dict(sorted(inventory.items())),
        "inventory": [n.model_dump(mode="json") for n in c.report.inventory],
        "replicas_by_gpu_type": _by_gpu_type(list(c.report.workloads), "desired_replicas"),
        "workloads": [w.workload.key for w in c.report.workloads],
    }


@routes.get("/api/v1/clusters")
async def clusters(request: web.Request) -> web.Response:
    only = query_str(request, "cluster")
    snap = request.app[STATE].snapshot()
    out = [_cluster_json(c, snap.taken_at - c.received_at) for cid, c in sorted(snap.clusters.items())
           if only is None or cid == only]
    return json_response({"clusters": out})


def _samples_json(r: WorkloadReport) -> dict[str, object]:
    s = r.samples
    return s.model_dump(mode="json", exclude={"gpus"}) | {
        "gpu_utilization_ratio": s.gpu_utilization_ratio, "gpu_count": len(s.gpus)}


@routes.get("/api/v1/workloads")
async def workloads(request: web.Request) -> web.Response:
    only_workload = query_str(request, "workload")
    only_cluster = query_str(request, "cluster")
    snap = request.app[STATE].snapshot()
    store = request.app[POLICIES]
    decisions = request.app[DECISIONS]
    bound = {b.view.key: b for b in bind(store.all(), snap.workloads)}

    def selected(view: WorkloadView) -> bool:
        if only_workload is not None and view.key != only_workload:
            return False
        return only_cluster is None or only_cluster in view.reports or only_cluster in view.stale_clusters

    out = []
    for key, view in snap.workloads.items():
        if not selected(view):
            continue
        reports = list(view.reports.values())
        binding = bound.get(key)
        policy = None
        if binding is not None:
            p = binding.policy
            entry = store.entry(p.id)
            policy = {"id": p.id, "revision": p.revision, "mode": p.mode,
                      "source": entry.source.value if entry is not None else None,
                      "matched_by": p.targets.match(key, view.labels) or "name",
                      "overridden": list(binding.overridden)}
        latest = decisions.latest.get(key)
        out.append({
            "workload": key,
            "desired_replicas": view.desired_replicas,
            "ready_replicas": view.ready_replicas,
            "replicas_by_gpu_type": _by_gpu_type(reports, "desired_replicas"),
            "ready_by_gpu_type": _by_gpu_type(reports, "ready_replicas"),
            "placement": placement_json(view.placement()),
            "stale_clusters": list(view.stale_clusters),
            "clusters": {
                cid: {
                    "kind": r.workload.kind.value,
                    "age_s": round(snap.taken_at - snap.clusters[cid].received_at, 3),
                    "desired_replicas": r.desired_replicas,
                    "ready_replicas": r.ready_replicas,
                    "variants": [v.model_dump(mode="json") for v in r.variants],
                    "samples": _samples_json(r),
                }
                for cid, r in sorted(view.reports.items())
            },
            "policy": policy,
            "last_decision": latest.to_json() if latest else None,
        })
    return json_response({"workloads": out})
