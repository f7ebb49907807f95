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
    hub_away_after_s: float = Field(
        default=10.0, gt=0, description="No hub heartbeat for this long: the hub is away (autonomy starts)"
    )
    autonomy_hold_s: float = Field(
        default=3600.0, ge=0, description="While the hub is away, hold its last applied counts for at most this long"
    )
    nats_js_domain: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="JetStream domain of the hub side, set when nats_url is this cluster's leaf node (the hub "
        "side's streams are reached as $JS.<domain>.API across it); None: the server connected to",
    )
    health_host: str = Field(default="0.0.0.0", description="Bind address of /healthz, /readyz, /metrics")
    health_port: int = Field(default=8081, ge=0, le=65535)
    actuator: Literal["scale", "keda"] = Field(
        default="scale",
        description="scale: write each workload's /scale; keda: serve the hub's targets to KEDA as an external "
        "scaler and leave /scale to KEDA (docs/keda.md)",
    )
    keda_scaler_host: str = Field(default="0.0.0.0", description="Bind address of the KEDA external scaler (gRPC)")
    keda_scaler_port: int = Field(default=9090, ge=0, le=65535, description="Port of the KEDA external scaler")

    # Kubernetes backend (docs/kubernetes.md).
    kube_managed_label: str = Field(
        default="fleetscale.dev/managed=true", description="Label selector of the workloads this spoke manages"
    )
    kube_namespaces: list[str] = Field(default_factory=list, description="Namespaces to manage; empty: all")
    kube_create_variants: bool = Field(
        default=True, description="Create <name>-<gpu type> variant objects for GPU types that have none"
    )
    kube_apply_resources: bool = Field(
        default=False,
        description="Let the hub patch containers' requests and limits into pod templates (policies with "
                    "resources.apply; needs patch on the workload kinds); off: such commands are refused")
    kube_measure_starts: bool = Field(
        default=True, description="Measure new pods' start times (scheduled to ready) and tiers from image events"
    )

    # Telemetry sources (docs/sources.md). Anything not configured is reported missing, never zero.
    dcgm_endpoints: list[str] = Field(
        default_factory=list,
        description="Static dcgm-exporter /metrics URLs, one per GPU node (never a Service URL: it hits a random node)",
    )
    dcgm_discover: bool = Field(
        default=False, description="Find the dcgm-exporter pods through the Kubernetes API and scrape each one"
    )
    dcgm_pod_selector: str = Field(
        default="app.kubernetes.io/name=dcgm-exporter",
        description="Label selector of the dcgm-exporter pods (GPU Operator: app=nvidia-dcgm-exporter)",
    )
    dcgm_pod_namespace: str | None = Field(default=None, description="Namespace of the dcgm-exporter pods; empty: all")
    dcgm_pod_port: int = Field(default=9400, ge=1, le=65535, description="dcgm-exporter's metrics port")
    dcgm_pod_path: str = Field(default="/metrics", description="dcgm-exporter's metrics path")
    nvml_enabled: bool = Field(default=False, description="Read GPUs in-process through NVML (needs the driver)")
    metrics_api_enabled: bool = Field(
        default=True,
        description="Read per-container CPU and memory from the Kubernetes metrics API (metrics.k8s.io, "
                    "metrics-server) for vertical recommendations; missing, not zero, where it is not served")
    engine_metrics_port: int = Field(default=8000, ge=1, le=65535, description="Inference pods' metrics port")
    engine_metrics_path: str = Field(default="/metrics", description="Inference pods' metrics path")
    prometheus_url: str | None = Field(default=None, description="Prometheus or Thanos querier URL for PromQL")
    prometheus_token_file: str | None = Field(default=None, description="Bearer token file (re-read as it rotates)")
    prometheus_ca_file: str | None = Field(default=None)
    prometheus_insecure_skip_verify: bool = Field(default=False)
    prometheus_queries: dict[str, str] = Field(
        default_factory=dict, description="Samples field -> PromQL with {namespace} and {name} placeholders"
    )
    source_timeout_s: float = Field(default=2.0, gt=0, description="Per-source read timeout")

    # Simulated backend (fleetscale spoke --backend simulated): one cluster, one workload.
    sim_nodes: str = Field(
        default="H100:2x8",
        pattern=r"^[A-Za-z0-9]+:[1-9][0-9]*x[1-9][0-9]*(,[A-Za-z0-9]+:[1-9][0-9]*x[1-9][0-9]*)*$",
        description="GPU nodes as TYPE:COUNTxGPUS[,TYPE:COUNTxGPUS], e.g. H100:2x8,L4:4x4",
    )
    sim_trace: str = Field(default="azure2023_conv_1h", description="Bundled trace name or a CSV path")
    sim_workload: str = Field(
        default="inference/llama-3-8b", pattern=r"^[^/]+/[^/]+$", description="namespace/name of the workload"
    )
    sim_initial_replicas: int = Field(default=1, ge=0)
    sim_cold_start_s: float = Field(default=90.0, ge=0)
    sim_time_scale: float = Field(default=1.0, gt=0, description="Simulated seconds per wall-clock second")
