"""Telemetry sources of the spoke: dcgm-exporter, inference engines, NVML, PromQL and the metrics API.

Each source implements ``TelemetrySource``; ``read_all`` runs them together and merges their
partial samples into one ``shared.messages.Samples`` per workload. See docs/sources.md.
"""

from spoke.sources.base import (
    DEFAULT_PRECEDENCE,
    NodeGpu,
    PartialSample,
    PodTarget,
    SourceMisconfigured,
    SourceReading,
    SourceTarget,
    SourceUnavailable,
    TelemetrySource,
    merge_readings,
    merge_samples,
)
from spoke.sources.dcgm import DcgmSource
from spoke.sources.engines import EngineSource
from spoke.sources.nvml import NvmlSource
from spoke.sources.pod_metrics import PodMetricsSource
from spoke.sources.prometheus import PrometheusSettings, PrometheusSource
from spoke.sources.runner import SourceOutcome, SourceStats, read_all

__all__ = [
    "DEFAULT_PRECEDENCE",
    "DcgmSource",
    "EngineSource",
    "NodeGpu",
    "NvmlSource",
    "PartialSample",
    "PodMetricsSource",
    "PodTarget",
    "PrometheusSettings",
    "PrometheusSource",
    "SourceMisconfigured",
    "SourceOutcome",
    "SourceReading",
    "SourceStats",
    "SourceTarget",
    "SourceUnavailable",
    "TelemetrySource",
    "merge_readings",
    "merge_samples",
    "read_all",
]
