"""Live fleet state: clusters with freshness and GPU inventory, workloads with replicas by GPU type,
latest samples, and the policy bound to each. The views are ``hub.web.overview``'s models; this module adds
the routes, their filters, and the list envelopes the OpenAPI document is generated from.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from hub.web.api.errors import json_response
from hub.web.api.http import query_str
from hub.web.api.keys import DECISIONS, POLICIES, STATE
from hub.web.overview import ClusterOverview, WorkloadOverview, cluster_overviews, workload_overviews

routes = web.RouteTableDef()


class ClusterList(BaseModel):
    clusters: list[ClusterOverview]


class WorkloadList(BaseModel):
    workloads: list[WorkloadOverview]


@routes.get("/api/v1/clusters")
async def clusters(request: web.Request) -> web.Response:
    only = query_str(request, "cluster")
    return json_response(ClusterList(clusters=cluster_overviews(request.app[STATE].snapshot(), cluster=only)))


@routes.get("/api/v1/workloads")
async def workloads(request: web.Request) -> web.Response:
    only_workload, only_cluster = query_str(request, "workload"), query_str(request, "cluster")
    snap = request.app[STATE].snapshot()
    body = WorkloadList(workloads=workload_overviews(snap, request.app[DECISIONS], request.app[POLICIES],
                                                     workload=only_workload, cluster=only_cluster))
    return json_response(body)
