"""The telemetry decoder: a report's bytes to a validated ``TelemetryReport``, validating only what changed.

A spoke reports every workload it runs once a second, and most of them say what they said a second
before. Validating a 1,000-workload report whole (pydantic, strict wire bounds) took about 40 ms,
half the hub's CPU at 10,000 workloads, mostly spent re-validating workloads whose JSON had not
changed. So a report is parsed once (orjson), each workload's JSON is written back out in a
canonical form, and a workload whose bytes are the same as in the cluster's previous accepted report
keeps the model validated then (the very object: ``hub.control.changes`` then sees it unchanged with
one identity check). Only new or changed workloads, and the report's envelope, are validated, each
with the same pydantic model and JSON mode as a whole report, so exactly the same input is accepted.

Bytes, not parsed values, are compared: in Python ``1 == 1.0 == True``, while the strict wire refuses
a float or a bool where it wants an integer.

Anything the fast path does not take as it is (not JSON orjson reads, not an object, workloads not a
list of objects, more workloads than the wire allows, any validation error) is decoded again whole
by ``shared.bus.decode``, so a refused report is refused with the very error, field and message, it
always had.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from shared import subjects
from shared.bus import decode
from shared.messages import MAX_WORKLOADS_PER_REPORT, TelemetryReport, WorkloadReport

Memo = Mapping[bytes, WorkloadReport]
"""A report's workloads, by their canonical JSON."""


@dataclass(frozen=True, slots=True)
class Decoded:
    report: TelemetryReport
    memo: Memo
    """What ``Decoder.keep`` remembers for the cluster once the report is accepted."""
    validated: int
    """Workloads validated (the others were the same bytes as in the previous accepted report)."""


class Decoder:
    def __init__(self) -> None:
        self._memo: dict[str, Memo] = {}
        """Cluster id -> its latest accepted report's workloads. Only accepted reports are kept, so
        its size is bounded by the admitted clusters, not by what a flood of subjects sends."""

    def decode(self, subject: str, data: bytes) -> Decoded:
        """The report in ``data``; raises ``InvalidMessage`` exactly as ``decode(TelemetryReport, ...)`` does."""
        try:
            return self._fast(subject, data)
        except (orjson.JSONDecodeError, ValidationError, _Unusual):
            report = decode(TelemetryReport, data, subject=subject)  # raises the canonical error
            return Decoded(report, {}, len(report.workloads))

    def keep(self, cluster_id: str, decoded: Decoded, admitted: Callable[[str], bool] | None = None) -> None:
        """Remember an accepted report's workloads: the next report from the cluster reuses them.

        ``admitted``: which workload keys the hub holds, when admission may have cut some from the
        report (so a cluster reporting more than the hub admits does not grow the memo past them)."""
        memo = decoded.memo
        if admitted is not None:
            memo = {raw: model for raw, model in memo.items() if admitted(model.workload.key)}
        self._memo[cluster_id] = memo

    def forget(self, cluster_id: str) -> None:
        self._memo.pop(cluster_id, None)

    def _fast(self, subject: str, data: bytes) -> Decoded:
        raw = orjson.loads(data)
        if not isinstance(raw, dict):
            raise _Unusual
        items = raw.pop("workloads", [])
        if not isinstance(items, list) or len(items) > MAX_WORKLOADS_PER_REPORT:
            raise _Unusual
        previous = self._memo.get(subjects.cluster_of(subject), {})
        memo: dict[bytes, WorkloadReport] = {}
        workloads = []
        validated = 0
        for item in items:
            if not isinstance(item, dict):
                raise _Unusual
            canonical = orjson.dumps(item)
            model = memo.get(canonical) or previous.get(canonical)
            if model is None:
                model = WorkloadReport.model_validate_json(canonical)
                validated += 1
            memo[canonical] = model
            workloads.append(model)
        envelope = TelemetryReport.model_validate_json(orjson.dumps(raw), context={"wire": True})
        report = envelope.model_copy(update={"workloads": tuple(workloads)})
        return Decoded(report, memo, validated)


class _Unusual(Exception):
    """Input the fast path leaves to the whole-report decode."""
