"""Wire messages between spokes and the hub: the one place their shape is defined.

Every message that crosses a process boundary is a frozen pydantic model here. The rules, which
`docs/protocol.md` spells out for third-party implementers:

* **Versioned.** Each message carries ``protocol_version``. A receiver accepts any message whose
  major version it knows (``PROTOCOL_VERSION``) and rejects others as malformed. Additive changes
  (new optional fields) keep the version; anything else bumps it.
* **Open world inbound.** Unknown fields are ignored (``extra="ignore"``), so a newer spoke can talk
  to an older hub and the other way round; tests validate with ``extra="forbid"`` to catch typos.
* **Units in names.** Seconds are ``_s``, ratios in [0, 1] are ``_ratio``, bytes ``_bytes``,
  watts ``_w``, per-second rates ``_per_s``. Nothing is in percent on the wire.
* **Missing is explicit.** Every measurement is ``float | None``; ``None`` (JSON ``null`` or an absent
  key) means *not measured*, and ``missing_reasons`` may say why. A missing value is never a zero.
* **Absolute commands.** A scale command carries the absolute replica count per GPU type, never a
  delta, so replaying or re-delivering one is harmless.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

PROTOCOL_VERSION = 1
"""Major version of the wire protocol spoken by this code."""

_TOKEN = r"^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$"
ClusterId = Annotated[str, StringConstraints(pattern=_TOKEN)]
"""A cluster id doubles as a NATS subject token, so it is a DNS-label-like lower-case string."""

KubeName = Annotated[str, StringConstraints(min_length=1, max_length=253)]
Ratio = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Count = Annotated[int, Field(ge=0)]


def utcnow() -> datetime:
    return datetime.now(UTC)


class WireModel(BaseModel):
    """Base of every wire message: frozen, open-world inbound, orjson on the wire."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    protocol_version: int = Field(
        default=PROTOCOL_VERSION,
        description="Major protocol version. Receivers reject versions they do not know.",
    )

    @model_validator(mode="after")
    def _known_version(self) -> Self:
        if self.protocol_version != PROTOCOL_VERSION:
            raise ValueError(
                f"protocol_version {self.protocol_version} is not supported (this side speaks "
                f"{PROTOCOL_VERSION})"
            )
        return self

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=False))

    @classmethod
    def from_bytes(cls, data: bytes | str) -> Self:
        return cls.model_validate_json(data)


class Part(BaseModel):
    """Base of nested (non-top-level) parts: frozen and open-world like the messages."""

    model_config = ConfigDict(frozen=True, extra="ignore")


# --- telemetry -----------------------------------------------------------------------------------


class WorkloadKind(StrEnum):
    DEPLOYMENT = "Deployment"
    STATEFULSET = "StatefulSet"
    REPLICASET = "ReplicaSet"


class WorkloadRef(Part):
    """Identifies a workload inside one cluster. The same (namespace, name) in several clusters is
    one logical workload to the hub."""

    namespace: KubeName
    name: KubeName
    kind: WorkloadKind = WorkloadKind.DEPLOYMENT

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class GpuNode(Part):
    """One node's GPUs, as the cluster's inventory sees them."""

    node: KubeName
    gpu_product: str = Field(description="Value of the node's nvidia.com/gpu.product label, e.g. NVIDIA-H100-80GB-HBM3")
    gpu_type: str = Field(description="Normalised short GPU type used for placement and prices, e.g. H100")
    capacity_gpus: Count
    allocatable_gpus: Count
    free_gpus: Count = Field(description="Allocatable minus GPUs requested by running or pending pods")


class GpuSample(Part):
    """One GPU serving the workload. Any field may be missing (null)."""

    gpu_id: str = Field(description="GPU UUID, or node/index when the UUID is unknown")
    node: str | None = None
    utilization_ratio: Ratio | None = None
    memory_used_bytes: NonNegative | None = None
    memory_total_bytes: NonNegative | None = None
    power_w: NonNegative | None = None


class Percentiles(Part):
    """Latency percentiles over the spoke's window, in seconds. Any may be missing."""

    p50_s: NonNegative | None = None
    p95_s: NonNegative | None = None
    p99_s: NonNegative | None = None

    def at(self, percentile: Literal["p50", "p95", "p99"]) -> float | None:
        return getattr(self, f"{percentile}_s")


class Samples(Part):
    """What the spoke measured for one workload over the last window.

    ``None`` means *not measured*; it is never a zero. ``missing_reasons`` maps a field name to why
    it is missing (source down, engine does not export it, no requests in the window...).
    Queue counts are totals over the workload's replicas in the cluster; ratios are means.
    """

    window_s: NonNegative | None = Field(default=None, description="Length of the window the samples cover")
    gpus: tuple[GpuSample, ...] = ()
    ttft: Percentiles = Percentiles()
    itl: Percentiles = Percentiles()
    e2e: Percentiles = Percentiles()
    requests_waiting: NonNegative | None = None
    requests_running: NonNegative | None = None
    kv_cache_usage_ratio: Ratio | None = None
    request_rate_per_s: NonNegative | None = None
    prompt_tokens_per_s: NonNegative | None = None
    generation_tokens_per_s: NonNegative | None = None
    cpu_utilization_ratio: Annotated[float, Field(ge=0.0)] | None = None
    memory_utilization_ratio: Annotated[float, Field(ge=0.0)] | None = None
    missing_reasons: dict[str, str] = Field(default_factory=dict)

    @property
    def gpu_utilization_ratio(self) -> float | None:
        """Mean utilisation over the GPUs that reported one; missing if none did."""
        values = [g.utilization_ratio for g in self.gpus if g.utilization_ratio is not None]
        return sum(values) / len(values) if values else None


class VariantStatus(Part):
    """Replicas of one workload on one GPU type in one cluster."""

    gpu_type: str
    desired_replicas: Count
    ready_replicas: Count
    gpus_per_replica: Count = 1


class WorkloadReport(Part):
    workload: WorkloadRef
    desired_replicas: Count
    ready_replicas: Count
    gpus_per_replica: Count = Field(default=1, description="nvidia.com/gpu requested per replica")
    variants: tuple[VariantStatus, ...] = Field(
        default=(), description="Replicas split by GPU type; empty when the type is unknown"
    )
    samples: Samples = Samples()
    labels: dict[str, str] = Field(default_factory=dict)


class TelemetryReport(WireModel):
    """One per spoke per interval, over core NATS. It doubles as the spoke's heartbeat."""

    type: Literal["telemetry"] = "telemetry"
    cluster_id: ClusterId
    sequence: Count = Field(description="Monotonic per spoke process; restarts from 0 with the spoke")
    sent_at: datetime = Field(
        description="When the spoke started reading the cluster for this report: its contents are at least this fresh"
    )
    interval_s: Annotated[float, Field(gt=0)] = Field(
        description="The spoke's report interval; the hub marks the cluster stale after 3 missed"
    )
    spoke_version: str = ""
    inventory: tuple[GpuNode, ...] = ()
    workloads: tuple[WorkloadReport, ...] = ()


# --- commands ------------------------------------------------------------------------------------


class ScaleCommand(WireModel):
    """Set a workload's replicas in one cluster, absolutely, split by GPU type. Over JetStream."""

    type: Literal["scale"] = "scale"
    command_id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=128)
    cluster_id: ClusterId
    workload: WorkloadRef
    replicas_by_gpu_type: dict[str, Count] = Field(
        description="Absolute replicas per GPU type; a type absent from the map keeps its replicas"
    )
    gpus_per_replica: Count = 1
    policy_id: str
    policy_revision: Count = 0
    reason: str = ""
    issued_at: datetime = Field(default_factory=utcnow)
    deadline: datetime

    @property
    def total_replicas(self) -> int:
        return sum(self.replicas_by_gpu_type.values())

    @model_validator(mode="after")
    def _deadline_after_issue(self) -> Self:
        if self.deadline <= self.issued_at:
            raise ValueError("deadline must be after issued_at")
        return self


class ResultStatus(StrEnum):
    APPLIED = "applied"
    REJECTED = "rejected"
    FAILED = "failed"


class ResultReason(StrEnum):
    APPLIED = "applied"
    SUPERSEDED = "superseded"  # older than a command already applied to the workload
    EXPIRED = "expired"  # past its deadline when the spoke got it
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"  # another controller (HPA, KEDA) owns the workload
    FORBIDDEN = "forbidden"
    INVALID = "invalid"
    CAPACITY = "capacity"  # not enough free GPUs of the asked type
    BACKEND_ERROR = "backend_error"


class CommandResult(WireModel):
    """What became of a command. Over JetStream; published before the command is acknowledged."""

    type: Literal["result"] = "result"
    command_id: str
    cluster_id: ClusterId
    workload: WorkloadRef
    status: ResultStatus
    reason: ResultReason
    observed_replicas_by_gpu_type: dict[str, Count] = Field(default_factory=dict)
    error: str | None = None
    completed_at: datetime = Field(default_factory=utcnow)


class HubHeartbeat(WireModel):
    """The hub is deciding. Core NATS, every ``interval_s``; spokes that stop hearing it hold what
    they run (``spoke.autonomy``)."""

    type: Literal["heartbeat"] = "heartbeat"
    sent_at: datetime = Field(default_factory=utcnow)
    interval_s: float = Field(gt=0, le=3600, description="Seconds until the next heartbeat")


M = TypeVar("M", bound=WireModel)

CLUSTER_ID_PATTERN = re.compile(_TOKEN)


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every wire message, keyed by file stem (published in docs/protocol/)."""
    return {
        "telemetry-report": TelemetryReport.model_json_schema(mode="validation"),
        "scale-command": ScaleCommand.model_json_schema(mode="validation"),
        "command-result": CommandResult.model_json_schema(mode="validation"),
        "hub-heartbeat": HubHeartbeat.model_json_schema(mode="validation"),
    }
