"""Spoke settings (``SPOKE_*`` environment variables), read once in ``spoke.__main__``.

The Helm chart's ``values.yaml`` keys map one for one onto these fields.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.messages import ClusterId
from shared.settings import CommonSettings


class SpokeSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="SPOKE_", frozen=True, extra="forbid")

    cluster_id: ClusterId = Field(description="This cluster's id; a NATS subject token")
    backend: Literal["simulated", "kubernetes"] = Field(default="kubernetes")
    report_interval_s: float = Field(default=1.0, gt=0, description="Telemetry period; the hub's staleness unit")
    health_host: str = Field(default="0.0.0.0", description="Bind address of /healthz, /readyz, /metrics")
    health_port: int = Field(default=8081, ge=0, le=65535)

    # Simulated backend (fleetscale spoke --backend simulated): one cluster, one workload.
    sim_nodes: str = Field(default="H100:2x8", description="GPU nodes as TYPE:COUNTxGPUS[,TYPE:COUNTxGPUS]")
    sim_trace: str = Field(default="azure2023_conv_1h", description="Bundled trace name or a CSV path")
    sim_workload: str = Field(default="inference/llama-3-8b", description="namespace/name of the workload")
    sim_initial_replicas: int = Field(default=1, ge=0)
    sim_cold_start_s: float = Field(default=90.0, ge=0)
    sim_time_scale: float = Field(default=1.0, gt=0, description="Simulated seconds per wall-clock second")
