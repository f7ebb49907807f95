"""The spoke's metrics, read back from the registry's exposition (what Prometheus would scrape)."""

from __future__ import annotations

import socket
import subprocess

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from spoke.metrics import SOURCE_FAILURE_KINDS, SpokeMetrics
from spoke.settings import SpokeSettings
from spoke.telemetry import Sampler, build_sources


def exposed(metrics: SpokeMetrics) -> list[tuple[str, dict[str, str], float]]:
    text = generate_latest(metrics.registry).decode()
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_spoke_that_knows_its_cluster_labels_every_series_with_it() -> None:
    metrics = SpokeMetrics(cluster="gpu-east")
    metrics.reports.inc()
    metrics.commands.labels("applied", "applied").inc()
    samples = exposed(metrics)
    assert samples and all(labels.get("cluster") == "gpu-east" for _, labels, _ in samples)
    assert ("fleetscale_spoke_commands_total", {"cluster": "gpu-east", "status": "applied", "reason": "applied"},
            1.0) in samples
    assert all(name.startswith("fleetscale_spoke_") for name, _, _ in samples)
    # Without a cluster id (tests, the demo's own registries) no label is invented.
    assert all("cluster" not in labels for _, labels, _ in exposed(SpokeMetrics()))


def test_report_failure_stages_start_at_zero() -> None:
    stages = {labels["stage"]: v for name, labels, v in exposed(SpokeMetrics())
              if name == "fleetscale_spoke_report_failures_total"}
    assert stages == {"cluster": 0, "samples": 0, "publish": 0}


async def test_the_sampler_starts_its_sources_at_zero_and_counts_a_real_failure() -> None:
    settings = SpokeSettings(cluster_id="a", dcgm_endpoints=[f"http://127.0.0.1:{closed_port()}/metrics"],
                             source_timeout_s=1.0)
    metrics = SpokeMetrics(cluster="a")
    sampler = Sampler(settings, metrics, build_sources(settings))
    try:
        before = {(labels["source"], labels["reason"]): v for name, labels, v in exposed(metrics)
                  if name == "fleetscale_spoke_source_failures_total"}
        assert before == {(s, k): 0 for s in ("engines", "dcgm", "metrics-api") for k in SOURCE_FAILURE_KINDS}
        await sampler([])  # the DCGM endpoint refuses the connection
    finally:
        await sampler.aclose()
    failures = {(labels["source"], labels["reason"]): v for name, labels, v in exposed(metrics)
                if name == "fleetscale_spoke_source_failures_total" and v}
    assert failures == {("dcgm", "unavailable"): 1}


def test_exposition_passes_promtool_check_metrics() -> None:
    metrics = SpokeMetrics(cluster="a")
    metrics.init_sources(["dcgm"])
    metrics.count_source_failures([("dcgm", "timeout")])
    lint = subprocess.run(["promtool", "check", "metrics"], input=generate_latest(metrics.registry),
                          capture_output=True, timeout=30)
    assert lint.returncode == 0, lint.stdout.decode() + lint.stderr.decode()
