"""Fleet state: the latest report per cluster, its freshness, and the hub's intents.

Only ``hub.control.intake`` writes telemetry here and only ``hub.control.dispatch`` writes intents and results;
everyone else reads an immutable ``FleetSnapshot``. A cluster is *stale* once no report arrived for
``stale_after_intervals`` of its own report intervals while the hub was listening (as OCM marks a
cluster Unknown after missed lease renewals; time the hub itself stood still does not count): its
capacity stops counting and its replicas stop counting as current, so policy and placement re-place
its share on healthy clusters.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Iterable, KeysView, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from shared.messages import CommandResult, ResultStatus, TelemetryReport, WorkloadReport

Placement = dict[tuple[str, str], int]
"""Replicas per (cluster id, GPU type)."""


def inventory_types(report: TelemetryReport) -> frozenset[str]:
    return frozenset(node.gpu_type for node in report.inventory)


@dataclass(frozen=True, slots=True)
class ClusterView:
    cluster_id: str
    report: TelemetryReport
    received_at: float
    """Monotonic time the report arrived."""
    stale: bool
    gpu_types: frozenset[str] | None = None
    """The GPU types of its inventory; computed from the report when not given (``FleetState``
    computes them once per report, not once per workload that asks)."""

    share: tuple[int, int] = (0, 1)
    """(rank, hubs): with sharded hubs, this hub is offered only its share of each pool's free GPUs
    (``share_of``), so two shards never fill the same ones (``hub.control.shard``)."""

    def __post_init__(self) -> None:
        if self.gpu_types is None:
            object.__setattr__(self, "gpu_types", inventory_types(self.report))

    def free_gpus(self) -> dict[str, int]:
        free: dict[str, int] = {}
        for node in self.report.inventory:
            free[node.gpu_type] = free.get(node.gpu_type, 0) + node.free_gpus
        if self.share != (0, 1):
            return {t: share_of(n, *self.share) for t, n in free.items()}
        return free


def share_of(free: int, rank: int, hubs: int) -> int:
    """Hub ``rank``'s part of ``free`` GPUs split between ``hubs``: the parts add up to ``free``
    exactly, the first ranks taking one more each when it does not divide."""
    return free // hubs + (1 if rank < free % hubs else 0)


@dataclass(frozen=True, slots=True)
class WorkloadView:
    """One logical workload across all *fresh* clusters."""

    key: str
    reports: Mapping[str, WorkloadReport]
    """Per fresh cluster id."""
    stale_clusters: tuple[str, ...] = ()

    @property
    def desired_replicas(self) -> int:
        return sum(r.desired_replicas for r in self.reports.values())

    @property
    def ready_replicas(self) -> int:
        return sum(r.ready_replicas for r in self.reports.values())

    @property
    def labels(self) -> dict[str, str]:
        """The workload object's labels; clusters should agree, and the first one (by id) wins."""
        out: dict[str, str] = {}
        for _, r in sorted(self.reports.items(), reverse=True):
            out.update(r.labels)
        return out

    @property
    def gpus_per_replica(self) -> int:
        return max((r.gpus_per_replica for r in self.reports.values()), default=1)

    def placement(self) -> Placement:
        out: Placement = {}
        for cluster_id, r in self.reports.items():
            if r.variants:
                for v in r.variants:
                    out[(cluster_id, v.gpu_type)] = v.desired_replicas
            elif r.desired_replicas:
                out[(cluster_id, "unknown")] = r.desired_replicas
        return out


class Phase(StrEnum):
    """Where a command the hub sent stands; ``Intent.phase`` is the one place that works it out."""

    IN_FLIGHT = "in_flight"
    """Sent, no result yet."""
    APPLIED_UNSEEN = "applied_unseen"
    """Applied, but no report the spoke started reading after the result has arrived yet."""
    SEEN = "seen"
    """Applied, and a report read after it has arrived: from now on telemetry is the truth."""
    REFUSED = "refused"
    """The cluster answered that it did nothing (rejected, or failed): it started nothing."""

    @property
    def stands(self) -> bool:
        """What the hub asked stands for the cluster's ``spec.replicas``: asked and not yet shown
        (or denied) by the cluster. Placement counts it as current and the workload is unsettled."""
        return self in (Phase.IN_FLIGHT, Phase.APPLIED_UNSEEN)

    @property
    def live(self) -> bool:
        """The intent still says more than the cluster's reports (``FleetSnapshot.live_intent``):
        it stands, or it was refused (dispatch paces retries with it)."""
        return self is not Phase.SEEN


@dataclass(frozen=True, slots=True)
class Intent:
    """What the hub last asked of one workload in one cluster, and what came of it."""

    command_id: str
    replicas_by_gpu_type: Mapping[str, int]
    issued_at: datetime
    sent_monotonic: float
    result: CommandResult | None = None
    seen: bool = False
    """A report the spoke started reading after an applied result has arrived (both times are the
    same spoke's clock); set by ``FleetState``, meaningful only once the result is applied."""

    @property
    def phase(self) -> Phase:
        if self.result is None:
            return Phase.IN_FLIGHT
        if self.result.status is not ResultStatus.APPLIED:
            return Phase.REFUSED
        return Phase.SEEN if self.seen else Phase.APPLIED_UNSEEN
    attempts: int = 1
    """Sends of this same target in a row: above 1, the cluster applied it and then drifted away."""


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    clusters: Mapping[str, ClusterView]
    workloads: Mapping[str, WorkloadView]
    intents: Mapping[tuple[str, str], Intent]
    """Keyed (workload key, cluster id)."""
    taken_at: float

    @property
    def fresh(self) -> dict[str, ClusterView]:
        return {cid: c for cid, c in self.clusters.items() if not c.stale}

    def live_intent(self, workload_key: str, cluster_id: str) -> Intent | None:
        """The hub's last ask of a cluster, while it still says more than the cluster's reports.

        In flight, or refused (dispatch paces retries with it): always. Applied: only until a report
        the spoke *started reading after the result* arrives (``Phase.SEEN``); from then on telemetry
        is the truth, so drift (a manual scale, a restarted controller) is seen and corrected.
        """
        intent = self.intents.get((workload_key, cluster_id))
        return intent if intent is not None and intent.phase.live else None

    def current_placement(self, view: WorkloadView) -> Placement:
        """Observed placement on fresh clusters, with the intents that stand (in flight, or applied and
        not yet seen) taking precedence.

        This is the workload's ``spec.replicas`` as the HPA would read it: what the hub last asked,
        until telemetry read after the answer shows the truth.
        """
        current = view.placement()
        for cluster_id in view.reports:
            intent = self.intents.get((view.key, cluster_id))
            if intent is None or not intent.phase.stands:
                continue
            for key in [k for k in current if k[0] == cluster_id]:
                del current[key]
            for gpu_type, n in intent.replicas_by_gpu_type.items():
                if n:
                    current[(cluster_id, gpu_type)] = n
        return current


Moved = Callable[[WorkloadReport | None, WorkloadReport], bool]
"""Whether a workload's new report (from one cluster) says something its previous one did not."""


@dataclass
class FleetState:
    stale_after_intervals: float = 3.0
    listening_since: float = float("-inf")
    """Monotonic time since which the hub has been able to hear reports (``listen_from``)."""
    moved: Moved | None = None
    """When set, ``ingest`` marks the workloads whose reports moved (``take_changed``), and calls
    ``on_change`` when the first one is marked: event-driven evaluation (``hub.control.tick``)."""
    on_change: Callable[[], None] | None = None
    _reports: dict[str, tuple[TelemetryReport, float]] = field(default_factory=dict)
    _intents: dict[tuple[str, str], Intent] = field(default_factory=dict)
    _unseen: dict[str, set[str]] = field(default_factory=dict)
    """Cluster id -> workload keys whose intent there is applied and not yet seen (``Phase.APPLIED_UNSEEN``),
    so a report looks only at those."""
    _workload_refs: dict[str, int] = field(default_factory=dict)
    """Workload key -> how many clusters' latest reports carry it (the hub's bound counts keys)."""
    _changed: dict[str, None] = field(default_factory=dict)
    """Workloads marked since the last ``take_changed``, oldest mark first."""
    _by_key: dict[str, dict[str, WorkloadReport]] = field(default_factory=dict)
    """Cluster id -> its latest report's workloads by key, so a snapshot of a few workloads and change
    detection look them up instead of scanning the whole fleet."""
    _types: dict[str, frozenset[str]] = field(default_factory=dict)
    """Cluster id -> the GPU types of its latest report's inventory."""

    # --- writers ------------------------------------------------------------------------------

    def ingest(self, report: TelemetryReport, *, now: float | None = None) -> bool:
        """Keep the report if it is the newest from its cluster. Returns whether it was kept."""
        previous = self._reports.get(report.cluster_id)
        if previous is not None and report.sent_at < previous[0].sent_at:
            return False  # re-ordered or replayed: the latest report wins
        self._reports[report.cluster_id] = (report, time.monotonic() if now is None else now)
        before = self._by_key.get(report.cluster_id, {})
        after = self._by_key[report.cluster_id] = {w.workload.key: w for w in report.workloads}
        if before.keys() != after.keys():  # the common case at 1 Hz: the same workloads, nothing to count
            self._count_workloads(before.keys() - after.keys(), -1)
            self._count_workloads(after.keys() - before.keys(), +1)
        self._types[report.cluster_id] = inventory_types(report)
        waiting = self._unseen.pop(report.cluster_id, set())
        for workload_key in waiting:
            self._mark_if_seen(workload_key, report)
        if self.moved is not None:
            self._mark_moved(before, report)
        return True

    def forget(self, cluster_id: str) -> None:
        """Drop a cluster, its report and the hub's intents for it (a cluster silent past retention)."""
        self._reports.pop(cluster_id, None)
        self._count_workloads(self._by_key.pop(cluster_id, {}).keys(), -1)
        self._types.pop(cluster_id, None)
        for key in [k for k in self._intents if k[1] == cluster_id]:
            del self._intents[key]

    def _count_workloads(self, keys: Iterable[str], delta: int) -> None:
        for key in keys:
            n = self._workload_refs.get(key, 0) + delta
            if n > 0:
                self._workload_refs[key] = n
            else:
                self._workload_refs.pop(key, None)

    def _mark_moved(self, before: dict[str, WorkloadReport], report: TelemetryReport) -> None:
        """``before``: the cluster's previous workloads, replaced by ``report``'s and so emptied here
        (not copied: a copy of a thousand entries per report was the only use of it)."""
        had = bool(self._changed)
        moved = self.moved
        assert moved is not None
        for w in report.workloads:
            key = w.workload.key
            if moved(before.pop(key, None), w):
                self._changed.setdefault(key)
        self._changed.update(dict.fromkeys(before))  # gone from the cluster's report (a key marked keeps its place)
        if not had and self._changed and self.on_change is not None:
            self.on_change()

    def take_changed(self) -> KeysView[str]:
        """The workloads whose reports moved since the last call, oldest first (and forget them)."""
        out, self._changed = self._changed, {}
        return out.keys()

    def listen_from(self, now: float) -> None:
        """The hub hears reports again from ``now`` (it started, its event loop was stalled, or its NATS
        connection was down; a time ahead grants the clusters a grace to be heard from again).

        Silence is only counted while the hub listens: after a pause (SIGSTOP, a VM freeze, a starved
        loop) every cluster would look silent, though their reports wait unread in the socket.
        """
        self.listening_since = max(self.listening_since, now)

    def record_intent(self, workload_key: str, cluster_id: str, intent: Intent) -> None:
        self._intents[(workload_key, cluster_id)] = intent
        self._unseen.get(cluster_id, set()).discard(workload_key)
        if intent.phase is Phase.APPLIED_UNSEEN:
            self._watch(workload_key, cluster_id)

    def forget_intents(self, cluster_id: str) -> int:
        """Drop what the hub asked of ``cluster_id`` (its commands were revoked); return how many."""
        gone = [k for k in self._intents if k[1] == cluster_id]
        for k in gone:
            del self._intents[k]
        return len(gone)

    def record_result(self, result: CommandResult) -> Intent | None:
        key = (result.workload.key, result.cluster_id)
        intent = self._intents.get(key)
        if intent is None or intent.command_id != result.command_id:
            return None  # a result for a superseded command: nothing to update
        self._intents[key] = dataclasses.replace(intent, result=result, seen=False)
        if result.status is ResultStatus.APPLIED:
            self._watch(*key)
        if self.moved is not None:  # a result is an input: the workload may shrink now, or retry
            had = bool(self._changed)
            self._changed.setdefault(result.workload.key)
            if not had and self.on_change is not None:
                self.on_change()
        return self._intents[key]

    def _watch(self, workload_key: str, cluster_id: str) -> None:
        """An applied intent: seen now if the cluster's latest report was read after it, else at a later report."""
        latest = self._reports.get(cluster_id)
        if latest is None:
            self._unseen.setdefault(cluster_id, set()).add(workload_key)
        else:
            self._mark_if_seen(workload_key, latest[0])

    def _mark_if_seen(self, workload_key: str, report: TelemetryReport) -> None:
        """Mark the applied intent seen if ``report`` was read after its result, else keep watching it."""
        key = (workload_key, report.cluster_id)
        intent = self._intents.get(key)
        if intent is None or intent.result is None or intent.phase is not Phase.APPLIED_UNSEEN:
            return  # superseded, or no longer applied-unseen: nothing left to watch
        if report.sent_at < intent.result.completed_at:
            self._unseen.setdefault(report.cluster_id, set()).add(workload_key)
        else:
            self._intents[key] = dataclasses.replace(intent, seen=True)

    def restore_intent(self, workload_key: str, cluster_id: str, previous: Intent | None) -> None:
        """Put back the intent a command replaced, when that command was never published."""
        if previous is None:
            self._intents.pop((workload_key, cluster_id), None)
        else:
            self._intents[(workload_key, cluster_id)] = previous

    # --- readers ------------------------------------------------------------------------------

    def has_cluster(self, cluster_id: str) -> bool:
        return cluster_id in self._reports

    @property
    def cluster_count(self) -> int:
        return len(self._reports)

    def has_workload(self, key: str) -> bool:
        return key in self._workload_refs

    @property
    def workload_count(self) -> int:
        return len(self._workload_refs)

    def intent(self, workload_key: str, cluster_id: str) -> Intent | None:
        return self._intents.get((workload_key, cluster_id))

    def silent_clusters(self, *, older_than_s: float, now: float | None = None) -> list[str]:
        """Clusters whose last report arrived more than ``older_than_s`` ago."""
        now = time.monotonic() if now is None else now
        return [cid for cid, (_, received_at) in self._reports.items() if now - received_at > older_than_s]


    def is_stale(self, report: TelemetryReport, received_at: float, now: float) -> bool:
        heard_from = max(received_at, self.listening_since)
        return now - heard_from > self.stale_after_intervals * report.interval_s

    def workload_keys(self) -> set[str]:
        return set(self._workload_refs)  # the keys some cluster's latest report carries

    def snapshot(self, *, now: float | None = None, only: Collection[str] | None = None,
                 scope: Callable[[str], bool] | None = None) -> FleetSnapshot:
        """The fleet now; with ``only``, just those workloads (and their intents), every cluster; with
        ``scope``, only the workloads it accepts (a sharded hub's own)."""
        now = time.monotonic() if now is None else now
        clusters = {
            cid: ClusterView(cid, report, received_at, self.is_stale(report, received_at, now), self._types.get(cid))
            for cid, (report, received_at) in self._reports.items()
        }
        reports: dict[str, dict[str, WorkloadReport]] = {}
        stale_of: dict[str, list[str]] = {}
        for cid, view in clusters.items():
            if only is None:
                items: Iterable[tuple[str, WorkloadReport]] = ((w.workload.key, w) for w in view.report.workloads)
            else:  # looked up, not scanned: an evaluation of a few workloads costs as much at any fleet size
                index = self._by_key.get(cid, {})
                items = ((key, index[key]) for key in only if key in index)
            for key, w in items:
                if scope is not None and not scope(key):
                    continue
                if view.stale:
                    stale_of.setdefault(key, []).append(cid)
                else:
                    reports.setdefault(key, {})[cid] = w
        keys = set(reports) | set(stale_of)
        workloads = {
            k: WorkloadView(k, reports.get(k, {}), tuple(sorted(stale_of.get(k, ())))) for k in sorted(keys)
        }
        if only is None and scope is None:
            intents = dict(self._intents)
        else:
            intents = {k: i for k in ((key, cid) for key in workloads for cid in clusters)
                       if (i := self._intents.get(k)) is not None}
        return FleetSnapshot(clusters, workloads, intents, now)


def pool_share(snapshot: FleetSnapshot, rank: int, hubs: int) -> FleetSnapshot:
    """``snapshot`` with each cluster offering hub ``rank`` of ``hubs`` only its share of free GPUs."""
    clusters = {cid: dataclasses.replace(c, share=(rank, hubs)) for cid, c in snapshot.clusters.items()}
    return dataclasses.replace(snapshot, clusters=clusters)
