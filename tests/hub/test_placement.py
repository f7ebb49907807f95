from __future__ import annotations

from hub.placement import CapacityLedger, Offer, place
from hub.state import FleetState
from tests.hub.factories import node, report, workload


def offer(c: str, t: str, cap: int, price: float) -> Offer:
    return Offer(c, t, cap, price)


def test_growth_fills_the_cheapest_type_first() -> None:
    r = place(6, {}, [offer("a", "H100", 10, 12.0), offer("b", "L4", 4, 0.8), offer("c", "A100", 10, 4.1)])
    assert r.placement == {("b", "L4"): 4, ("c", "A100"): 2}
    assert r.unplaced == 0


def test_current_placements_are_kept_when_growing() -> None:
    r = place(5, {("a", "H100"): 2}, [offer("a", "H100", 10, 12.0), offer("b", "L4", 10, 0.8)])
    assert r.placement == {("a", "H100"): 2, ("b", "L4"): 3}


def test_shrinking_removes_the_most_expensive_first() -> None:
    r = place(3, {("a", "H100"): 2, ("b", "L4"): 3}, [offer("a", "H100", 10, 12.0), offer("b", "L4", 10, 0.8)])
    assert r.placement == {("a", "H100"): 0, ("b", "L4"): 3}


def test_what_does_not_fit_is_reported_unplaced() -> None:
    r = place(9, {}, [offer("a", "H100", 2, 12.0), offer("b", "L4", 3, 0.8)])
    assert r.total == 5 and r.unplaced == 4 and r.notes


def test_replicas_on_a_stale_cluster_are_re_placed_elsewhere() -> None:
    r = place(4, {("a", "H100"): 2, ("gone", "L4"): 2}, [offer("a", "H100", 8, 12.0)])
    assert r.placement == {("a", "H100"): 4}
    assert any("gone" in n for n in r.notes)


def test_ledger_counts_free_gpus_once_across_workloads_in_a_tick() -> None:
    s = FleetState()
    s.ingest(report("a", [workload("x"), workload("y")], [node("L4", 4)]), now=10.0)
    ledger = CapacityLedger(s.snapshot(now=10.0), {"L4": 1.0})
    first = ledger.offers(gpus_per_replica=1, held={})
    assert first[0].capacity_replicas == 4
    ledger.consume({}, {("a", "L4"): 3}, 1)
    assert ledger.offers(gpus_per_replica=1, held={})[0].capacity_replicas == 1


def test_ledger_skips_gpu_types_without_a_price_and_respects_gpus_per_replica() -> None:
    s = FleetState()
    s.ingest(report("a", [workload()], [node("H100", 7), node("X9", 8)]), now=10.0)
    offers = CapacityLedger(s.snapshot(now=10.0), {"H100": 12.0}).offers(gpus_per_replica=2, held={("a", "H100"): 1})
    assert offers == [Offer("a", "H100", 4, 24.0)]  # 7 // 2 free + 1 held; price per replica


async def test_growth_is_only_placed_on_clusters_that_run_the_workload() -> None:
    from hub.decisions import DecisionLog
    from hub.evaluator import Evaluator
    from hub.metrics import HubMetrics
    from hub.policy.model import Policy

    class Policies:
        def all(self) -> list[Policy]:
            return [Policy.model_validate({"id": "x",
                                           "targets": {"workloads": [{"namespace": "inference", "name": "x"}]},
                                           "signals": [{"metric": "queue_per_replica", "target": 5}]})]

    class Dispatcher:
        def __init__(self) -> None:
            self.sent: list[dict[tuple[str, str], int]] = []

        def commands_for(self, snapshot, view, policy, placement, reason):  # type: ignore[no-untyped-def]
            self.sent.append(dict(placement))
            return []

    s = FleetState()
    s.ingest(report("cheap", [workload("y")], [node("L4", 8)]), now=10.0)  # runs another workload only
    s.ingest(report("dear", [workload("x", waiting=40)], [node("H100", 8)]), now=10.0)
    d = Dispatcher()
    ev = Evaluator(state=s, policies=Policies(), dispatcher=d, decisions=DecisionLog(), metrics=HubMetrics(),  # type: ignore[arg-type]
                   prices={"L4": 0.8, "H100": 12.0}, tick_s=1.0)
    s.snapshot = lambda now=None, _snap=s.snapshot: _snap(now=10.0)  # type: ignore[method-assign]
    await ev.tick()
    assert d.sent == [{("dear", "H100"): 8}]
