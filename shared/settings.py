"""Settings common to every process, read once from the environment and passed down explicitly."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .bus import BusOptions
from .logs import LogFormat


class CommonSettings(BaseSettings):
    """Fields both the hub (``HUB_*``) and spokes (``SPOKE_*``) have."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", validate_default=True)

    nats_url: str = Field(default="nats://127.0.0.1:4222", description="NATS server URL")
    nats_token: str | None = Field(default=None, description="NATS auth token (or use nats_creds_file)")
    nats_creds_file: str | None = Field(default=None, description="Path to a NATS .creds file")
    log_level: str = Field(default="INFO")
    log_format: LogFormat = Field(default="text")
    shutdown_timeout_s: float = Field(default=10.0, gt=0, description="Bound on graceful shutdown")

    def bus_options(self, name: str) -> BusOptions:
        return BusOptions(
            url=self.nats_url, name=name, token=self.nats_token, creds_file=self.nats_creds_file
        )
