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
    policy_file: Path | None = Field(default=None, description="YAML file of policies loaded at start")
    gpu_prices: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_GPU_PRICES))
    decision_log_size: int = Field(default=2000, ge=10, description="Decisions kept in memory for the API")
