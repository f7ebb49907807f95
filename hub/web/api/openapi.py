"""The OpenAPI 3.1 document of the hub's API: one table of operations, schemas from the pydantic models.

``OPERATIONS`` lists every route the app serves, with its parameters, body model and responses;
``tests/hub/test_api_openapi.py`` checks that it and the app's router list the same routes, so the
document cannot drift from the code, and runs schemathesis against the served document.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from hub.decisions.model import Decision
from hub.policy.budget import AIInferenceBudget
from hub.policy.model import AIInferenceAutoscalerPolicy
from hub.web.api.advisor import ExchangeList
from hub.web.api.approvals import ApprovalList, Verdict
from hub.web.api.budgets import BudgetDeleted, BudgetList, BudgetResource
from hub.web.api.decisions import DecisionList
from hub.web.api.errors import ErrorBody, json_response
from hub.web.api.fleet import ClusterList, WorkloadList
from hub.web.api.health import Health
from hub.web.api.history import History
from hub.web.api.policies import ModeChange, PolicyDeleted, PolicyList, PolicyResource
from hub.web.api.resources import WorkloadResources
from hub.web.api.seed import (
    AutoscalerDeleted,
    AutoscalerList,
    AutoscalingMetrics,
    AutoscalingRequest,
    AutoscalingResponse,
)

routes = web.RouteTableDef()

OPENAPI_PATH = "/api/v1/openapi.json"
TEXT: Literal["text"] = "text"
OBJECT: Literal["object"] = "object"
Body = type[BaseModel] | Literal["text", "object"]


@dataclass(frozen=True)
class Param:
    name: str
    where: Literal["query", "header"]
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    responses: Mapping[int, Body]
    body: type[BaseModel] | None = None
    params: tuple[Param, ...] = ()
    example: Mapping[str, Any] | None = None
    """A valid body: documents the call, and seeds schemathesis with one case that succeeds."""
    body_required: bool = True


_REASONS = {
    200: "OK", 201: "Created", 400: "Invalid body, query parameter or header; details name the field",
    404: "Not found", 409: "Conflict: exists, stale revision (details.current), owned by another source "
    "(details.owner), or a decision no longer pending (details.reason)",
    413: "Body too large", 415: "The body is not application/json",
    428: "Precondition required: give If-Match or the body's revision",
    500: "Internal error", 503: "Not ready, or the policy store or decision history did not answer; retry",
}


def _errors(*codes: int) -> dict[int, Body]:
    return {c: ErrorBody for c in (*codes, 500)}


IF_MATCH = Param("If-Match", "header", 'The revision you read, as an entity tag: "12"; * for any',
                 {"type": "string", "pattern": r'^(\*|"[0-9]{1,19}"|[0-9]{1,19})$'})
WORKLOAD = Param("workload", "query", "Only this workload (namespace/name)")
CLUSTER = Param("cluster", "query", "Only this cluster id")
WRITE = (400, 413, 415, 503)

POLICY_EXAMPLE = {
    "id": "llama-3-8b",
    "targets": {"workloads": [{"namespace": "inference", "name": "llama-3-8b"}]},
    "bounds": {"min_replicas": 1, "max_replicas": 8},
    "signals": [{"metric": "ttft", "target": 0.5, "percentile": "p95"}, {"metric": "queue_per_replica", "target": 4}],
}
BUDGET_EXAMPLE = {
    "id": "team-search",
    "team": "search",
    "workloads": {"namespaces": ["search"]},
    "caps": {"gpus": {"H100": 8}, "cost_per_hour": 40.0},
}
SEED_EXAMPLE = {  # the seed guide's first example, less its storage targets (refused: no storage telemetry)
    "workload_name": "nginx-deployment", "workload_namespace": "default", "workload_type": "Deployment",
    "min_replicas": 2, "max_replicas": 10, "target_cpu_percent": 70, "target_memory_percent": 80,
    "target_gpu_percent": 75, "scale_up_policy": {"stabilization_window_seconds": 60, "max_scale_change": 3},
    "scale_down_policy": {"stabilization_window_seconds": 300, "max_scale_change": 2},
}

OPERATIONS: tuple[Operation, ...] = (
    Operation("get", "/healthz", "healthz", "The process is up", "health", {200: Health} | _errors()),
    Operation("get", "/readyz", "readyz", "Connected to NATS, and the evaluation ticks succeed", "health",
              {200: Health} | _errors(503)),
    Operation("get", "/metrics", "metrics", "Prometheus metrics", "health", {200: TEXT} | _errors()),
    Operation("get", OPENAPI_PATH, "openapi", "This document", "meta", {200: OBJECT} | _errors()),
    # fleet
    Operation("get", "/api/v1/clusters", "listClusters", "Clusters: freshness, GPU inventory, replicas by GPU type",
              "fleet", {200: ClusterList} | _errors(400), params=(CLUSTER,)),
    Operation("get", "/api/v1/workloads", "listWorkloads",
              "Workloads: replicas by GPU type, latest samples, bound policy and mode", "fleet",
              {200: WorkloadList} | _errors(400), params=(WORKLOAD, CLUSTER)),
    Operation("get", "/api/v1/workloads/{namespace}/{name}/resources", "getWorkloadResources",
              "Vertical recommendations: per GPU type and container, CPU, memory and GPU memory estimates (VPA's "
              "lower bound, target, upper bound), current requests and limits, and what applying would set",
              "fleet", {200: WorkloadResources} | _errors(404)),
    # decisions
    Operation("get", "/api/v1/decisions", "listDecisions", "Recent decisions, newest first", "decisions",
              {200: DecisionList} | _errors(400),
              params=(WORKLOAD, CLUSTER,
                      Param("since", "query", "Only decisions at or after this RFC 3339 time",
                            {"type": "string", "format": "date-time"}),
                      Param("until", "query", "Only decisions before this RFC 3339 time",
                            {"type": "string", "format": "date-time"}),
                      Param("limit", "query", "At most this many (default 100)",
                            {"type": "integer", "minimum": 1, "maximum": 10000}))),
    Operation("get", "/api/v1/decisions/{id}", "getDecision", "One decision, explained", "decisions",
              {200: Decision} | _errors(404)),
    # history
    Operation("get", "/api/v1/history", "getHistory",
              "The fleet (no workload) or one workload over a window: replicas by cluster/GPU type, cost rate, "
              "TTFT p95 against its objective, queue, load against capacity, and decision markers", "fleet",
              {200: History} | _errors(400, 404),
              params=(WORKLOAD, Param("window_s", "query", "Window in seconds (default 3600)",
                                      {"type": "integer", "minimum": 60, "maximum": 86400}))),
    Operation("get", "/api/v1/advisor", "listAdvisorExchanges",
              "The LLM advisor's latest exchange per workload: summary sent, answer, parsed advice or error",
              "fleet", {200: ExchangeList} | _errors(400), params=(WORKLOAD,)),
    # approvals
    Operation("get", "/api/v1/approvals", "listApprovals",
              "Decisions of approval-mode policies waiting for an operator, oldest first", "approvals",
              {200: ApprovalList} | _errors(400), params=(WORKLOAD,)),
    Operation("post", "/api/v1/approvals/{id}/approve", "approveDecision",
              "Send a pending decision's commands (journalled first); the approved record", "approvals",
              {200: Decision} | _errors(*WRITE, 404, 409), body=Verdict, body_required=False,
              example={"comment": "checked the dashboard"}),
    Operation("post", "/api/v1/approvals/{id}/reject", "rejectDecision",
              "Settle a pending decision unsent; the rejected record", "approvals",
              {200: Decision} | _errors(400, 404, 409, 413, 415), body=Verdict, body_required=False),
    # policies
    Operation("get", "/api/v1/policies", "listPolicies", "Every policy, from every source", "policies",
              {200: PolicyList} | _errors()),
    Operation("post", "/api/v1/policies", "createPolicy", "Create a policy (owned by the rest source)", "policies",
              {201: PolicyResource} | _errors(*WRITE, 409), body=AIInferenceAutoscalerPolicy,
              example=POLICY_EXAMPLE),
    Operation("get", "/api/v1/policies/{id}", "getPolicy", "One policy; ETag is its revision", "policies",
              {200: PolicyResource} | _errors(404)),
    Operation("put", "/api/v1/policies/{id}", "updatePolicy",
              "Replace a policy, if its revision is still the one given (If-Match or body revision)", "policies",
              {200: PolicyResource} | _errors(*WRITE, 404, 409, 428), body=AIInferenceAutoscalerPolicy,
              params=(IF_MATCH,)),
    Operation("patch", "/api/v1/policies/{id}", "setPolicyMode", "Set the mode: enforce, dry-run or approval",
              "policies",
              {200: PolicyResource} | _errors(*WRITE, 404, 409), body=ModeChange, params=(IF_MATCH,),
              example={"mode": "dry-run"}),
    Operation("delete", "/api/v1/policies/{id}", "deletePolicy", "Delete a policy (If-Match optional)", "policies",
              {200: PolicyDeleted} | _errors(400, 404, 409, 503), params=(IF_MATCH,)),
    # budgets
    Operation("get", "/api/v1/budgets", "listBudgets", "Every budget, from every source, with its use against its caps",
              "budgets", {200: BudgetList} | _errors()),
    Operation("post", "/api/v1/budgets", "createBudget", "Create a budget (owned by the rest source)", "budgets",
              {201: BudgetResource} | _errors(*WRITE, 409), body=AIInferenceBudget, example=BUDGET_EXAMPLE),
    Operation("get", "/api/v1/budgets/{id}", "getBudget", "One budget; ETag is its revision", "budgets",
              {200: BudgetResource} | _errors(404)),
    Operation("put", "/api/v1/budgets/{id}", "updateBudget",
              "Replace a budget, if its revision is still the one given (If-Match or body revision)", "budgets",
              {200: BudgetResource} | _errors(*WRITE, 404, 409, 428), body=AIInferenceBudget, params=(IF_MATCH,)),
    Operation("delete", "/api/v1/budgets/{id}", "deleteBudget", "Delete a budget (If-Match optional)", "budgets",
              {200: BudgetDeleted} | _errors(400, 404, 409, 503), params=(IF_MATCH,)),
    # seed compatibility
    Operation("post", "/api/v1/autoscaling", "createAutoscaler", "Seed API: create an autoscaler (a policy)",
              "seed", {201: AutoscalingResponse} | _errors(*WRITE, 409), body=AutoscalingRequest,
              example=SEED_EXAMPLE),
    Operation("get", "/api/v1/autoscaling", "listAutoscalers", "Seed API: every single-workload policy", "seed",
              {200: AutoscalerList} | _errors()),
    Operation("get", "/api/v1/autoscaling/metrics", "autoscalingMetrics", "Seed API: totals", "seed",
              {200: AutoscalingMetrics} | _errors()),
    Operation("get", "/api/v1/autoscaling/{id}", "getAutoscaler", "Seed API: one autoscaler's status", "seed",
              {200: AutoscalingResponse} | _errors(404)),
    Operation("delete", "/api/v1/autoscaling/{id}", "deleteAutoscaler", "Seed API: delete an autoscaler", "seed",
              {200: AutoscalerDeleted} | _errors(404, 409, 503)),
)


def _content(body: Body, refs: Mapping[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    if body == TEXT:
        return {"text/plain": {"schema": {"type": "string"}}}
    if body == OBJECT:
        return {"application/json": {"schema": {"type": "object"}}}
    assert isinstance(body, type)
    return {"application/json": {"schema": refs[body]}}


@functools.cache
def document() -> dict[str, Any]:
    requests = {op.body for op in OPERATIONS if op.body is not None}
    replies = {b for op in OPERATIONS for b in op.responses.values() if isinstance(b, type)}
    keys: list[tuple[type[BaseModel], JsonSchemaMode]]
    keys = [(m, "validation") for m in sorted(requests, key=lambda m: m.__name__)]
    keys += [(m, "serialization") for m in sorted(replies, key=lambda m: m.__name__)]
    schemas, defs = models_json_schema(keys, by_alias=False, ref_template="#/components/schemas/{model}")
    request_refs = {m: schemas[(m, "validation")] for m in requests}
    reply_refs = {m: schemas[(m, "serialization")] for m in replies}
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
                  for n in re.findall(r"{(\w+)}", op.path)]
        params += [{"name": p.name, "in": p.where, "required": False, "description": p.description,
                    "schema": dict(p.schema)} for p in op.params]
        item: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "responses": {str(code): {"description": _REASONS[code], "content": _content(body, reply_refs)}
                          for code, body in sorted(op.responses.items())},
        }
        if params:
            item["parameters"] = params
        if op.body is not None:
            content = _content(op.body, request_refs)
            if op.example is not None:
                content["application/json"]["example"] = dict(op.example)
            item["requestBody"] = {"required": op.body_required, "content": content}
        paths.setdefault(op.path, {})[op.method] = item
    return {
        "openapi": "3.1.0",
        "info": {"title": "Fleetscale hub API", "version": "1",
                 "description": "Multi-cluster GPU inference autoscaling. Errors are {error, details}; "
                                "details name the field. See docs/operations.md."},
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "Roles: viewer (reads), operator (policy writes, dry-run toggles, approvals), "
                               "admin (all). "
                               "Missing or unknown token: 401; too low a role: 403. Off when the hub has no "
                               "token source; /healthz, /readyz and /metrics are open by default.",
            }},
        },
        # A token where the hub has a token source; none where it runs without one.
        "security": [{"bearer": []}, {}],
    }


@routes.get(OPENAPI_PATH)
async def openapi(request: web.Request) -> web.Response:
    return json_response(document())
