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
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

PROTOCOL_VERSION = 1
"""Major version of the wire protocol spoken by this code."""
PROTOCOL_MINOR_VERSION = 4
"""Minor version: additive changes within the major (docs/protocol.md lists them). 1.1 added the
engine signals of issue 12 to ``Samples``; 1.2 the routing rules of ``ScaleCommand``; 1.3 the
per-container usage of ``Samples.containers`` and ``ScaleCommand.resources`` (vertical
recommendations) and the measured start times of ``VariantStatus`` (``starts``); 1.4 the fencing
token of ``ScaleCommand.fence`` (sharded hubs, issue 11). Not sent on the wire: optional fields
need no version."""

# --- bounds (docs/protocol.md, "Bounds", states the same numbers) ---------------------------------
# Every number on the wire is finite and bounded, every string and list is length-limited: one
# message must not be able to overflow the hub's arithmetic, its JSON encoder or its memory.

MAX_REPLICAS = 100_000
"""Replicas of one workload (or one of its GPU types) in one cluster; also the API's max_replicas."""
MAX_GPUS_PER_REPLICA = 256
MAX_NODE_GPUS = 1024
"""GPUs one node reports (capacity, allocatable, free)."""
MAX_INTERVAL_S = 600.0
MIN_INTERVAL_S = 0.01
MAX_DURATION_S = 86_400.0
"""Latencies and sample windows: a day."""
MAX_QUEUE = 10_000_000.0
"""Requests waiting or running, totalled over a workload's replicas in one cluster."""
MAX_RATE_PER_S = 1e9
"""Requests or tokens per second."""
MAX_BYTES = float(2**50)
MAX_POWER_W = 100_000.0
MAX_LOAD_RATIO = 1_000.0
"""CPU and memory use as a ratio of the pods' requests (may exceed 1, not without limit)."""
MAX_CORES = 10_000.0
"""CPU cores one container uses or requests."""
MAX_CONTAINER_SAMPLES = 4_096
"""Containers of one workload in one cluster (pods x containers)."""
MAX_SEQUENCE = 2**63 - 1
MAX_NODES = 10_000
MAX_WORKLOADS_PER_REPORT = 5_000
MAX_VARIANTS = 32
MAX_GPU_SAMPLES = 4_096
MAX_LABELS = 256
MAX_REASONS = 64
MAX_GPU_TYPES = 32
MAX_NAME = 253
MAX_TYPE = 63
MAX_TEXT = 1_024
MAX_ERROR = 4_096

_TOKEN = r"^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$"
ClusterId = Annotated[str, StringConstraints(pattern=_TOKEN)]
"""A cluster id doubles as a NATS subject token, so it is a DNS-label-like lower-case string."""

KubeName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME)]
GpuType = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TYPE)]
Name = Annotated[str, StringConstraints(max_length=MAX_NAME)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=317)]
"""A Kubernetes label key: an optional 253-character prefix, '/', and a 63-character name."""
LabelValue = Annotated[str, StringConstraints(max_length=MAX_TYPE)]


# Strict, finite, bounded numbers: a JSON number in [lo, hi] (never a numeric string), and a JSON
# integer in [0, hi] (not 3.0, not "3"). Written out, not built by a helper, so type checkers see them.
Ratio = Annotated[float, Strict(), Field(ge=0.0, le=1.0, allow_inf_nan=False)]
LoadRatio = Annotated[float, Strict(), Field(ge=0.0, le=MAX_LOAD_RATIO, allow_inf_nan=False)]
Seconds = Annotated[float, Strict(), Field(ge=0.0, le=MAX_DURATION_S, allow_inf_nan=False)]
Queue = Annotated[float, Strict(), Field(ge=0.0, le=MAX_QUEUE, allow_inf_nan=False)]
Rate = Annotated[float, Strict(), Field(ge=0.0, le=MAX_RATE_PER_S, allow_inf_nan=False)]
Bytes = Annotated[float, Strict(), Field(ge=0.0, le=MAX_BYTES, allow_inf_nan=False)]
Watts = Annotated[float, Strict(), Field(ge=0.0, le=MAX_POWER_W, allow_inf_nan=False)]
Cores = Annotated[float, Strict(), Field(ge=0.0, le=MAX_CORES, allow_inf_nan=False)]
Replicas = Annotated[int, Strict(), Field(ge=0, le=MAX_REPLICAS)]
GpusPerReplica = Annotated[int, Strict(), Field(ge=0, le=MAX_GPUS_PER_REPLICA)]
NodeGpus = Annotated[int, Strict(), Field(ge=0, le=MAX_NODE_GPUS)]
SequenceNumber = Annotated[int, Strict(), Field(ge=0, le=MAX_SEQUENCE)]
Interval = Annotated[float, Strict(), Field(ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S, allow_inf_nan=False)]

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: Any) -> Any:
    """Refuse what pydantic would otherwise read as a time: epoch numbers, numeric strings, naive times."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _RFC3339.match(value):
        return value
    raise ValueError("must be an RFC 3339 time with a zone, such as 2026-11-22T12:00:00Z")


WireTime = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
"""A time with a zone. Naive times could not be compared with zoned ones (the hub crashed on it)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class WireModel(BaseModel):
    """Base of every wire message: frozen, open-world inbound, finite, orjson on the wire."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, allow_inf_nan=False)

    wire_required: ClassVar[tuple[str, ...]] = ("protocol_version", "type")
    """Fields a message read from the wire must carry, although Python code may leave them to their
    defaults; the published JSON Schemas list them as required."""

    protocol_version: int = Field(
        default=PROTOCOL_VERSION,
        strict=True,
        description="Major protocol version. Receivers reject versions they do not know.",
    )

    @model_validator(mode="before")
    @classmethod
    def _wire_fields_present(cls, data: Any, info: ValidationInfo) -> Any:
        if info.context and info.context.get("wire") and isinstance(data, dict):
            missing = [f for f in cls.wire_required if f not in data]
            if missing:
                raise ValueError(f"{missing[0]}: required on the wire")
        return data

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
        """Read a message from the wire: every field in ``wire_required`` must be present."""
        return cls.model_validate_json(data, context={"wire": True})


class Part(BaseModel):
    """Base of nested (non-top-level) parts: frozen, open-world and finite like the messages."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)


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
    gpu_product: Name = Field(
        description="Value of the node's nvidia.com/gpu.product label, e.g. NVIDIA-H100-80GB-HBM3"
    )
    gpu_type: GpuType = Field(description="Normalised short GPU type used for placement and prices, e.g. H100")
    capacity_gpus: NodeGpus
    allocatable_gpus: NodeGpus
    free_gpus: NodeGpus = Field(description="Allocatable minus GPUs requested by running or pending pods")


class GpuSample(Part):
    """One GPU serving the workload. Any field may be missing (null)."""

    gpu_id: Name = Field(description="GPU UUID, or node/index when the UUID is unknown")
    node: Name | None = None
    utilization_ratio: Ratio | None = None
    memory_used_bytes: Bytes | None = None
    memory_total_bytes: Bytes | None = None
    power_w: Watts | None = None


class ContainerUsage(Part):
    """One container of one pod: what it used over the window and what its spec asks (protocol 1.3).

    Usage fields are measurements (``None``: not measured; ``Samples.missing_reasons["containers"]``
    says why). The request and limit fields come from the pod's spec: ``None`` there means the
    spec sets none. ``gpu_type`` is the GPU type of the object the pod belongs to (its variant).
    """

    pod: KubeName
    container: KubeName
    gpu_type: GpuType | None = None
    cpu_cores: Cores | None = Field(default=None, description="CPU used, cores, averaged over the source's window")
    memory_bytes: Bytes | None = Field(default=None, description="Memory working set, bytes")
    gpu_memory_bytes: Bytes | None = Field(
        default=None, description="GPU memory used by the container, bytes, summed over its GPUs")
    cpu_request_cores: Cores | None = None
    cpu_limit_cores: Cores | None = None
    memory_request_bytes: Bytes | None = None
    memory_limit_bytes: Bytes | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.pod, self.container)


class Percentiles(Part):
    """Latency percentiles over the spoke's window, in seconds. Any may be missing."""

    p50_s: Seconds | None = None
    p95_s: Seconds | None = None
    p99_s: Seconds | None = None

    def at(self, percentile: Literal["p50", "p95", "p99"]) -> float | None:
        return getattr(self, f"{percentile}_s")


MAX_RATE = 1e9
"""Upper bound of a per-second rate on the wire (requests, tokens, preemptions)."""
MAX_TOKENS = 1e8
"""Upper bound of a token count (prompt length bucket bound)."""
MAX_HISTOGRAM_BOUNDS = 64
BoundedSeconds = Annotated[float, Field(ge=0.0, le=86_400.0, allow_inf_nan=False)]
TokenBound = Annotated[float, Field(gt=0.0, le=MAX_TOKENS, allow_inf_nan=False)]
BucketCount = Annotated[float, Field(ge=0.0, le=1e12, allow_inf_nan=False)]


class TokenHistogram(Part):
    """A distribution over the window (protocol 1.1): how many requests fell in each bucket.

    ``counts[i]`` is the number of requests with ``le_tokens[i-1] < tokens <= le_tokens[i]``
    (the first bucket starts at 0); the last count, one more than the bounds, is above the last
    bound. Counts are increases over the window, not totals since the engine started.
    """

    le_tokens: tuple[TokenBound, ...] = Field(max_length=MAX_HISTOGRAM_BOUNDS)
    counts: tuple[BucketCount, ...] = Field(max_length=MAX_HISTOGRAM_BOUNDS + 1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(self.counts) != len(self.le_tokens) + 1:
            raise ValueError("counts must have one entry per bound plus one for the overflow")
        if any(b >= c for b, c in zip(self.le_tokens, self.le_tokens[1:], strict=False)):
            raise ValueError("le_tokens must increase strictly")
        return self

    @property
    def total(self) -> float:
        return sum(self.counts)


class Samples(Part):
    """What the spoke measured for one workload over the last window.

    ``None`` means *not measured*; it is never a zero. ``missing_reasons`` maps a field name to why
    it is missing (source down, engine does not export it, no requests in the window...).
    Queue counts are totals over the workload's replicas in the cluster; ratios are means.
    """

    window_s: Seconds | None = Field(default=None, description="Length of the window the samples cover")
    gpus: tuple[GpuSample, ...] = Field(default=(), max_length=MAX_GPU_SAMPLES)
    ttft: Percentiles = Percentiles()
    itl: Percentiles = Percentiles()
    e2e: Percentiles = Percentiles()
    requests_waiting: Queue | None = None
    requests_running: Queue | None = None
    kv_cache_usage_ratio: Ratio | None = None
    request_rate_per_s: Rate | None = None
    prompt_tokens_per_s: Rate | None = None
    generation_tokens_per_s: Rate | None = None
    cpu_utilization_ratio: LoadRatio | None = None
    memory_utilization_ratio: LoadRatio | None = None
    # Protocol 1.1 (issue 12): demand the engine shed or redid, queueing, request classes.
    queue_time: Percentiles = Field(
        default=Percentiles(), description="Time requests waited in the engine's queue (1.1)"
    )
    queue_time_mean_s: BoundedSeconds | None = Field(
        default=None, description="Mean queue time over the window where only sums exist (Triton) (1.1)"
    )
    preemptions_per_s: Rate | None = Field(
        default=None, description="Requests preempted (vLLM) or retracted (SGLang) per second (1.1)"
    )
    requests_failed_per_s: Rate | None = Field(
        default=None,
        description="Requests that ended without a result per second: aborted, errored, rejected (1.1)",
    )
    engines_sleeping: Annotated[int, Field(ge=0, le=100_000)] | None = Field(
        default=None, description="Engines in sleep mode (vLLM): their empty queues are not idle capacity (1.1)"
    )
    prompt_tokens: TokenHistogram | None = Field(
        default=None, description="Prompt length per request over the window (1.1)"
    )
    # Protocol 1.3 (issue 14): per-container usage and spec, for vertical recommendations.
    containers: tuple[ContainerUsage, ...] = Field(
        default=(), max_length=MAX_CONTAINER_SAMPLES,
        description="Per pod and container: CPU, memory and GPU memory used, requests and limits (1.3)")
    missing_reasons: dict[Annotated[str, StringConstraints(max_length=MAX_TYPE)], Text] = Field(
        default_factory=dict, max_length=MAX_REASONS
    )

    @model_validator(mode="after")
    def _containers_unique(self) -> Self:
        if len({c.key for c in self.containers}) != len(self.containers):
            raise ValueError("containers: each (pod, container) may appear once")
        return self

    @property
    def gpu_utilization_ratio(self) -> float | None:
        """Mean utilisation over the GPUs that reported one; missing if none did."""
        values = [g.utilization_ratio for g in self.gpus if g.utilization_ratio is not None]
        return sum(values) / len(values) if values else None


MAX_RECENT_STARTS = 16
"""Start durations one ``StartTimes`` carries: the most recent ones, enough for a 90th percentile."""
StartCount = Annotated[int, Strict(), Field(ge=1, le=MAX_SEQUENCE)]


class StartTier(StrEnum):
    """How a replica came to serve (protocol 1.3; docs/kubernetes.md, "Start times")."""

    COLD = "cold"
    """A new pod whose node had to pull an image (then loaded the weights): scheduled -> ready."""
    CACHED = "cached"
    """A new pod whose images were all already present on its node: scheduled -> ready."""
    WOKEN = "woken"
    """An engine leaving sleep mode (vLLM): no new pod, the weights come back to the GPU."""


class StartTimes(Part):
    """The measured starts of one workload's replicas of one GPU type, in one tier (protocol 1.3).

    ``recent_s`` holds the durations of the most recent starts, oldest first; ``count`` how many
    the spoke measured in this tier since it started (at least ``len(recent_s)``).
    """

    tier: StartTier
    recent_s: tuple[Seconds, ...] = Field(
        min_length=1, max_length=MAX_RECENT_STARTS, description="Durations of the latest starts, oldest first")
    count: StartCount = Field(description="Starts measured in this tier since the spoke started")

    @model_validator(mode="after")
    def _count_covers_recent(self) -> Self:
        if self.count < len(self.recent_s):
            raise ValueError("count must be at least the number of recent_s")
        return self


class VariantStatus(Part):
    """Replicas of one workload on one GPU type in one cluster."""

    gpu_type: GpuType
    desired_replicas: Replicas
    ready_replicas: Replicas
    gpus_per_replica: GpusPerReplica = 1
    starts: tuple[StartTimes, ...] = Field(
        default=(), max_length=len(StartTier),
        description="Measured start times by tier, at most one entry per tier (1.3); empty: none measured")

    @model_validator(mode="after")
    def _one_entry_per_tier(self) -> Self:
        if len({s.tier for s in self.starts}) != len(self.starts):
            raise ValueError("starts must name each tier at most once")
        return self


class WorkloadReport(Part):
    workload: WorkloadRef
    desired_replicas: Replicas
    ready_replicas: Replicas
    gpus_per_replica: GpusPerReplica = Field(default=1, description="nvidia.com/gpu requested per replica")
    variants: tuple[VariantStatus, ...] = Field(
        default=(), max_length=MAX_VARIANTS, description="Replicas split by GPU type; empty when the type is unknown"
    )
    samples: Samples = Samples()
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=MAX_LABELS)


class TelemetryReport(WireModel):
    """One per spoke per interval, over core NATS. It doubles as the spoke's heartbeat."""

    type: Literal["telemetry"] = "telemetry"
    cluster_id: ClusterId
    sequence: SequenceNumber = Field(
        description="Monotonic per spoke process; restarts from 0 with the spoke"
    )
    sent_at: WireTime = Field(
        description="When the spoke started reading the cluster for this report: its contents are at least this "
        "fresh. The hub refuses a report dated beyond its clock skew window (HUB_MAX_CLOCK_SKEW_S)"
    )
    interval_s: Interval = Field(
        description="The spoke's report interval; the hub marks the cluster stale after 3 missed"
    )
    spoke_version: Annotated[str, StringConstraints(max_length=128)] = ""
    inventory: tuple[GpuNode, ...] = Field(default=(), max_length=MAX_NODES)
    workloads: tuple[WorkloadReport, ...] = Field(default=(), max_length=MAX_WORKLOADS_PER_REPORT)


# --- commands ------------------------------------------------------------------------------------

CommandId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
ReplicasByGpuType = Annotated[dict[GpuType, Replicas], Field(max_length=MAX_GPU_TYPES)]


MAX_ROUTES = 16


class RoutingRule(Part):
    """Which GPU types serve the prompts of one length class, and in what shares (protocol 1.2).

    The hub places a workload's demand by prompt-length class (docs/engine.md, "Request classes"):
    cheap GPUs for short prompts, fast ones for long. That only pays off if the gateway sends each
    request to a replica of a type its class may use; docs/routing.md says how a gateway reads this.
    """

    min_prompt_tokens: Annotated[float, Field(ge=0.0, le=MAX_TOKENS, allow_inf_nan=False)] = Field(
        default=0.0, description="Prompts longer than this (tokens)")
    max_prompt_tokens: TokenBound | None = Field(
        default=None, description="... and at most this long; null: no upper bound")
    gpu_types: tuple[GpuType, ...] = Field(
        min_length=1, max_length=MAX_GPU_TYPES,
        description="GPU types fast enough for these prompts: send them to no other")
    weights: dict[GpuType, Ratio] = Field(
        min_length=1, max_length=MAX_GPU_TYPES,
        description="GPU type -> share of this class's load the plan gives its replicas (sum 1): a "
                    "preference, since planned replicas may still be starting")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.max_prompt_tokens is not None and self.max_prompt_tokens <= self.min_prompt_tokens:
            raise ValueError("max_prompt_tokens must be above min_prompt_tokens")
        if abs(sum(self.weights.values()) - 1.0) > 1e-3:
            raise ValueError("weights must add up to 1")
        if not set(self.weights) <= set(self.gpu_types):
            raise ValueError("weights may only name gpu_types")
        return self

    def covers(self, prompt_tokens: float) -> bool:
        return prompt_tokens > self.min_prompt_tokens and (
            self.max_prompt_tokens is None or prompt_tokens <= self.max_prompt_tokens)


MAX_RESOURCE_CHANGES = 64


class ContainerResources(Part):
    """New requests and limits for one container of the pod template of one GPU type's object
    (protocol 1.3, vertical recommendations applied: docs/vertical.md). A null value leaves that
    request or limit as it is."""

    gpu_type: GpuType
    container: KubeName
    cpu_request_cores: Cores | None = None
    cpu_limit_cores: Cores | None = None
    memory_request_bytes: Bytes | None = None
    memory_limit_bytes: Bytes | None = None
    memory_floor_bytes: Bytes = Field(
        default=0.0, description="The observed memory peak: the spoke refuses any memory request or limit below it")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for name in ("memory_request_bytes", "memory_limit_bytes"):
            value = getattr(self, name)
            if value is not None and value < self.memory_floor_bytes:
                raise ValueError(f"{name} is below memory_floor_bytes, the observed peak")
        if self.cpu_limit_cores is not None and self.cpu_request_cores is not None \
                and self.cpu_limit_cores < self.cpu_request_cores:
            raise ValueError("cpu_limit_cores is below cpu_request_cores")
        if self.memory_limit_bytes is not None and self.memory_request_bytes is not None \
                and self.memory_limit_bytes < self.memory_request_bytes:
            raise ValueError("memory_limit_bytes is below memory_request_bytes")
        return self


class Fence(Part):
    """The partition lease a sharded hub held when it issued a command (protocol 1.4; docs/operations.md,
    "Running several hubs"). ``epoch`` grows with every change of the lease's owner, so a spoke that
    has seen a higher epoch for the same lease refuses the command: it comes from a deposed owner."""

    lease: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    epoch: Annotated[int, Strict(), Field(ge=1, le=MAX_SEQUENCE)]


class ScaleCommand(WireModel):
    """Set a workload's replicas in one cluster, absolutely, split by GPU type. Over JetStream."""

    wire_required: ClassVar[tuple[str, ...]] = ("protocol_version", "type", "command_id", "issued_at")

    type: Literal["scale"] = "scale"
    command_id: CommandId = Field(default_factory=lambda: str(uuid.uuid4()))
    cluster_id: ClusterId
    workload: WorkloadRef
    replicas_by_gpu_type: ReplicasByGpuType = Field(
        description="Absolute replicas per GPU type; a type absent from the map keeps its replicas"
    )
    gpus_per_replica: GpusPerReplica = 1
    policy_id: Name
    policy_revision: SequenceNumber = 0
    reason: Text = ""
    issued_at: WireTime = Field(default_factory=utcnow)
    deadline: WireTime
    routing: tuple[RoutingRule, ...] = Field(
        default=(), max_length=MAX_ROUTES,
        description="Which GPU types each prompt-length class may use (1.2); empty: any replica serves any request")
    resources: tuple[ContainerResources, ...] = Field(
        default=(), max_length=MAX_RESOURCE_CHANGES,
        description="Containers' new requests and limits, patched into the pod template of each GPU type's object "
                    "(1.3); with an empty replicas_by_gpu_type the command changes resources only")
    fence: Fence | None = Field(
        default=None,
        description="The issuing hub's partition lease and its epoch (1.4); a spoke refuses a command whose epoch "
                    "is below one it has seen for the same lease. Absent: a single hub, nothing to fence")

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

    wire_required: ClassVar[tuple[str, ...]] = ("protocol_version", "type", "command_id", "completed_at")

    type: Literal["result"] = "result"
    command_id: CommandId
    cluster_id: ClusterId
    workload: WorkloadRef
    status: ResultStatus
    reason: ResultReason
    observed_replicas_by_gpu_type: ReplicasByGpuType = Field(default_factory=dict)
    error: Annotated[str, StringConstraints(max_length=MAX_ERROR)] | None = None
    completed_at: WireTime = Field(default_factory=utcnow)


class HubHeartbeat(WireModel):
    """The hub is deciding. Core NATS, every ``interval_s``; spokes that stop hearing it hold what
    they run (``spoke.autonomy``)."""

    type: Literal["heartbeat"] = "heartbeat"
    sent_at: datetime = Field(default_factory=utcnow)
    interval_s: float = Field(gt=0, le=3600, description="Seconds until the next heartbeat")


M = TypeVar("M", bound=WireModel)

CLUSTER_ID_PATTERN = re.compile(_TOKEN)


def json_schema(model: type[WireModel]) -> dict[str, Any]:
    """The model's JSON Schema as a receiver reads it: ``wire_required`` fields are required."""
    schema = model.model_json_schema(mode="validation")
    schema["required"] = list(dict.fromkeys([*model.wire_required, *schema.get("required", ())]))
    return schema


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every wire message, keyed by file stem (published in docs/protocol/)."""
    return {
        "telemetry-report": json_schema(TelemetryReport),
        "scale-command": json_schema(ScaleCommand),
        "command-result": json_schema(CommandResult),
        "hub-heartbeat": json_schema(HubHeartbeat),
    }
