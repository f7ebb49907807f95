"""Failover and hysteresis: what a lost cluster's replicas become, and how a returning one is trusted.

A cluster is in one of three phases, advanced once per tick by ``FailoverTracker.observe``:

* **healthy**: placed on like any other.
* **lost**: stale (no report for ``stale_after_intervals`` of its report intervals). It offers nothing
  and its replicas do not count as current. On the first tick it is lost, every workload it ran gets
  a *baseline*: the replicas per GPU type that workload ran on the fresh clusters plus every cluster
  lost on that tick (two lost together add up), as last reported. While any of its clusters is
  lost, a workload's demand is at least its baseline's load, so the lost replicas are re-placed on
  healthy clusters at once, and later ticks do not add them again (the replacements now count as
  current). A second loss during the first takes ``max(baseline, fresh + newly lost)``: the
  replacements already placed are not counted twice. The baseline lasts until every cluster of the
  workload is healthy again.
* **recovering**: reports again, but has not yet reported for ``recovery_reports`` report intervals
  in a row since it was lost, by both the hub's arrival times and the spoke's send times (a backlog
  that arrives in one burst counts once: ``reports_in_span``). Its replicas count as current, it
  gets no growth, and it is not shrunk; a workload that holds replicas on it is not shrunk anywhere.
  A cluster that flaps (back for a report, then stale again) is the same loss, with the same
  baseline: it moves nothing, and the surplus of replacements plus returning replicas is left alone
  until the cluster is trusted.
* Once every cluster of a workload is healthy again, its baseline stays a floor for the policy's
  scale-down window (``apply_failover``'s ``hold_s``): signals read during a long outage saw part of
  the fleet, and a shrink on them would remove the returning cluster's replicas only to grow them
  back.
* Once it has sent ``recovery_reports`` fresh reports it is healthy, and the surplus is shrunk in one
  step by the solver, from wherever it costs most per unit of load (replacements or returning
  replicas alike). The next tick sees that placement as current and churn keeps it: no oscillation.

With failover off a policy gets no baseline: a lost cluster's share comes back only as far as the
policy's own signal asks for it. Recovery applies either way: a cluster that just came back is not
trusted with growth.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from hub.placement.offers import Offer, WorkloadDemand
from hub.state import FleetSnapshot

MAX_RETURN_HOLD_S = 3600.0
"""A baseline is forgotten this long after its clusters returned: the longest scale-down window a
policy may set."""

DEFAULT_RECOVERY_REPORTS = 3
"""Fresh reports in a row before a returning cluster is healthy: the same count that marks it stale,
so trust is regained as slowly as it is lost."""


class Phase(StrEnum):
    HEALTHY = "healthy"
    LOST = "lost"
    RECOVERING = "recovering"


@dataclass(frozen=True, slots=True)
class ClusterHealth:
    phase: Phase
    fresh_reports: int = 0
    """Fresh reports in a row since the cluster came back (recovering only)."""


@dataclass(frozen=True, slots=True)
class FleetHealth:
    clusters: Mapping[str, ClusterHealth]
    baselines: Mapping[str, Mapping[str, int]]
    """Per workload with a lost or recovering cluster: replicas per GPU type it ran before the loss."""
    recovery_reports: int = DEFAULT_RECOVERY_REPORTS
    newly_lost: frozenset[str] = frozenset()
    """Clusters that went stale on this tick (their pending commands are revoked by dispatch)."""
    returned_at: Mapping[str, float] = dataclasses.field(default_factory=dict)
    """Per workload whose clusters are all healthy again: when (snapshot time) that happened. Its
    baseline stays a floor for a while after (``apply_failover``'s ``hold_s``)."""
    taken_at: float = 0.0
    """The snapshot time these phases were observed at."""

    recovering: frozenset[str] = dataclasses.field(init=False)
    """Clusters back from stale but not yet trusted; every workload's placement asks, so once."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "recovering", self.in_phase(Phase.RECOVERING))

    def in_phase(self, phase: Phase) -> frozenset[str]:
        return frozenset(cid for cid, h in self.clusters.items() if h.phase is phase)


@dataclass
class _Seen:
    phase: Phase
    sent_at: datetime
    fresh_reports: int = 0
    back_received_at: float = 0.0
    """Recovering: hub arrival time (monotonic) of the first report after the loss."""
    back_sent_at: datetime | None = None
    """Recovering: the spoke's send time of that report."""


def reports_in_span(received: float, sent: float, interval_s: float) -> int:
    """Reports a cluster has sent in a row since it came back, by time, not by count.

    The span is the shorter of the two clocks: a backlog that arrives in one burst (buffered while
    the spoke was cut off, or while the hub was paused) spans seconds of send time but no arrival
    time, so it counts as one report; reports that only arrive spaced out but were sent together
    count as one too. ``1 +`` whole intervals, with a tenth of an interval for jitter.
    """
    span = min(received, sent)
    return 1 + max(0, int(span / interval_s + 0.1)) if interval_s > 0 else 1


@dataclass
class FailoverTracker:
    """Cluster phases across ticks. One per hub; fed one snapshot per tick, in order."""

    recovery_reports: int = DEFAULT_RECOVERY_REPORTS
    _seen: dict[str, _Seen] = field(default_factory=dict)
    _baselines: dict[str, dict[str, int]] = field(default_factory=dict)
    _returned_at: dict[str, float] = field(default_factory=dict)

    def observe(self, snapshot: FleetSnapshot) -> FleetHealth:
        newly_lost = []
        for cid, view in snapshot.clusters.items():
            report = view.report
            seen = self._seen.get(cid)
            if view.stale:
                # Lost again while recovering is the same loss: its replacements still run, and a
                # new baseline would count them on top of the returning replicas.
                if seen is None or seen.phase is Phase.HEALTHY:
                    newly_lost.append(cid)
                self._seen[cid] = _Seen(Phase.LOST, report.sent_at)
                continue
            if seen is None:
                self._seen[cid] = _Seen(Phase.HEALTHY, report.sent_at)
                continue
            if seen.phase is Phase.LOST:
                # The report that ended the staleness is the first fresh one.
                seen.phase, seen.fresh_reports = Phase.RECOVERING, 1
                seen.back_received_at, seen.back_sent_at = view.received_at, report.sent_at
            elif seen.phase is Phase.RECOVERING and report.sent_at != seen.sent_at:
                back_sent = seen.back_sent_at or report.sent_at
                seen.fresh_reports = reports_in_span(
                    view.received_at - seen.back_received_at,
                    (report.sent_at - back_sent).total_seconds(),
                    report.interval_s,
                )
            if seen.phase is Phase.RECOVERING and seen.fresh_reports >= self.recovery_reports:
                seen.phase, seen.fresh_reports, seen.back_sent_at = Phase.HEALTHY, 0, None
            seen.sent_at = report.sent_at
        for cid in list(self._seen):
            if cid not in snapshot.clusters:
                del self._seen[cid]
        self._update_baselines(snapshot, newly_lost)
        return FleetHealth(
            {cid: ClusterHealth(s.phase, s.fresh_reports) for cid, s in self._seen.items()},
            {k: dict(v) for k, v in self._baselines.items()},
            self.recovery_reports,
            frozenset(newly_lost),
            dict(self._returned_at),
            snapshot.taken_at,
        )

    def quiet(self, snapshot: FleetSnapshot) -> bool:
        """Every cluster of ``snapshot`` known and healthy, fresh in it, and no baseline held: nothing
        for failover to do, so part of the fleet may be planned alone."""
        if self._baselines or self._seen.keys() - snapshot.clusters.keys():
            return False
        # A cluster seen for the first time and fresh becomes healthy with no baseline; its
        # workloads' first reports mark them changed anyway.
        return all(not c.stale and (cid not in self._seen or self._seen[cid].phase is Phase.HEALTHY)
                   for cid, c in snapshot.clusters.items())

    def _update_baselines(self, snapshot: FleetSnapshot, newly_lost: list[str]) -> None:
        unsettled = {cid for cid, s in self._seen.items() if s.phase is not Phase.HEALTHY}
        now = snapshot.taken_at
        for key in list(self._baselines):
            view = snapshot.workloads.get(key)
            returned = self._returned_at.get(key)
            if view is None or (returned is not None and now - returned > MAX_RETURN_HOLD_S):
                self._forget(key)
            elif (set(view.stale_clusters) | set(view.reports)) & unsettled:
                self._returned_at.pop(key, None)  # lost again (a flap): the same loss goes on
            elif returned is None:
                self._returned_at[key] = now  # every cluster of it is healthy again
        # Per workload, the replicas of *every* cluster lost on this tick: two clusters lost together
        # (a region partition, a NATS outage) each lose their share, and the survivors must take both.
        lost_of: dict[str, dict[str, int]] = {}
        for cid in newly_lost:
            for w in snapshot.clusters[cid].report.workloads:
                lost = lost_of.setdefault(w.workload.key, {})
                for v in w.variants:
                    lost[v.gpu_type] = lost.get(v.gpu_type, 0) + v.desired_replicas
                if not w.variants and w.desired_replicas:
                    lost["unknown"] = lost.get("unknown", 0) + w.desired_replicas
        for key, lost in lost_of.items():
            view = snapshot.workloads.get(key)
            if view is None:
                continue
            counts = dict(lost)
            for (_, gpu_type), n in view.placement().items():
                counts[gpu_type] = counts.get(gpu_type, 0) + n
            if key in self._returned_at:
                self._forget(key)  # a new loss after a finished one: counted afresh
            before = self._baselines.get(key)
            # A loss during an earlier one: the fresh clusters already run that loss's replacements,
            # so the larger of the two counts, never their sum.
            if before is None or _total(counts) > _total(before):
                self._baselines[key] = counts


    def _forget(self, key: str) -> None:
        self._baselines.pop(key, None)
        self._returned_at.pop(key, None)


def _total(replicas: Mapping[str, int]) -> int:
    return sum(replicas.values())


def apply_failover(
    demand: WorkloadDemand,
    health: FleetHealth,
    *,
    throughput: Mapping[str, float],
    failover: bool = True,
    hold_s: float = 0.0,
) -> tuple[WorkloadDemand, list[str]]:
    """``demand`` with the baseline of its lost clusters and the hold of its recovering ones.

    Once every cluster of the workload is healthy again, the baseline stays a floor for ``hold_s``
    more (the policy's scale-down window): the counts its signals gave during the outage were read
    on part of the fleet, and a windowed signal still carries them after the return. Shrinking on
    them removed replicas of the returning cluster that the next full reading grew back.

    ``throughput`` is load per replica by GPU type, in the demand's units; a type it does not know
    (a cluster that reported no GPU type) counts as one reference replica.
    """
    notes: list[str] = []
    baseline = health.baselines.get(demand.key) if failover else None
    returned = health.returned_at.get(demand.key)
    if baseline and returned is not None and health.taken_at - returned >= hold_s:
        baseline = None  # back for a whole scale-down window: the signals speak for the whole fleet
    if baseline:
        load = sum(n * throughput.get(t, demand.reference_throughput) for t, n in baseline.items())
        if load > demand.demand:
            if returned is None:
                notes.append(f"failover: held at the {_total(baseline)} replicas it ran before losing a cluster, "
                             "re-placed on healthy clusters")
            else:
                notes.append(f"failover: held at the {_total(baseline)} replicas it ran before losing a cluster "
                             f"for {hold_s:.0f}s after its return (signals read during the outage saw part of "
                             "the fleet)")
            demand = dataclasses.replace(demand, demand=load)
    recovering = health.recovering
    if not recovering:
        return demand, notes
    holds = sorted({c for (c, _), n in demand.held.items() if n > 0 and c in recovering})
    offers = tuple(
        _no_growth(o, demand.held.get(o.key, 0)) if o.cluster_id in recovering else o for o in demand.offers
    )
    floor = dict(demand.floor)
    if holds:
        for k, n in demand.current.items():
            floor[k] = max(floor.get(k, 0), n)
        states = ", ".join(f"{c} ({health.clusters[c].fresh_reports}/{health.recovery_reports} reports)"
                           for c in holds)
        notes.append(f"recovering: {states}; no growth there and no shrink until it is trusted again")
    return dataclasses.replace(demand, offers=offers, floor=floor), notes


def _no_growth(o: Offer, held: int) -> Offer:
    cap = held if o.capacity_replicas is None else min(o.capacity_replicas, held)
    return dataclasses.replace(o, capacity_replicas=cap)
