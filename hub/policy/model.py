"""``AIInferenceAutoscalerPolicy``: the one policy model behind the REST API, the CRD and policy files.

Field names are snake_case in JSON and YAML; the CRD's camelCase spellings are accepted as aliases
(``minReplicas`` == ``min_replicas``), so a CRD's ``spec`` validates as it is. Every field is
documented in docs/policies.md. Validation errors name the field (pydantic's ``loc``), and the
cross-field rules below raise ``ValueError`` with the field in the message.

Units are in the names or documented per metric: percentages are 0-100 (as the HPA's
``averageUtilization`` and the seed API's ``target_*_percent``), latencies are seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

from hub.policy.behavior import Behavior, PolicyType, ScalingPolicy, ScalingRules, SelectPolicy
from shared.messages import MAX_RATE_PER_S, MAX_REPLICAS

PolicyId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=253)]

SEED_SCALE_CHANGE_PERIOD_S = 15
"""The seed API's ``max_scale_change`` limits one scaling operation; its controller syncs every 15 s,
so it is the HPA ``Pods`` policy ``{value: max_scale_change, periodSeconds: 15}``."""


class Spec(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True, use_enum_values=False,
        # NaN and infinities (also as the strings "NaN", "inf") are refused: JSON cannot store them, so a
        # stored policy came back with null in their place and the hub ignored it.
        allow_inf_nan=False,
    )


# --- targets --------------------------------------------------------------------------------------


class WorkloadName(Spec):
    namespace: Name
    name: Name

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class LabelSelector(Spec):
    namespace: Name | None = Field(default=None, description="Only workloads in this namespace; None: any")
    match_labels: dict[str, str] = Field(min_length=1, description="All of these labels must match")


class Targets(Spec):
    """Which workloads the policy scales, in every cluster that runs them (same namespace/name)."""

    workloads: tuple[WorkloadName, ...] = Field(default=(), description="By namespace and name")
    selector: LabelSelector | None = Field(default=None, description="By labels on the workload object")

    @model_validator(mode="after")
    def _some(self) -> Self:
        if not self.workloads and self.selector is None:
            raise ValueError("targets: give workloads, a selector, or both")
        return self

    def match(self, key: str, labels: Mapping[str, str]) -> Literal["name", "labels"] | None:
        """How this policy selects the workload ``key`` ("ns/name"): by name beats by labels."""
        if any(w.key == key for w in self.workloads):
            return "name"
        sel = self.selector
        if sel is None or (sel.namespace is not None and not key.startswith(sel.namespace + "/")):
            return None
        if all(labels.get(k) == v for k, v in sel.match_labels.items()):
            return "labels"
        return None


# --- bounds ---------------------------------------------------------------------------------------


class ClusterBounds(Spec):
    min_replicas: int = Field(
        default=0, ge=0, le=MAX_REPLICAS, description="At least this many in the cluster (when it is fresh)"
    )
    max_replicas: int | None = Field(
        default=None, ge=0, le=MAX_REPLICAS, description="At most this many in the cluster"
    )

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.max_replicas is not None and self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas must be >= min_replicas")
        return self


class Bounds(Spec):
    min_replicas: int = Field(
        default=1, ge=0, le=MAX_REPLICAS, description="Total across clusters; 0 needs scale_to_zero"
    )
    max_replicas: int = Field(default=10, ge=1, le=MAX_REPLICAS, description="Total across clusters")
    per_cluster: dict[str, ClusterBounds] = Field(default_factory=dict, description="By cluster id")
    max_cost_per_hour: float | None = Field(
        default=None, gt=0, allow_inf_nan=False,
        description="USD per hour the workload's replicas may cost at most (today's GPU mix at list price)",
    )

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas must be >= min_replicas")
        floor = sum(b.min_replicas for b in self.per_cluster.values())
        if floor > self.max_replicas:
            raise ValueError(f"per_cluster min_replicas add up to {floor}, above max_replicas {self.max_replicas}")
        return self


# --- signals --------------------------------------------------------------------------------------


class Metric(StrEnum):
    GPU_UTILIZATION = "gpu_utilization"
    """Mean GPU busy %, 0-100 (DCGM_FI_DEV_GPU_UTIL / NVML)."""
    GPU_MEMORY = "gpu_memory"
    """Mean GPU memory used %, 0-100."""
    CPU = "cpu"
    """Mean CPU % of the pods' requests (the seed API's target_cpu_percent)."""
    MEMORY = "memory"
    """Mean memory % of the pods' requests (target_memory_percent)."""
    TTFT = "ttft"
    """Time to first token, seconds, at ``percentile``."""
    ITL = "itl"
    """Inter-token latency, seconds, at ``percentile``."""
    E2E_LATENCY = "e2e_latency"
    """Request end-to-end latency, seconds, at ``percentile``."""
    QUEUE_PER_REPLICA = "queue_per_replica"
    """Requests waiting per replica."""
    KV_CACHE = "kv_cache"
    """Mean KV-cache use %, 0-100."""
    REQUEST_RATE_PER_REPLICA = "request_rate_per_replica"
    """Requests per second per replica."""
    TOKEN_RATE_PER_REPLICA = "token_rate_per_replica"
    """Prompt + generated tokens per second per replica."""

    @property
    def is_latency(self) -> bool:
        return self in (Metric.TTFT, Metric.ITL, Metric.E2E_LATENCY)

    @property
    def is_percent(self) -> bool:
        return self in (Metric.GPU_UTILIZATION, Metric.GPU_MEMORY, Metric.CPU, Metric.MEMORY, Metric.KV_CACHE)


Percentile = Literal["p50", "p95", "p99"]
Mode = Literal["enforce", "dry-run", "approval"]
"""enforce: decisions are sent; dry-run: recorded, never sent; approval: recorded and sent only once an operator
approves them (docs/approvals.md)."""
_LATENCY = {m.value for m in Metric if m.is_latency} | {m for m in Metric if m.is_latency}


class SignalSpec(Spec):
    """One signal and its target. Each gives a replica proposal; the engine takes the max."""

    metric: Metric
    target: float = Field(
        gt=0, le=MAX_RATE_PER_S, description="In the metric's unit: percent 0-100, seconds, or per replica"
    )
    percentile: Percentile | None = Field(default=None, description="Latency metrics only; default p95")
    headroom_percent: float = Field(
        default=10.0, ge=0, le=100, description="Latency metrics only: size capacity this much above the load"
    )
    capacity_per_replica: dict[str, Annotated[float, Field(gt=0, le=MAX_RATE_PER_S)]] = Field(
        default_factory=dict,
        description="Latency metrics only: tokens/s one replica of each GPU type sustains at the target, from "
        "your own benchmark; replaces the datasheet prior (the engine still learns from telemetry)",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_percentile(cls, data: object) -> object:
        if isinstance(data, dict):
            # Guard the type: a TypeError here (an unhashable metric) would escape pydantic as a crash.
            metric = data.get("metric")
            if isinstance(metric, str) and data.get("percentile") is None and metric in _LATENCY:
                return {**data, "percentile": "p95"}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.metric.is_percent and self.target > 100:
            raise ValueError(f"target: {self.metric.value} is a percentage; must be <= 100")
        if self.percentile is not None and not self.metric.is_latency:
            raise ValueError(f"percentile: only latency metrics have one, not {self.metric.value}")
        if self.capacity_per_replica and not self.metric.is_latency:
            raise ValueError(f"capacity_per_replica: only latency metrics use it, not {self.metric.value}")
        return self

    @property
    def name(self) -> str:
        return f"{self.metric.value}_{self.percentile}" if self.percentile else self.metric.value


# --- behaviour ------------------------------------------------------------------------------------


class ScalingPolicySpec(Spec):
    type: Literal["Pods", "Percent"]
    value: int = Field(gt=0, le=MAX_REPLICAS)
    period_seconds: int = Field(gt=0, le=1800)


class ScalingRulesSpec(Spec):
    """One direction's rules. Unset fields take the HPA's defaults for that direction."""

    stabilization_window_seconds: int | None = Field(default=None, ge=0, le=3600)
    select_policy: Literal["Max", "Min", "Disabled"] | None = None
    policies: tuple[ScalingPolicySpec, ...] | None = Field(default=None, min_length=1)
    tolerance: float | None = Field(default=None, ge=0, lt=1, description="Per direction; default 0.1")
    max_scale_change: int | None = Field(
        default=None, gt=0, le=MAX_REPLICAS, description="Seed API: at most this many replicas per 15 s (a Pods policy)"
    )

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if self.max_scale_change is not None and self.policies is not None:
            raise ValueError("max_scale_change: give it or policies, not both")
        return self

    def rules(self, direction: Literal["up", "down"]) -> ScalingRules:
        policies = None
        if self.policies is not None:
            policies = [ScalingPolicy(PolicyType(p.type), p.value, p.period_seconds) for p in self.policies]
        elif self.max_scale_change is not None:
            policies = [ScalingPolicy(PolicyType.PODS, self.max_scale_change, SEED_SCALE_CHANGE_PERIOD_S)]
        make = ScalingRules.for_scale_up if direction == "up" else ScalingRules.for_scale_down
        return make(
            policies=policies,
            select_policy=SelectPolicy(self.select_policy) if self.select_policy else None,
            stabilization_window_seconds=self.stabilization_window_seconds,
            tolerance=self.tolerance,
        )


class BehaviorSpec(Spec):
    scale_up: ScalingRulesSpec = ScalingRulesSpec()
    scale_down: ScalingRulesSpec = ScalingRulesSpec()

    def behavior(self) -> Behavior:
        return Behavior(scale_up=self.scale_up.rules("up"), scale_down=self.scale_down.rules("down"))


# --- bursts, zero, prediction, fallback ----------------------------------------------------------


class PanicSpec(Spec):
    """Knative's panic mode: a short window that reacts to bursts; no scale-down while panicking."""

    enabled: bool = True
    stable_window_seconds: int = Field(default=60, ge=6, le=3600, description="Knative stable window")
    panic_window_percent: float = Field(default=10.0, gt=0, le=100, description="Panic window, % of stable")
    panic_threshold_percent: float = Field(
        default=200.0, gt=100, le=100_000,
        description="Panic when the panic window's load needs this % of current capacity",
    )


class ScaleToZeroSpec(Spec):
    enabled: bool = False
    idle_seconds: int = Field(
        default=300, ge=0, le=86_400, description="No request and no queue for this long: go to 0"
    )
    activation_threshold: float = Field(
        default=0.0, ge=0, le=MAX_RATE_PER_S,
        description="From 0, wake when waiting requests (or req/s) exceed this (KEDA activation)",
    )


class PredictionSpec(Spec):
    """Forecast request and token rates; the forecast may only scale up, ahead of time."""

    enabled: bool = False
    horizon_seconds: int = Field(default=180, gt=0, le=3600, description="At least the cold-start time")
    season_seconds: int | None = Field(
        default=None, gt=0, le=31 * 86_400, description="Seasonal period; None: trend only"
    )


class FallbackSpec(Spec):
    """KEDA's fallback: after this many failed evaluations in a row, hold at least ``replicas``."""

    failure_threshold: int = Field(default=3, ge=1, le=1000)
    replicas: int = Field(ge=0, le=MAX_REPLICAS)


# --- LLM advisor ----------------------------------------------------------------------------------


class AdvisorSpec(Spec):
    """An LLM asked for a second opinion, with guard rails (docs/advisor.md)."""

    mode: Literal["off", "advisory", "bounded"] = Field(
        default="off",
        description="advisory: record and show, never apply; bounded: apply the model's count within the guard rails "
        "(the policy's bounds, max_delta_replicas of the engine's proposal, never below the engine's SLO-safe floor), "
        "then the behaviour's stabilisation and rate limits; docs/advisor.md"
    )
    endpoint: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2048)] | None = Field(
        default=None,
        description="OpenAI-compatible API base URL, e.g. http://llm:8000/v1 (POST <endpoint>/chat/completions)",
    )
    model: Annotated[str, StringConstraints(min_length=1, max_length=256)] = Field(
        default="default", description="The model name the endpoint serves"
    )
    interval_s: int = Field(default=60, ge=10, le=3600, description="Seconds between questions per workload")
    timeout_s: float = Field(default=20.0, gt=0, le=300, description="An answer later than this is a timeout")
    api_key_secret: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = Field(
        default=None, description="File holding the API key (a mounted Secret's key); none: no Authorization header"
    )
    max_delta_replicas: int = Field(
        default=2, ge=0, le=1000,
        description="bounded: at most this many replicas away from the engine's proposal (before the behaviour)"
    )

    @model_validator(mode="after")
    def _endpoint(self) -> Self:
        if self.mode != "off" and self.endpoint is None:
            raise ValueError(f"advisor.endpoint: required when mode is {self.mode}")
        return self


# --- vertical recommendations ---------------------------------------------------------------------


class ResourcesSpec(Spec):
    """Container requests and limits (docs/vertical.md): always recommended, applied only when asked."""

    apply: bool = Field(
        default=False,
        description="Patch the pod template's requests and limits to the recommendation through the spoke: one "
        "rollout at a time, only when a request falls outside the recommended bounds, memory never below its observed "
        "peak, an Event on the object; false: recommend only (API, audit, page)",
    )


# --- approval -------------------------------------------------------------------------------------


class ApprovalSpec(Spec):
    """How ``mode: approval`` waits for an operator (docs/approvals.md)."""

    ttl_s: int = Field(
        default=900, ge=30, le=7 * 86400,
        description="A pending decision not approved or rejected within this many seconds expires unapplied; a "
                    "rejected recommendation is not proposed again for as long, unless it changes",
    )
    failover: Literal["immediate", "approval"] = Field(
        default="immediate",
        description="immediate: re-placing a lost cluster's replicas, up to the count the workload ran before the "
                    "loss, is sent at once (a count already applied); approval: it waits like any other decision",
    )


# --- placement ------------------------------------------------------------------------------------


class PlacementSpec(Spec):
    clusters: tuple[str, ...] | None = Field(default=None, description="Allowed clusters; None allows all")
    gpu_types: tuple[str, ...] | None = Field(default=None, description="Allowed GPU types; None allows all")
    prices: dict[str, dict[str, Annotated[float, Field(le=1e6)]]] = Field(
        default_factory=dict,
        description="USD per GPU-hour by cluster id then GPU type; cluster '*' applies to every cluster",
    )
    strategy: Literal["cost", "static_weights", "free_capacity"] = Field(
        default="cost", description="cost: exact min-cost solve; or Karmada's static / dynamic weight division"
    )
    weights: dict[str, Annotated[int, Field(ge=0, le=1_000_000)]] = Field(
        default_factory=dict, description="static_weights: weight by cluster id"
    )
    spread_min_per_cluster: int = Field(
        default=0, ge=0, le=MAX_REPLICAS, description="At least this many in each allowed cluster"
    )
    failover: bool = Field(default=True, description="Re-place a stale cluster's replicas on healthy ones")
    request_classes: bool = Field(
        default=False,
        description="Split the demand by prompt length and place each class on the GPU types fast enough for it, "
                    "with routing rules for the gateway (docs/engine.md, Request classes). Off by default until it "
                    "wins in the backtest (docs/scaling-quality.md); off: one load for the whole mix")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for cluster, by_type in self.prices.items():
            for gpu_type, price in by_type.items():
                if price < 0:
                    raise ValueError(f"prices.{cluster}.{gpu_type}: must be >= 0")
        if self.strategy == "static_weights" and not self.weights:
            raise ValueError("weights: required when strategy is static_weights")
        if any(w < 0 for w in self.weights.values()):
            raise ValueError("weights: must be >= 0")
        return self

    def allows(self, cluster_id: str, gpu_type: str) -> bool:
        return (self.clusters is None or cluster_id in self.clusters) and (
            self.gpu_types is None or gpu_type in self.gpu_types
        )

    def price(self, cluster_id: str, gpu_type: str) -> float | None:
        """This policy's price for the pair, if it sets one (cluster first, then '*')."""
        for scope in (cluster_id, "*"):
            by_type = self.prices.get(scope)
            if by_type is not None and gpu_type in by_type:
                return by_type[gpu_type]
        return None


# --- the policy -----------------------------------------------------------------------------------


class AIInferenceAutoscalerPolicy(Spec):
    id: PolicyId
    description: str = ""
    targets: Targets
    bounds: Bounds = Bounds()
    signals: tuple[SignalSpec, ...] = Field(min_length=1)
    behavior: BehaviorSpec = BehaviorSpec()
    panic: PanicSpec = PanicSpec()
    scale_to_zero: ScaleToZeroSpec = ScaleToZeroSpec()
    prediction: PredictionSpec = PredictionSpec()
    fallback: FallbackSpec | None = None
    placement: PlacementSpec = PlacementSpec()
    advisor: AdvisorSpec = AdvisorSpec()
    resources: ResourcesSpec = ResourcesSpec()
    approval: ApprovalSpec = ApprovalSpec()
    mode: Mode = "enforce"
    priority: int = Field(
        default=0, ge=-1000, le=1000,
        description="Under contention for GPUs or a budget, a higher priority is served first; a lower one is "
        "reclaimed down to its min_replicas, never below (docs/budgets.md)",
    )
    revision: int = Field(default=0, ge=0, le=2**63 - 1, description="Set by the policy store; 0 for a new policy")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [s.name for s in self.signals]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"signals: {', '.join(dupes)} given more than once")
        if self.bounds.min_replicas == 0 and not self.scale_to_zero.enabled:
            raise ValueError("bounds.min_replicas: 0 needs scale_to_zero.enabled")
        if self.scale_to_zero.enabled and self.bounds.min_replicas != 0:
            raise ValueError("scale_to_zero.enabled: needs bounds.min_replicas 0")
        if self.fallback is not None and self.fallback.replicas > self.bounds.max_replicas:
            raise ValueError("fallback.replicas: above bounds.max_replicas")
        return self

    def with_revision(self, revision: int) -> AIInferenceAutoscalerPolicy:
        return self.model_copy(update={"revision": revision})

    def allows(self, cluster_id: str, gpu_type: str) -> bool:
        return self.placement.allows(cluster_id, gpu_type)


Policy = AIInferenceAutoscalerPolicy
"""The short name used inside the hub."""
