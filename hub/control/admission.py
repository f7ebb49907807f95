"""Admission: which clusters and workloads count, and what a report from the wrong time is.

The hub cannot tell a spoke from a forger by the message alone (per-spoke NATS credentials do that,
on the server); what it can do is refuse to let any one message change more than it should:

* a cluster counts only when admitted: named in ``HUB_CLUSTERS`` when that allow-list is set, or
  else on its first valid report while fewer than ``HUB_MAX_CLUSTERS`` are known. A cluster silent
  for ``HUB_CLUSTER_RETENTION_S`` is forgotten, which frees its slot.
* at most ``HUB_MAX_WORKLOADS`` logical workloads: a report's workloads beyond that are cut from
  it (and counted); the workloads already known keep being heard.
* a report dated more than ``HUB_MAX_CLOCK_SKEW_S`` ahead of the hub's clock is refused: kept, it
  would hide every later correct report (the newest ``sent_at`` wins). One dated so far back that it
  would already be stale is refused too: received now, it would count as fresh.

Every refusal returns a reason, which the caller counts (``fleetscale_hub_refused_messages_total``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.state import FleetState
from shared.messages import TelemetryReport


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: frozenset[str] | None
    """The allow-list; None admits clusters as they come, up to ``max_clusters``."""
    max_clusters: int
    max_workloads: int
    max_clock_skew_s: float
    stale_after_intervals: float

    def cluster(self, cluster_id: str, state: FleetState) -> str | None:
        """Why a report from ``cluster_id`` may not count (None: it may)."""
        if self.allowed is not None and cluster_id not in self.allowed:
            return "not_allowed"
        if not state.has_cluster(cluster_id) and state.cluster_count >= self.max_clusters:
            return "cluster_limit"
        return None

    def timing(self, report: TelemetryReport, now: datetime) -> str | None:
        """Why the report's ``sent_at`` is unacceptable against the hub's clock (None: it is fine)."""
        skew = timedelta(seconds=self.max_clock_skew_s)
        if report.sent_at > now + skew:
            return "future"
        if report.sent_at < now - skew - timedelta(seconds=self.stale_after_intervals * report.interval_s):
            return "too_old"
        return None

    def from_the_future(self, at: datetime, now: datetime) -> bool:
        return at > now + timedelta(seconds=self.max_clock_skew_s)

    def workloads(self, report: TelemetryReport, state: FleetState) -> tuple[TelemetryReport, int]:
        """The report with the workloads that do not fit cut out, and how many were cut."""
        room = self.max_workloads - state.workload_count
        kept, cut, new = [], 0, set()
        for w in report.workloads:
            key = w.workload.key
            if state.has_workload(key) or key in new:
                kept.append(w)
            elif room > 0:
                kept.append(w)
                new.add(key)
                room -= 1
            else:
                cut += 1
        if not cut:
            return report, 0
        return report.model_copy(update={"workloads": tuple(kept)}), cut
