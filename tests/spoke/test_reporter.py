from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.messages import Samples
from spoke.backend import WorkloadState
from spoke.metrics import SpokeMetrics
from spoke.reporter import Reporter
from tests.spoke.recording_backend import RecordingBackend


class FailingSamples(RecordingBackend):
    async def samples(self, workloads: Sequence[WorkloadState]) -> Mapping[str, Samples]:
        raise ConnectionError("exporter down")


async def test_unmeasured_workload_is_reported_missing_with_a_reason_never_zero() -> None:
    report = await Reporter(None, RecordingBackend(), "c1", SpokeMetrics()).build()  # type: ignore[arg-type]
    assert report is not None
    (w,) = report.workloads
    assert w.samples.requests_waiting is None and w.samples.ttft.p95_s is None
    assert w.samples.missing_reasons == {"*": "no source measured this workload"}
    assert report.inventory[0].free_gpus == 7 and report.sequence == 0


async def test_a_failed_sample_read_still_reports_the_cluster_and_says_why() -> None:
    metrics = SpokeMetrics()
    report = await Reporter(None, FailingSamples(), "c1", metrics).build()  # type: ignore[arg-type]
    assert report is not None and report.workloads[0].desired_replicas == 1
    assert "exporter down" in report.workloads[0].samples.missing_reasons["*"]
    assert metrics.report_failures.labels("samples")._value.get() == 1
