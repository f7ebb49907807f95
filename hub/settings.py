"""Hub settings (``HUB_*`` environment variables), read once in ``hub.__main__``."""

from __future__ import annotations

import re
import secrets
import socket
from pathlib import Path
from typing import Self

from pydantic import DirectoryPath, Field, FilePath, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shared.bus import DecisionRetention
from shared.gpus import GPU_PROFILES
from shared.messages import CLUSTER_ID_PATTERN
from shared.settings import CommonSettings
from shared.web import ServerTLS

DEFAULT_GPU_PRICES: dict[str, float] = {t: p.price_per_gpu_hour for t, p in GPU_PROFILES.items()}
"""USD per GPU-hour: the sourced on-demand list prices of ``shared.gpus`` (one table
for the hub and the simulator; sources in docs/simulator.md). Other GPU types need ``HUB_GPU_PRICES``:
the placer does not place on a type it has no price for, rather than guess a cost."""


class HubSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", frozen=True, extra="forbid")

    nats_stream_replicas: int = Field(
        default=1, ge=1, le=5,
        description="Replicas of the streams and KV buckets the hub creates: 1 on one nats-server, 3 on the hub-side "
        "cluster of three (docs/operations.md, NATS topology)",
    )
    api_host: str = Field(default="127.0.0.1", description="Bind address of the web API")
    api_port: int = Field(default=8080, ge=0, le=65535, description="Port of the web API (0: any free port)")
    tick_s: float = Field(default=1.0, gt=0, description="Evaluation period")
    unready_after_failed_ticks: int = Field(
        default=3, ge=1, description="/readyz fails once this many evaluation ticks in a row have failed"
    )
    sweep_s: float = Field(
        default=10.0, gt=0,
        description="Every workload is re-planned at least this often, changed or not (between, only on changes "
        "and timers)",
    )
    evaluation_batch: int = Field(
        default=256, ge=1,
        description="At most this many workloads are re-planned in one event-driven evaluation, oldest change first "
        "(a backlog is planned over several, so answers keep coming)",
    )
    change_tolerance: float = Field(
        default=0.02, ge=0, lt=1,
        description="A measured sample must move by this share before a workload is re-planned for it",
    )
    startup_grace_s: float = Field(
        default=3.0, ge=0,
        description="After start, decide nothing for this long, so every cluster reports first "
        "(a few of the spokes' report intervals)",
    )
    stale_after_intervals: float = Field(
        default=3.0, gt=0, description="A cluster is stale after this many of its report intervals without one"
    )
    command_deadline_s: float = Field(
        default=60.0, gt=0, description="A spoke drops a command it gets later than this after issue"
    )
    resize_settle_s: float = Field(
        default=300.0, ge=0, le=86_400,
        description="After a resources command (policies with resources.apply), a workload's next one waits this "
                    "long: one rollout at a time (docs/vertical.md)")
    policy_file: Path | None = Field(default=None, description="YAML file of policies, re-read when it changes")
    policy_dir: Path | None = Field(
        default=None, description="Directory whose *.yaml/*.yml policy files are re-read when they change"
    )
    policy_poll_s: float = Field(default=2.0, gt=0, description="How often policy_file and policy_dir are checked")
    policy_resync_s: float = Field(
        default=60.0, gt=0, description="Re-apply file and CRD policies this often, also when nothing changed"
    )
    budget_file: Path | None = Field(default=None, description="YAML file of budgets, re-read when it changes")
    budget_dir: Path | None = Field(
        default=None, description="Directory whose *.yaml/*.yml budget files are re-read when they change"
    )
    crd_watch: bool = Field(
        default=False,
        description="Watch AIInferenceAutoscalerPolicy and AIInferenceBudget objects in the hub's cluster",
    )
    crd_namespace: str | None = Field(default=None, description="Only watch this namespace; None: all namespaces")
    kubeconfig: Path | None = Field(
        default=None, description="Kubeconfig for the CRD watch; None: the pod's service account, else ~/.kube/config"
    )
    kube_context: str | None = Field(default=None, description="Context in kubeconfig; None: its current context")
    gpu_prices: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_GPU_PRICES))
    decision_log_size: int = Field(
        default=2000, ge=10, description="Decisions kept in memory for the API (and read back from the stream at start)"
    )
    history_interval_s: float = Field(
        default=10.0, ge=0.1, le=60,
        description="Seconds between points of the in-memory history the page's charts read (1 h at this "
        "resolution, then 24 h at 12x it)",
    )
    decisions_max_age_s: float = Field(
        default=7 * 86400.0, gt=0, description="Decision history older than this is dropped from its stream"
    )
    decisions_max_msgs: int = Field(default=100_000, ge=1, description="Decisions the stream keeps at most")
    decisions_max_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1024 * 1024, description="Bytes the decision stream keeps at most"
    )

    # Several hubs (docs/operations.md, "Running several hubs"): off, one hub decides everything.
    sharded: bool = Field(
        default=False,
        description="Share the workloads with the other hubs on the same NATS: hold partitions as leases in the "
        "fleetscale_leases KV bucket, decide only those, fence every command. Off: this hub decides everything",
    )
    id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="This hub's name among sharded hubs (unique per running process; a stable one, such as a "
        "StatefulSet pod's name, takes its leases back at once after a restart); None: generated at start",
    )
    partitions: int = Field(
        default=16, ge=1, le=1024,
        description="Partitions the workloads are split into (sharded hubs; the same on every hub)",
    )
    lease_renew_s: float = Field(default=2.0, gt=0, le=60, description="How often a sharded hub renews its leases")
    lease_ttl_s: float = Field(
        default=8.0, gt=0, le=600,
        description="A lease not renewed for this long lapses and another hub takes it (at least 2 x lease_renew_s)",
    )

    # Trust boundary (docs/operations.md, "Abuse and admission"): which clusters count, how many,
    # how late or early a message may be, and how much the intake may hold.
    clusters: list[str] | None = Field(
        default=None,
        description="Allow-list of cluster ids (JSON list or comma-separated); None: admit each new cluster on its "
        "first valid report, up to max_clusters",
    )
    max_clusters: int = Field(default=256, ge=1, le=100_000, description="Clusters the hub keeps at most")
    max_workloads: int = Field(
        default=20_000, ge=1, le=1_000_000, description="Logical workloads (namespace/name) the hub keeps at most"
    )
    cluster_retention_s: float = Field(
        default=3600.0, gt=0, description="A cluster silent this long is forgotten and its slot freed"
    )
    max_clock_skew_s: float = Field(
        default=30.0, gt=0, le=3600, description="A report or result dated further ahead of the hub's clock is refused"
    )
    intake_queue_size: int = Field(
        default=10_000, ge=10, description="Telemetry messages from not-yet-admitted subjects waiting for validation"
    )
    intake_queue_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024 * 1024, description="Bytes of such messages waiting, at most"
    )
    issued_commands_kept: int = Field(
        default=100_000, ge=100, description="Command ids remembered so a result can be checked against them"
    )
    drift_backoff_base_s: float = Field(
        default=5.0, gt=0, description="Re-sending the same target to a cluster that did not keep it: first pause"
    )
    drift_backoff_cap_s: float = Field(default=300.0, gt=0, description="... doubling up to this pause")

    # API authentication: bearer tokens with roles (hub/web/auth.py). No source configured: auth is off.
    auth_tokens_file: FilePath | None = Field(default=None, description="YAML list of {name, role, token}")
    auth_tokens_dir: DirectoryPath | None = Field(
        default=None, description="A mounted Secret: one file per key, `<name>.<role>` or `tokens.yaml`"
    )
    auth_reload_interval_s: float = Field(
        default=5.0, gt=0, description="How often the token sources are checked for changes (rotation)"
    )
    auth_open_paths: list[str] = Field(
        default_factory=lambda: ["/healthz", "/readyz", "/metrics"],
        description="Paths served without a token; a trailing `*` makes a prefix (`/page/*`)",
    )
    auth_open_page: bool = Field(
        default=True, description="Serve the web page's shell (GET / and /page/*) without a token"
    )

    # TLS for the API. Certificate and key together; a client CA makes clients present a certificate.
    tls_cert_file: FilePath | None = Field(default=None, description="PEM certificate chain of the API")
    tls_key_file: FilePath | None = Field(default=None, description="PEM private key of tls_cert_file")
    tls_client_ca_file: FilePath | None = Field(
        default=None, description="PEM CA bundle; when set, clients must present a certificate it signed (mTLS)"
    )

    @field_validator("clusters", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [c.strip() for c in value.split(",") if c.strip()]
        return value

    @field_validator("clusters")
    @classmethod
    def _cluster_ids(cls, ids: list[str] | None) -> list[str] | None:
        for cid in ids or ():
            if not CLUSTER_ID_PATTERN.match(cid):
                raise ValueError(f"{cid!r} is not a cluster id ({CLUSTER_ID_PATTERN.pattern})")
        return ids

    @field_validator("auth_open_paths")
    @classmethod
    def _paths_are_absolute(cls, paths: list[str]) -> list[str]:
        for p in paths:
            if not p.startswith("/") or "*" in p[:-1]:
                raise ValueError(f"{p!r}: an open path starts with '/' and may only end with '*'")
        return paths

    @model_validator(mode="after")
    def _tls_files_go_together(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be set together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file needs tls_cert_file and tls_key_file (mTLS is on top of TLS)")
        return self

    @model_validator(mode="after")
    def _lease_outlives_renewals(self) -> Self:
        if self.lease_ttl_s < 2 * self.lease_renew_s:
            raise ValueError("lease_ttl_s must be at least 2 x lease_renew_s (one late renewal must not lose a lease)")
        return self

    def hub_id(self) -> str:
        """``id``, or one made up for this process: unique, so two hubs never take each other for themselves."""
        host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0])[:40] or "hub"
        return self.id or f"{host}-{secrets.token_hex(4)}"

    @property
    def auth_enabled(self) -> bool:
        return self.auth_tokens_file is not None or self.auth_tokens_dir is not None

    def server_tls(self) -> ServerTLS | None:
        if self.tls_cert_file is None or self.tls_key_file is None:
            return None
        return ServerTLS(self.tls_cert_file, self.tls_key_file, self.tls_client_ca_file)

    def decision_retention(self) -> DecisionRetention:
        return DecisionRetention(
            max_age_s=self.decisions_max_age_s, max_msgs=self.decisions_max_msgs, max_bytes=self.decisions_max_bytes
        )
