"""Hub settings (``HUB_*`` environment variables), read once in ``hub.__main__``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import CommonSettings
from shared.simulation.profiles import GPU_PROFILES

DEFAULT_GPU_PRICES: dict[str, float] = {t: p.price_per_gpu_hour for t, p in GPU_PROFILES.items()}
"""USD per GPU-hour: the sourced on-demand list prices of ``shared.simulation.profiles`` (one table
for the hub and the simulator; sources in docs/simulator.md). Other GPU types need ``HUB_GPU_PRICES``:
the placer does not place on a type it has no price for, rather than guess a cost."""


class HubSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", frozen=True, extra="forbid")

    api_host: str = Field(default="127.0.0.1", description="Bind address of the web API")
    api_port: int = Field(default=8080, ge=0, le=65535, description="Port of the web API (0: any free port)")
    tick_s: float = Field(default=1.0, gt=0, description="Evaluation period")
    stale_after_intervals: float = Field(
        default=3.0, gt=0, description="A cluster is stale after this many of its report intervals without one"
    )
    command_deadline_s: float = Field(
        default=60.0, gt=0, description="A spoke drops a command it gets later than this after issue"
    )
    policy_file: Path | None = Field(default=None, description="YAML file of policies, re-read when it changes")
    policy_dir: Path | None = Field(
        default=None, description="Directory whose *.yaml/*.yml policy files are re-read when they change"
    )
    policy_poll_s: float = Field(default=2.0, gt=0, description="How often policy_file and policy_dir are checked")
    policy_resync_s: float = Field(
        default=60.0, gt=0, description="Re-apply file and CRD policies this often, also when nothing changed"
    )
    crd_watch: bool = Field(default=False, description="Watch AIInferenceAutoscalerPolicy objects in the hub's cluster")
    crd_namespace: str | None = Field(default=None, description="Only watch this namespace; None: all namespaces")
    kubeconfig: Path | None = Field(
        default=None, description="Kubeconfig for the CRD watch; None: the pod's service account, else ~/.kube/config"
    )
    kube_context: str | None = Field(default=None, description="Context in kubeconfig; None: its current context")
    gpu_prices: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_GPU_PRICES))
    decision_log_size: int = Field(default=2000, ge=10, description="Decisions kept in memory for the API")
