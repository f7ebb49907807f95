"""Failover and recovery, tick by tick, on real fleet state.

Two L4 clusters report once a second (interval 1 s, stale after 3); the hub ticks half a second after
each report. "b" is cheaper but capped at 4 replicas, so the workload runs 4 on b and 2 on a. Each
tick's placement is applied at once by every cluster that is reachable, as its next report shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.placement import (
    FailoverTracker,
    Offer,
    Phase,
    PlacementProblem,
    PlacementResult,
    WorkloadDemand,
    apply_failover,
    free_gpus,
    solve,
)
from hub.state import FleetState
from tests.hub.factories import node, report, workload

KEY = "inference/llama"
PRICE = {"a": 1.0, "b": 0.9}
GPUS = 8


@dataclass
class Fleet:
    """Clusters that report their replicas and apply the hub's placement."""

    failover: bool = True
    hold_s: float = 0.0
    state: FleetState = field(default_factory=FleetState)
    tracker: FailoverTracker = field(default_factory=FailoverTracker)
    replicas: dict[str, int] = field(default_factory=lambda: {"a": 2, "b": 4})
    reachable: dict[str, bool] = field(default_factory=lambda: {"a": True, "b": True})
    seq: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    notes: list[str] = field(default_factory=list)

    def second(self, t: int, demand: float) -> PlacementResult:
        """Reports at ``t``, then the hub's tick at ``t + 0.5`` and its placement applied."""
        for cid, n in self.replicas.items():
            self.seq[cid] += 1  # a partitioned spoke keeps counting; its reports just do not arrive
            if self.reachable[cid]:
                self.state.ingest(report(cid, [workload("llama", variants={"L4": (n, n)})], [node("L4", GPUS - n)],
                                         seq=self.seq[cid]), now=float(t))
        snap = self.state.snapshot(now=t + 0.5)
        health = self.tracker.observe(snap)
        current = snap.workloads[KEY].placement()
        pools = free_gpus(snap)
        w = WorkloadDemand(KEY, demand, tuple(Offer(c, g, None, PRICE[c]) for c, g in pools), current=current,
                           held=current, cluster_max={"b": 4})
        w, self.notes = apply_failover(w, health, throughput={"L4": 1.0}, failover=self.failover,
                                       hold_s=self.hold_s)
        result = solve(PlacementProblem((w,), pools)).results[KEY]
        for (cid, _), n in result.placement.items():
            if self.reachable[cid]:
                self.replicas[cid] = n
        self.phases = {c: h.phase for c, h in health.clusters.items()}
        return result


def run(fleet: Fleet, seconds: range, demand: float) -> None:
    for t in seconds:
        fleet.second(t, demand)


def lose(fleet: Fleet, cid: str, t: int, demand_before_stale: float) -> None:
    """``cid`` falls silent after its report at ``t - 1``: two ticks still see it, then it is stale."""
    fleet.reachable[cid] = False
    for tick in (t, t + 1):
        fleet.second(tick, demand_before_stale)
        assert fleet.phases[cid] is Phase.HEALTHY


def test_a_lost_cluster_is_re_placed_on_the_first_stale_tick_and_the_surplus_shrinks_once_it_is_trusted() -> None:
    fleet = Fleet()
    run(fleet, range(1, 11), demand=6)
    assert fleet.replicas == {"a": 2, "b": 4}

    lose(fleet, "b", 11, demand_before_stale=6)  # b's last report arrived at t=10
    assert fleet.replicas == {"a": 2, "b": 4}
    fleet.second(13, demand=2)  # 13.5 - 10 > 3 intervals: stale. a alone sees a third of the load...
    assert fleet.phases["b"] is Phase.LOST
    assert fleet.replicas["a"] == 6  # ...but b's 4 replicas are re-placed on this very tick
    assert any("failover" in n for n in fleet.notes)
    run(fleet, range(14, 20), demand=2)
    assert fleet.replicas["a"] == 6  # the replacements count as current: not added again

    fleet.reachable["b"] = True  # back, with its 4 replicas still running: 10 where 6 are needed
    for t, reports in ((20, 1), (21, 2)):
        r = fleet.second(t, demand=6)
        assert fleet.phases["b"] is Phase.RECOVERING and fleet.replicas == {"a": 6, "b": 4}
        assert r.churn == 0 and any(f"({reports}/3 reports)" in n for n in fleet.notes)
    fleet.second(22, demand=6)  # the third fresh report: trusted, and the surplus goes where it costs most
    assert fleet.phases["b"] is Phase.HEALTHY
    assert fleet.replicas == {"a": 2, "b": 4}
    for t in range(23, 30):
        r = fleet.second(t, demand=6)
        assert r.churn == 0 and fleet.replicas == {"a": 2, "b": 4}


def test_a_flapping_cluster_moves_nothing() -> None:
    fleet = Fleet()
    run(fleet, range(1, 11), demand=6)
    lose(fleet, "b", 11, demand_before_stale=6)
    run(fleet, range(13, 20), demand=2)
    assert fleet.replicas == {"a": 6, "b": 4}
    fleet.reachable["b"] = True
    fleet.second(20, demand=6)  # one report...
    assert fleet.phases["b"] is Phase.RECOVERING
    fleet.reachable["b"] = False  # ...and silent again
    for t in range(21, 30):
        r = fleet.second(t, demand=6 if t < 24 else 2)
        assert fleet.replicas == {"a": 6, "b": 4} and r.churn == 0
    assert fleet.phases["b"] is Phase.LOST


def test_a_recovering_cluster_gets_no_growth_even_when_cheaper() -> None:
    fleet = Fleet()
    run(fleet, range(1, 11), demand=6)
    lose(fleet, "b", 11, demand_before_stale=6)
    run(fleet, range(13, 20), demand=2)
    assert fleet.replicas["a"] == 6
    fleet.replicas["b"] = 1  # it lost 3 pods while it was away
    fleet.reachable["b"] = True
    fleet.second(20, demand=8)
    assert fleet.replicas == {"a": 7, "b": 1}  # growth on a; b, cheaper, holds what it runs
    run(fleet, range(21, 23), demand=8)
    assert fleet.phases["b"] is Phase.HEALTHY
    assert fleet.replicas == {"a": 4, "b": 4}  # trusted again: b takes back up to its cap


def test_without_failover_a_lost_share_comes_back_only_as_the_signal_asks() -> None:
    fleet = Fleet(failover=False)
    run(fleet, range(1, 11), demand=6)
    lose(fleet, "b", 11, demand_before_stale=6)
    run(fleet, range(13, 20), demand=2)
    assert fleet.replicas["a"] == 2
    run(fleet, range(20, 22), demand=5)
    assert fleet.replicas["a"] == 5


def test_a_second_loss_during_the_first_does_not_count_replacements_twice() -> None:
    fleet = Fleet()
    fleet.replicas, fleet.reachable, fleet.seq = {"a": 1, "b": 4, "c": 1}, {"a": True, "b": True, "c": True}, \
        {"a": 0, "b": 0, "c": 0}
    PRICE["c"] = 1.0
    try:
        run(fleet, range(1, 11), demand=6)
        assert fleet.replicas == {"a": 1, "b": 4, "c": 1}
        lose(fleet, "b", 11, demand_before_stale=6)
        run(fleet, range(13, 20), demand=2)
        assert fleet.replicas["a"] + fleet.replicas["c"] == 6
        lose(fleet, "c", 20, demand_before_stale=2)
        run(fleet, range(22, 30), demand=1)
        assert fleet.replicas["a"] == 6  # what the fleet ran before either loss, not 6 + c's replacements
    finally:
        del PRICE["c"]


def test_the_tracker_counts_fresh_reports_by_sequence_when_ticks_miss_some() -> None:
    state, tracker = FleetState(), FailoverTracker(recovery_reports=3)
    state.ingest(report("a", [], [node("L4", 8)], seq=1), now=0.0)
    assert tracker.observe(state.snapshot(now=0.5)).clusters["a"].phase is Phase.HEALTHY
    assert tracker.observe(state.snapshot(now=5.0)).clusters["a"].phase is Phase.LOST
    state.ingest(report("a", [], [node("L4", 8)], seq=7), now=6.0)
    assert tracker.observe(state.snapshot(now=6.5)).clusters["a"].fresh_reports == 1
    state.ingest(report("a", [], [node("L4", 8)], seq=9), now=8.0)  # seq 8 arrived between two ticks
    assert tracker.observe(state.snapshot(now=8.5)).clusters["a"].phase is Phase.HEALTHY


def test_two_clusters_lost_on_the_same_tick_re_place_the_sum_of_their_replicas() -> None:
    # A region partition or a NATS outage silences b and c at once: a must take 4 + 3, not max(4, 3).
    fleet = Fleet()
    fleet.replicas, fleet.reachable, fleet.seq = {"a": 1, "b": 4, "c": 3}, {"a": True, "b": True, "c": True}, \
        {"a": 0, "b": 0, "c": 0}
    PRICE["c"] = 1.0
    try:
        run(fleet, range(1, 11), demand=8)
        steady = dict(fleet.replicas)
        assert steady["b"] == 4 and steady["c"] > 0 and sum(steady.values()) == 8
        fleet.reachable["b"] = fleet.reachable["c"] = False
        run(fleet, range(11, 13), demand=8)
        fleet.second(13, demand=1)  # both stale on this tick; a alone sees an eighth of the load
        assert fleet.phases["b"] is Phase.LOST and fleet.phases["c"] is Phase.LOST
        assert fleet.replicas["a"] == steady["a"] + steady["b"] + steady["c"]
        run(fleet, range(14, 20), demand=1)
        assert fleet.replicas["a"] == 8  # and not again on later ticks
    finally:
        del PRICE["c"]


def test_a_backlog_that_arrives_in_one_burst_counts_as_one_fresh_report() -> None:
    # The spoke was cut off from the bus and its client buffered what it sent: on reconnect, seven
    # reports arrive at once. They were sent a second apart, but the hub heard them in one instant.
    state, tracker = FleetState(), FailoverTracker(recovery_reports=3)
    state.ingest(report("a", [], [node("L4", 8)], seq=1), now=0.0)
    assert tracker.observe(state.snapshot(now=0.5)).clusters["a"].phase is Phase.HEALTHY
    assert tracker.observe(state.snapshot(now=5.0)).clusters["a"].phase is Phase.LOST
    for seq in range(2, 9):
        state.ingest(report("a", [], [node("L4", 8)], seq=seq), now=6.0)
    assert tracker.observe(state.snapshot(now=6.01)).clusters["a"].phase is Phase.RECOVERING
    for seq in (9, 10):  # the rest of the burst, read after the tick
        state.ingest(report("a", [], [node("L4", 8)], seq=seq), now=6.02)
    health = tracker.observe(state.snapshot(now=6.5))
    assert health.clusters["a"].phase is Phase.RECOVERING and health.clusters["a"].fresh_reports == 1
    state.ingest(report("a", [], [node("L4", 8)], seq=11), now=7.0)
    assert tracker.observe(state.snapshot(now=7.5)).clusters["a"].fresh_reports == 2
    state.ingest(report("a", [], [node("L4", 8)], seq=12), now=8.0)
    assert tracker.observe(state.snapshot(now=8.5)).clusters["a"].phase is Phase.HEALTHY


def test_silence_is_counted_only_while_the_hub_listens() -> None:
    state = FleetState()
    state.ingest(report("a", [], [node("L4", 8)], seq=1), now=0.0)
    assert state.snapshot(now=5.0).clusters["a"].stale
    state.listen_from(4.0)  # the hub stood still until 4.0: a's reports may be waiting unread
    assert not state.snapshot(now=5.0).clusters["a"].stale
    assert state.snapshot(now=7.5).clusters["a"].stale  # three intervals of listening, and nothing


def test_after_an_outage_longer_than_the_scale_down_window_the_return_does_not_shrink_on_outage_counts() -> None:
    # During the outage a alone saw a third of the load, so the signal asked for 2 for longer than
    # the 5 s scale-down window; just after b's return the windowed signal still says 2. Shrinking
    # on that removed b's running replicas, and the next full reading grew them back.
    fleet = Fleet(hold_s=5.0)
    run(fleet, range(1, 11), demand=6)
    lose(fleet, "b", 11, demand_before_stale=6)
    run(fleet, range(13, 31), demand=2)
    assert fleet.replicas == {"a": 6, "b": 4}
    fleet.reachable["b"] = True
    for t in range(31, 40):
        fleet.second(t, demand=2 if t < 36 else 6)
        assert fleet.replicas["b"] == 4 and sum(fleet.replicas.values()) >= 6, (t, fleet.replicas)
        if t == 34:  # trusted again (t=33), and the signal still says 2
            assert any("after its return" in n for n in fleet.notes), fleet.notes
    assert fleet.replicas == {"a": 2, "b": 4}
    # Back for longer than the window: a low reading now speaks for the whole fleet and is followed.
    run(fleet, range(40, 46), demand=3)
    assert sum(fleet.replicas.values()) == 3
