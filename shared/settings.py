"""Settings common to every process, read once from the environment and passed down explicitly."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, FilePath, PrivateAttr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .bus import BusOptions
from .errors import ConfigurationError
from .logs import LogFormat
from .natsauth import read_seed


class CommonSettings(BaseSettings):
    """Fields both the hub (``HUB_*``) and spokes (``SPOKE_*``) have."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", validate_default=True)

    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        description="NATS server URL, or several comma-separated (every server of a cluster)",
    )
    nats_token: str | None = Field(default=None, description="NATS auth token (or use nats_creds_file)")
    nats_creds_file: str | None = Field(default=None, description="Path to a NATS .creds file")
    nats_nkey_file: FilePath | None = Field(
        default=None, description="Path to this process's nkey seed file (from `fleetscale nats-auth`)"
    )
    log_level: str = Field(default="INFO")
    log_format: LogFormat = Field(default="text")
    shutdown_timeout_s: float = Field(default=10.0, gt=0, description="Bound on graceful shutdown")

    _nkey_seed: str | None = PrivateAttr(default=None)

    @field_validator("nats_url")
    @classmethod
    def _some_server(cls, url: str) -> str:
        if not BusOptions(url=url).servers:
            raise ValueError("names no NATS server")
        return url

    @model_validator(mode="after")
    def _one_nats_credential(self) -> Self:
        given = [n for n in ("nats_token", "nats_creds_file", "nats_nkey_file") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"set one NATS credential, not {' and '.join(given)}")
        if self.nats_nkey_file is not None:
            # Read once, here: a wrong file stops the process at start, not at its first connect.
            try:
                self._nkey_seed = read_seed(Path(self.nats_nkey_file))
            except ConfigurationError as e:
                raise ValueError(str(e)) from e
        return self

    def bus_options(
        self, name: str, *, inbox_prefix: str | None = None, js_domain: str | None = None, stream_replicas: int = 1
    ) -> BusOptions:
        """The bus's options (``inbox_prefix``, ``js_domain``, ``stream_replicas``: see ``BusOptions``)."""
        return BusOptions(
            url=self.nats_url,
            name=name,
            token=self.nats_token,
            creds_file=self.nats_creds_file,
            nkey_seed=self._nkey_seed,
            inbox_prefix=inbox_prefix,
            js_domain=js_domain,
            stream_replicas=stream_replicas,
        )
