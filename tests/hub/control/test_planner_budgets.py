"""The planner under budgets: two teams, one binding budget, a priority, causes and make before break."""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest

from hub.control.planner import Planner
from hub.metrics import HubMetrics
from hub.policy.budget import Budget
from hub.policy.cause import Cause
from hub.policy.model import Policy
from hub.state import FleetState
from shared.messages import WorkloadRef, WorkloadReport
from tests.hub.factories import node, report, workload

PRICES = {"L4": 0.8, "H100": 4.0}
FAST_UP = {"scale_up": {"policies": [{"type": "Percent", "value": 1000, "period_seconds": 15}]}}


def team_workload(namespace: str, name: str, **kw: Any) -> WorkloadReport:
    return workload(name, **kw).model_copy(update={"workload": WorkloadRef(namespace=namespace, name=name)})


def policy(namespace: str, name: str, priority: int = 0, min_replicas: int = 1) -> Policy:
    return Policy.model_validate({
        "id": name, "targets": {"workloads": [{"namespace": namespace, "name": name}]},
        "signals": [{"metric": "queue_per_replica", "target": 1}], "behavior": FAST_UP,
        "bounds": {"min_replicas": min_replicas, "max_replicas": 40}, "priority": priority,
    })


def budget(gpus: dict[str, int], cost: float | None = None, namespaces: tuple[str, ...] = ("team-a", "team-b")
           ) -> Budget:
    caps: dict[str, Any] = {"gpus": gpus}
    if cost is not None:
        caps["cost_per_hour"] = cost
    return Budget.model_validate({"id": "gpu-pool", "workloads": {"namespaces": list(namespaces)}, "caps": caps})


def fleet(chat: tuple[int, int], batch: tuple[int, int], free: int = 8) -> FleetState:
    s = FleetState()
    s.ingest(report("a", [team_workload("team-a", "chat", variants={"H100": chat}, waiting=40),
                          team_workload("team-b", "batch", variants={"H100": batch}, waiting=40)],
                    [node("H100", free, capacity=16)]), now=10.0)
    return s


def test_a_binding_budget_caps_both_teams_and_the_higher_priority_takes_the_room() -> None:
    planner = Planner(PRICES)
    plans = {p.view.key: p for p in planner.plan(
        fleet((2, 2), (4, 4)).snapshot(now=10.0),
        [policy("team-a", "chat", priority=10), policy("team-b", "batch", min_replicas=2)],
        budgets=[budget({"H100": 6})])}
    chat, batch = plans["team-a/chat"], plans["team-b/batch"]
    assert chat.result.total + batch.result.total == 6  # the cap, though 8 more H100s are free
    assert batch.result.total == 2  # reclaimed down to its min_replicas, not below
    assert chat.result.total == 4
    assert batch.placement_cause is Cause.PRIORITY
    assert any("reclaimed for higher priority: 2 of its 4 replicas" in n for n in batch.result.notes)
    assert chat.placement_cause is Cause.BUDGET
    assert any("budget gpu-pool at its cap of 6 H100 GPUs" in n for n in chat.result.notes)
    (use,) = planner.budget_use.values()
    assert use.gpus == {"H100": 6, "*": 6} and use.cost_per_hour == 24.0 and use.holds_minimums


def test_equal_priorities_under_a_budget_share_it_without_reclaiming_below_the_cap() -> None:
    plans = Planner(PRICES).plan(fleet((2, 2), (4, 4)).snapshot(now=10.0),
                                 [policy("team-a", "chat"), policy("team-b", "batch")], budgets=[budget({"*": 6})])
    assert sum(p.result.total for p in plans) == 6
    assert all(p.placement_cause in (Cause.BUDGET, None) for p in plans)


def test_a_usd_cap_binds_and_a_budget_too_small_for_the_minimums_is_said_and_measured() -> None:
    planner = Planner(PRICES)
    plans = planner.plan(fleet((0, 0), (0, 0)).snapshot(now=10.0),
                         [policy("team-a", "chat", min_replicas=3), policy("team-b", "batch", min_replicas=3)],
                         budgets=[budget({}, cost=16.0)])
    assert sum(p.result.total for p in plans) == 4  # 16 USD/h of 4 USD/h replicas
    assert all(any("min_replicas need at least" in n for n in p.result.notes) for p in plans)
    (use,) = planner.budget_use.values()
    assert not use.holds_minimums
    metrics = HubMetrics()
    metrics.record_budgets(list(planner.budget_use.values()))
    text = generate_latest(metrics.registry).decode()
    assert 'fleetscale_hub_budget_spend_usd_per_hour{budget="gpu-pool",team="gpu-pool"} 16.0' in text
    assert 'fleetscale_hub_budget_cap_usd_per_hour{budget="gpu-pool",team="gpu-pool"} 16.0' in text
    assert 'fleetscale_hub_budget_minimums_fit{budget="gpu-pool",team="gpu-pool"} 0.0' in text
    assert 'fleetscale_hub_budget_gpus{budget="gpu-pool",gpu_type="*",team="gpu-pool"} 4.0' in text


def test_workloads_outside_every_budget_are_not_capped() -> None:
    plans = {p.view.key: p for p in Planner(PRICES).plan(
        fleet((2, 2), (2, 2)).snapshot(now=10.0), [policy("team-a", "chat"), policy("team-b", "batch")],
        budgets=[budget({"H100": 2}, namespaces=("team-a",))])}
    assert plans["team-a/chat"].result.total == 2
    assert plans["team-b/batch"].result.total > 2


def test_make_before_break_keeps_moving_replicas_only_within_the_budget() -> None:
    # chat runs 3 L4s and moves to H100s (cheaper per load); the budget caps all GPUs at 4, so the
    # old L4s cannot stay while the H100s start: the move breaks first, and the note says why.
    s = FleetState()
    s.ingest(report("a", [team_workload("team-a", "chat", variants={"L4": (3, 3), "H100": (0, 0)}, waiting=6)],
                    [node("H100", 8), node("L4", 8)]), now=10.0)
    planner = Planner({"L4": 3.0, "H100": 1.0}, throughput={"L4": 1.0, "H100": 1.0})
    (plan,) = planner.plan(s.snapshot(now=10.0), [policy("team-a", "chat")], budgets=[budget({"*": 4})])
    assert sum(plan.result.placement.values()) <= 4
    assert any("budget gpu-pool has no room to keep the replicas being moved" in n for n in plan.result.notes)
    (free,) = planner.plan(s.snapshot(now=10.0), [policy("team-a", "chat")])
    assert any("make before break: kept" in n for n in free.result.notes)
