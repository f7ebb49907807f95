"""Live fleet state: clusters with freshness and GPU inventory, workloads with replicas by GPU type,
latest samples, and the policy bound to each. The bodies are ``hub.web.overview``'s; this module adds the
routes, their filters, and the response models the OpenAPI document is generated from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field, create_model

from hub.web.api.decisions import DecisionRecord
from hub.web.api.errors import json_response
from hub.web.api.http import query_str
from hub.web.api.keys import DECISIONS, POLICIES, STATE
from hub.web.overview import clusters_json, workloads_json
from shared.messages import GpuNode, Samples, VariantStatus

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
    samples: SampleSummary


class BoundPolicy(BaseModel):
    id: str
    revision: int
    mode: Literal["enforce", "dry-run"]
    source: str | None = Field(description="rest, crd or file")
    matched_by: Literal["name", "labels"] | None
    signals: list[dict[str, Any]] = Field(description="The policy's signals, each with its name (ttft_p95...)")
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


@routes.get("/api/v1/clusters")
async def clusters(request: web.Request) -> web.Response:
    only = query_str(request, "cluster")
    return json_response({"clusters": clusters_json(request.app[STATE].snapshot(), cluster=only)})


@routes.get("/api/v1/workloads")
async def workloads(request: web.Request) -> web.Response:
    only_workload, only_cluster = query_str(request, "workload"), query_str(request, "cluster")
    snap = request.app[STATE].snapshot()
    body = workloads_json(snap, request.app[DECISIONS], request.app[POLICIES], workload=only_workload,
                          cluster=only_cluster)
    return json_response({"workloads": body})
