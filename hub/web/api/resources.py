"""``/api/v1/workloads/{namespace}/{name}/resources``: vertical recommendations (docs/vertical.md).

Per GPU type and container: CPU, memory and GPU memory estimates (lower bound, target, upper bound,
observed peak) from VPA's decaying histograms, the requests and limits the containers run with, the
requests and limits a rollout would set, and how much history stands behind them. Nothing here
applies anything.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from hub.policy.binding import bind
from hub.web.api.errors import error, json_response
from hub.web.api.keys import POLICIES, RESOURCES, STATE

routes = web.RouteTableDef()


class ResourceEstimate(BaseModel):
    lower: float | None = Field(description="VPA's lower bound: p50 + margin, by confidence; null: not measured")
    target: float | None = Field(description="p90 + 15 % margin (memory: of the per-interval peaks)")
    upper: float | None = Field(description="p95 + margin, widened by low confidence; null: unbounded or not measured")
    peak: float | None = Field(description="Highest use observed since the hub began watching")


class ResourceValues(BaseModel):
    cpu_request_cores: float | None
    cpu_limit_cores: float | None
    memory_request_bytes: float | None
    memory_limit_bytes: float | None


class ContainerResources(BaseModel):
    gpu_type: str
    container: str
    cpu_cores: ResourceEstimate
    memory_bytes: ResourceEstimate
    gpu_memory_bytes: ResourceEstimate = Field(description="Informational: GPUs are allocated whole")
    current: ResourceValues = Field(description="As the containers' spec states them (null: not set)")
    proposal: ResourceValues = Field(
        description="What applying would set: targets, memory never below its peak, limits in their old ratio")
    confidence_days: float = Field(description="min(days of history, samples / 1440), as VPA's")
    samples: int


class WorkloadResources(BaseModel):
    workload: str
    policy_id: str | None = Field(description="The policy bound to the workload, if any")
    apply: bool = Field(description="Whether that policy applies the proposals (resources.apply)")
    containers: list[ContainerResources]


@routes.get("/api/v1/workloads/{namespace}/{name}/resources")
async def resources(request: web.Request) -> web.Response:
    key = f"{request.match_info['namespace']}/{request.match_info['name']}"
    history, state = request.app[RESOURCES], request.app[STATE]
    recs = history.recommend(key)
    if not recs and not state.has_workload(key):
        raise error(404, "workload not found", {"workload": key})
    snap = state.snapshot(only=(key,))
    binding = next((b for b in bind(request.app[POLICIES].all(), snap.workloads) if b.view.key == key), None)
    body = WorkloadResources(
        workload=key,
        policy_id=binding.policy.id if binding is not None else None,
        apply=binding is not None and binding.policy.resources.apply,
        containers=[ContainerResources.model_validate(r.to_json()) for r in recs],
    )
    return json_response(body)
