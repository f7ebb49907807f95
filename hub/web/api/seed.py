"""Seed compatibility: the seed orchestrator's ``/api/v1/autoscaling`` API over the policy store.

A client of the seed API (KETI-AI-Storage/AI-Storage-Orchestrator, docs/autoscaling_api_guide.md)
switches without changing its requests. A seed autoscaler *is* a policy: POST maps the seed body
onto an ``AIInferenceAutoscalerPolicy`` (one workload by name, bounds, cpu/memory/gpu_utilization
signals, per-direction behaviour), stored with the ``rest`` source, so it is also listed, edited
and toggled through ``/api/v1/policies``. Its id is deterministic, ``autoscaler-`` and 8 hex of
sha256("namespace/name"): the seed's id shape, and a second POST for the same workload is a 409
instead of a second controller fighting the first.

Deviations, each because the seed's behaviour would hide a fact (docs/operations.md lists them):
* a metric that is not measured is ``null``, never 0;
* storage targets (``target_storage_*``) are refused with 400: there is no storage telemetry;
* validation errors are 400 naming each field (the seed answered 500 with a string);
* stabilisation windows have the HPA's meaning (the seed's code kept the highest scale-up).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from hub.decisions.log import DecisionLog
from hub.policies.store import PolicyExists, Source, Stored
from hub.policy.model import Policy
from hub.state import FleetSnapshot, WorkloadView
from hub.web.api.errors import error, json_response
from hub.web.api.http import actor, read_model, validate
from hub.web.api.keys import DECISIONS, POLICIES, STATE
from shared.messages import ResultStatus, Samples, WorkloadKind

routes = web.RouteTableDef()

ID_PREFIX = "autoscaler-"
INVALID = "Invalid request format"
"""The seed's error text for a body it cannot take."""

DnsLabel = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
DnsSubdomain = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")]
Percent = Annotated[int, Field(ge=0, le=100)]

_STORAGE = ("target_storage_read_throughput_mbps", "target_storage_write_throughput_mbps", "target_storage_iops")
_NO_STORAGE = ("not supported: Fleetscale has no storage I/O telemetry, so this target could never be "
               "honoured; remove it (0 or null is taken as unset)")


def autoscaler_id(namespace: str, name: str) -> str:
    return ID_PREFIX + hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:8]


# --- request --------------------------------------------------------------------------------------


class SeedScalingPolicy(BaseModel):
    """One direction's behaviour. As in the seed (Go's zero values), 0 means unset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stabilization_window_seconds: int | None = Field(
        default=None, ge=0, le=3600, description="0 or absent: the default (0 s up, 300 s down)")
    select_policy: Literal["Max", "Min", "Disabled"] | None = None
    max_scale_change: int | None = Field(
        default=None, ge=0, description="At most this many replicas per 15 s; 0 or absent: the HPA's default rate")

    def rules(self) -> dict[str, Any]:
        return {"stabilization_window_seconds": self.stabilization_window_seconds or None,
                "select_policy": self.select_policy, "max_scale_change": self.max_scale_change or None}


class AutoscalingRequest(BaseModel):
    """The seed's ``AutoscalingRequest``. Targets are percentages; 0 or absent means not set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workload_name: DnsSubdomain
    workload_namespace: DnsLabel
    workload_type: WorkloadKind
    min_replicas: int = Field(ge=1, le=100_000)
    max_replicas: int = Field(ge=1, le=100_000)
    target_cpu_percent: Percent | None = None
    target_memory_percent: Percent | None = None
    target_gpu_percent: Percent | None = None
    target_storage_read_throughput_mbps: int | None = Field(default=None, description=_NO_STORAGE)
    target_storage_write_throughput_mbps: int | None = Field(default=None, description=_NO_STORAGE)
    target_storage_iops: int | None = Field(default=None, description=_NO_STORAGE)
    scale_up_policy: SeedScalingPolicy | None = None
    scale_down_policy: SeedScalingPolicy | None = None

    @field_validator(*_STORAGE)
    @classmethod
    def _no_storage(cls, value: int | None) -> int | None:
        if value:
            raise ValueError(_NO_STORAGE)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas: must be greater than or equal to min_replicas")
        if not (self.target_cpu_percent or self.target_memory_percent or self.target_gpu_percent):
            raise ValueError("target_cpu_percent|target_memory_percent|target_gpu_percent: at least one target "
                             "metric must be set (storage targets are not supported)")
        return self

    @property
    def workload_key(self) -> str:
        return f"{self.workload_namespace}/{self.workload_name}"

    def policy_json(self) -> dict[str, Any]:
        targets = (("cpu", self.target_cpu_percent), ("memory", self.target_memory_percent),
                   ("gpu_utilization", self.target_gpu_percent))
        behavior = {}
        if self.scale_up_policy is not None:
            behavior["scale_up"] = self.scale_up_policy.rules()
        if self.scale_down_policy is not None:
            behavior["scale_down"] = self.scale_down_policy.rules()
        return {
            "id": autoscaler_id(self.workload_namespace, self.workload_name),
            "description": f"seed API autoscaler for {self.workload_type.value} {self.workload_key}",
            "targets": {"workloads": [{"namespace": self.workload_namespace, "name": self.workload_name}]},
            "bounds": {"min_replicas": self.min_replicas, "max_replicas": self.max_replicas},
            "signals": [{"metric": m, "target": t} for m, t in targets if t],
            "behavior": behavior,
            # The seed has no burst mode; its max_scale_change is a promise a panic jump would break.
            "panic": {"enabled": False},
        }


# --- responses ------------------------------------------------------------------------------------


class AutoscalingDetails(BaseModel):
    created_at: datetime | None
    updated_at: datetime | None = Field(description="When the live numbers were measured (newest report)")
    current_replicas: int | None = Field(description="Desired replicas over fresh clusters; null if none reports it")
    desired_replicas: int | None = Field(description="The latest decision's, else the current count within bounds")
    current_cpu_percent: int | None = Field(description="null when not measured")
    current_memory_percent: int | None = Field(description="null when not measured")
    current_gpu_percent: int | None = Field(description="null when not measured")
    last_scale_time: datetime | None
    scale_up_count: int = Field(description="Applied scale-ups in the hub's decision history")
    scale_down_count: int
    workload_namespace: str
    workload_name: str


class AutoscalingResponse(BaseModel):
    autoscaling_id: str
    status: Literal["active", "inactive", "failed"]
    message: str
    details: AutoscalingDetails


class AutoscalerList(BaseModel):
    autoscalers: list[AutoscalingResponse]
    count: int


class AutoscalingMetrics(BaseModel):
    total_autoscalers: int
    active_autoscalers: int
    total_scale_ups: int
    total_scale_downs: int
    average_cpu_utilization: float | None = Field(description="Over active autoscalers that measure CPU; else null")


class AutoscalerDeleted(BaseModel):
    message: str
    autoscaler_id: str


# --- the status of one autoscaler, from live state and the decision log ----------------------------

_READINGS: dict[str, Callable[[Samples], float | None]] = {
    "cpu": lambda s: s.cpu_utilization_ratio,
    "memory": lambda s: s.memory_utilization_ratio,
    "gpu": lambda s: s.gpu_utilization_ratio,
}


def measured_percent(view: WorkloadView, read: Callable[[Samples], float | None]) -> float | None:
    """The fleet's value as the engine's signals read it: the mean over ready replicas of the fresh
    clusters that measured it, in percent; None when none did (never a 0)."""
    pairs = [(v, r.ready_replicas) for r in view.reports.values()
             if r.ready_replicas and (v := read(r.samples)) is not None]
    weight = sum(n for _, n in pairs)
    return 100.0 * sum(v * n for v, n in pairs) / weight if weight else None


def is_autoscaler(policy: Policy) -> bool:
    """A policy the seed's shape can show: exactly one workload, by name."""
    return len(policy.targets.workloads) == 1 and policy.targets.selector is None


def _status(entry: Stored, snap: FleetSnapshot, log: DecisionLog) -> tuple[dict[str, Any], float | None]:
    """The seed's details, and the unrounded CPU % (for the average in /metrics)."""
    policy = entry.policy
    target = policy.targets.workloads[0]
    view = snap.workloads.get(target.key)
    live = view if view is not None and view.reports else None
    measured = {m: None if live is None else measured_percent(live, read) for m, read in _READINGS.items()}
    current = None if live is None else live.desired_replicas
    mine = [d for d in log.recent(workload=target.key, limit=len(log))
            if d.policy_id == policy.id and (entry.created_at is None or d.at >= entry.created_at)]
    applied = [d for d in mine
               if d.mode != "dry-run" and any(r.status is ResultStatus.APPLIED for r in d.results.values())]
    ups = [d for d in applied if d.action == "scale_up"]
    downs = [d for d in applied if d.action == "scale_down"]
    if mine:
        desired: int | None = mine[0].desired_replicas
    elif current is not None:
        desired = min(max(current, policy.bounds.min_replicas), policy.bounds.max_replicas)
    else:
        desired = None
    newest = max((snap.clusters[cid].report.sent_at for cid in live.reports), default=None) if live else None
    last_scale = max((d.at for d in ups + downs), default=None)

    def iso(t: datetime | None) -> str | None:
        return None if t is None else t.isoformat()

    def pct(v: float | None) -> int | None:
        return None if v is None else round(v)

    details = {
        "created_at": iso(entry.created_at),
        "updated_at": iso(newest),
        "current_replicas": current,
        "desired_replicas": desired,
        "current_cpu_percent": pct(measured["cpu"]),
        "current_memory_percent": pct(measured["memory"]),
        "current_gpu_percent": pct(measured["gpu"]),
        "last_scale_time": iso(last_scale),
        "scale_up_count": len(ups),
        "scale_down_count": len(downs),
        "workload_namespace": target.namespace,
        "workload_name": target.name,
    }
    return details, measured["cpu"]


def _response(entry: Stored, snap: FleetSnapshot, log: DecisionLog, message: str | None = None) -> dict[str, Any]:
    active = entry.policy.mode != "dry-run"
    if message is None:
        message = ("Autoscaler is inactive (dry-run: decisions are recorded, no command is sent)" if not active else
                   "Autoscaler is active (approval: each change waits for an operator)"
                   if entry.policy.mode == "approval" else "Autoscaler is active")
    return {"autoscaling_id": entry.policy.id, "status": "active" if active else "inactive", "message": message,
            "details": _status(entry, snap, log)[0]}


def _autoscalers(request: web.Request) -> list[Stored]:
    store = request.app[POLICIES]
    entries = [store.entry(p.id) for p in store.all() if is_autoscaler(p)]
    return [e for e in entries if e is not None]


def _entry(request: web.Request, error_text: str) -> Stored:
    autoscaler = request.match_info["id"]
    entry = request.app[POLICIES].entry(autoscaler)
    if entry is None:
        raise error(404, error_text, f"autoscaler {autoscaler} not found")
    if not is_autoscaler(entry.policy):
        raise error(404, error_text, f"autoscaler {autoscaler} not found: policy {autoscaler} selects workloads by "
                    f"label or names several, so the seed's shape cannot show it; see /api/v1/policies/{autoscaler}")
    return entry


# --- handlers (metrics before {id}: aiohttp matches in registration order) --------------------------


@routes.post("/api/v1/autoscaling")
async def create_autoscaler(request: web.Request) -> web.Response:
    req = await read_model(request, AutoscalingRequest, error_text=INVALID)
    policy = validate(Policy, req.policy_json(), error_text=INVALID)
    store = request.app[POLICIES]
    for other in store.all():
        if other.id != policy.id and any(w.key == req.workload_key for w in other.targets.workloads):
            owner = store.entry(other.id)
            raise error(409, "Workload already has an autoscaling policy", {
                "workload": req.workload_key, "policy_id": other.id,
                "source": owner.source.value if owner is not None else None})
    try:
        await store.create(policy, source=Source.REST, actor=actor(request))
    except PolicyExists as e:
        raise error(409, "Autoscaler already exists", e.details | {"workload": req.workload_key}) from None
    entry = store.entry(policy.id)
    assert entry is not None  # just written
    body = _response(entry, request.app[STATE].snapshot(), request.app[DECISIONS], "Autoscaler created successfully")
    return json_response(body, status=201)


@routes.get("/api/v1/autoscaling")
async def list_autoscalers(request: web.Request) -> web.Response:
    snap, log = request.app[STATE].snapshot(), request.app[DECISIONS]
    items = [_response(e, snap, log) for e in _autoscalers(request)]
    return json_response({"autoscalers": items, "count": len(items)})


@routes.get("/api/v1/autoscaling/metrics")
async def autoscaling_metrics(request: web.Request) -> web.Response:
    snap, log = request.app[STATE].snapshot(), request.app[DECISIONS]
    entries = _autoscalers(request)
    ups = downs = 0
    cpu: list[float] = []
    for entry in entries:
        details, cpu_percent = _status(entry, snap, log)
        ups += details["scale_up_count"]
        downs += details["scale_down_count"]
        if entry.policy.mode != "dry-run" and cpu_percent is not None:
            cpu.append(cpu_percent)
    return json_response({
        "total_autoscalers": len(entries),
        "active_autoscalers": sum(1 for e in entries if e.policy.mode != "dry-run"),
        "total_scale_ups": ups,
        "total_scale_downs": downs,
        "average_cpu_utilization": round(sum(cpu) / len(cpu), 2) if cpu else None,
    })


@routes.get("/api/v1/autoscaling/{id}")
async def get_autoscaler(request: web.Request) -> web.Response:
    entry = _entry(request, "Autoscaler not found")
    return json_response(_response(entry, request.app[STATE].snapshot(), request.app[DECISIONS]))


@routes.delete("/api/v1/autoscaling/{id}")
async def delete_autoscaler(request: web.Request) -> web.Response:
    entry = _entry(request, "Failed to delete autoscaler")
    await request.app[POLICIES].delete(entry.policy.id, source=Source.REST)
    return json_response({"message": "Autoscaler deleted successfully", "autoscaler_id": entry.policy.id})
