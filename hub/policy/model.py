"""The policy a user applies to a workload: bounds, one target-tracking signal, placement limits.

This is the foundation's policy. The engine issue grows it into the full
``AIInferenceAutoscalerPolicy`` (several signals, behaviour, prediction, prices); fields here keep
their names and meaning so that policies written today stay valid.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

PolicyId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")]


class Signal(StrEnum):
    QUEUE_PER_REPLICA = "queue_per_replica"
    """Requests waiting per ready replica (vllm:num_requests_waiting and peers)."""
    TTFT_P95 = "ttft_p95"
    """95th percentile time to first token, seconds."""
    GPU_UTILIZATION = "gpu_utilization"
    """Mean GPU utilisation ratio (0-1) over the workload's GPUs."""


class Target(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    signal: Signal
    value: float = Field(gt=0, description="Target value of the signal, in the signal's unit")


class WorkloadSelector(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: PolicyId
    workload: WorkloadSelector
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=10, ge=1)
    target: Target
    tolerance: float = Field(default=0.1, ge=0, lt=1, description="No change while |value/target - 1| <= this")
    scale_down_stabilization_s: float = Field(
        default=300.0, ge=0, le=3600, description="Scale down to the highest recommendation of this window"
    )
    gpu_types: tuple[str, ...] | None = Field(default=None, description="Allowed GPU types; None allows all")
    clusters: tuple[str, ...] | None = Field(default=None, description="Allowed clusters; None allows all")
    mode: Literal["enforce", "dry-run"] = "enforce"
    revision: int = Field(default=0, ge=0, description="Set by the policy store; 0 for a new policy")

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas must be >= min_replicas")
        return self

    def with_revision(self, revision: int) -> Policy:
        return self.model_copy(update={"revision": revision})

    def allows(self, cluster_id: str, gpu_type: str) -> bool:
        return (self.clusters is None or cluster_id in self.clusters) and (
            self.gpu_types is None or gpu_type in self.gpu_types
        )
