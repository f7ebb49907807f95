"""Event-driven evaluation: what is re-planned when, on real fleet state and the real planner."""

from __future__ import annotations

from functools import partial
from typing import Any

from hub.control.changes import moved
from hub.control.dispatch import Dispatcher
from hub.control.tick import Evaluator
from hub.decisions.log import DecisionLog
from hub.metrics import HubMetrics
from hub.policy.advice import WorkloadAdvice
from hub.policy.model import Policy
from hub.state import FleetState
from shared.errors import BusUnavailable
from shared.messages import Percentiles, Samples
from tests.hub.factories import FixedPolicies, node, report, workload

PRICES = {"H100": 12.0}


def test_a_report_moves_a_workload_only_past_the_tolerance() -> None:
    base = workload("x", waiting=100.0)
    assert not moved(base, workload("x", waiting=100.0))
    assert not moved(base, workload("x", waiting=101.0))  # 1 %: noise
    assert moved(base, workload("x", waiting=103.0))
    assert moved(base, workload("x", waiting=None))  # measured, then missing
    assert moved(base, workload("x", waiting=100.0, variants={"H100": (3, 2)}))
    assert moved(None, base)
    ttft = base.model_copy(update={"samples": Samples(requests_waiting=100.0, ttft=Percentiles(p95_s=0.5))})
    assert moved(ttft, ttft.model_copy(update={"samples": Samples(requests_waiting=100.0,
                                                                   ttft=Percentiles(p95_s=0.6))}))


def test_ingest_marks_the_moved_workloads_and_wakes_once() -> None:
    woken = []
    state = FleetState(moved=moved, on_change=lambda: woken.append(1))
    state.ingest(report("a", [workload("x"), workload("y")], [node("H100", 8)], seq=1), now=0.0)
    assert state.take_changed() == {"inference/x", "inference/y"} and woken == [1]
    state.ingest(report("a", [workload("x"), workload("y", waiting=9.0)], [node("H100", 8)], seq=2), now=1.0)
    state.ingest(report("a", [workload("x"), workload("y", waiting=9.0)], [node("H100", 8)], seq=3), now=2.0)
    assert state.take_changed() == {"inference/y"} and woken == [1, 1]
    state.ingest(report("a", [workload("x")], [node("H100", 8)], seq=4), now=3.0)
    assert state.take_changed() == {"inference/y"}  # gone from the report: that is a change too


def policy(name: str, **kw: Any) -> Policy:
    return Policy.model_validate({
        "id": name, "targets": {"workloads": [{"namespace": "inference", "name": name}]},
        "signals": [{"metric": "queue_per_replica", "target": 5}], "mode": "dry-run",
        "bounds": {"min_replicas": 1, "max_replicas": 40}, "panic": {"enabled": False}, **kw,
    })


def evaluator(state: FleetState, *policies: Policy) -> Evaluator:
    metrics, decisions = HubMetrics(), DecisionLog()
    dispatcher = Dispatcher(None, state, decisions, metrics, deadline_s=60)  # type: ignore[arg-type]  # dry-run sends nothing
    return Evaluator(state=state, policies=FixedPolicies(*policies), dispatcher=dispatcher,  # type: ignore[arg-type]
                     decisions=decisions, metrics=metrics, prices=PRICES, tick_s=1.0, sweep_s=1000.0)


def planned(ev: Evaluator) -> float:
    return ev.metrics.workloads_planned._value.get()


def fleet(waiting: dict[str, float]) -> list[Any]:
    return [workload(n, waiting=w) for n, w in sorted(waiting.items())]


async def test_only_workloads_whose_inputs_moved_are_re_planned_between_ticks() -> None:
    state = FleetState(moved=partial(moved, tolerance=0.02))
    names = [f"w{i}" for i in range(20)]
    waiting = dict.fromkeys(names, 10.0)  # 2 replicas, 5 waiting each: steady
    state.ingest(report("a", fleet(waiting), [node("H100", 80)], seq=1))
    ev = evaluator(state, *(policy(n) for n in names))
    await ev.evaluate(tick=True)  # the first look is at everything
    assert planned(ev) == 20
    state.ingest(report("a", fleet(waiting), [node("H100", 80)], seq=2))  # nothing moved
    assert await ev.evaluate(tick=False) == [] and planned(ev) == 20
    waiting["w3"] = 40.0
    state.ingest(report("a", fleet(waiting), [node("H100", 80)], seq=3))
    (decision,) = await ev.evaluate(tick=False)
    assert decision.workload == "inference/w3" and decision.desired_replicas > 2
    assert planned(ev) == 21


async def test_a_workload_held_by_a_timer_is_re_planned_every_tick_until_it_lets_go() -> None:
    # w1's load drops: the scale-down window (2 s here) holds it at 8 replicas, so its answer will
    # change with no new report once the window passes; w2 is steady and is left alone.
    state = FleetState(moved=moved)
    hold = {"behavior": {"scale_down": {"stabilization_window_seconds": 2}}}
    state.ingest(report("a", [workload("w1", waiting=40.0, variants={"H100": (8, 8)}),
                              workload("w2", waiting=10.0)], [node("H100", 80)], seq=1))
    ev = evaluator(state, policy("w1", **hold), policy("w2"))
    await ev.evaluate(tick=True)
    state.ingest(report("a", [workload("w1", waiting=8.0, variants={"H100": (8, 8)}),
                              workload("w2", waiting=10.0)], [node("H100", 80)], seq=2))
    await ev.evaluate(tick=False)  # the drop: held by the window
    before = planned(ev)
    await ev.evaluate(tick=True)
    assert planned(ev) == before + 1  # w1 alone, though no report came
    assert "inference/w1" in ev._hot and "inference/w2" not in ev._hot


async def test_a_decision_whose_commands_are_not_confirmed_keeps_naming_them() -> None:
    # A publish NATS did not confirm may still be delivered (nats-py sends what it buffered while
    # reconnecting once the server is back): the stored record must keep naming the command, or an
    # applied command has no decision. It used to be rewritten without it.
    class Journal:
        async def store(self, decisions: list[Any]) -> set[str]:
            return {d.id for d in decisions}

    class DownBus:
        async def publish_command(self, command: Any) -> None:
            raise BusUnavailable("publish timed out", delay_s=1.0)

    state = FleetState(moved=moved)
    state.ingest(report("a", [workload("w1", waiting=40.0)], [node("H100", 80)], seq=1))
    metrics, decisions = HubMetrics(), DecisionLog()
    dispatcher = Dispatcher(DownBus(), state, decisions, metrics, deadline_s=60)  # type: ignore[arg-type]
    ev = Evaluator(state=state, policies=FixedPolicies(policy("w1", mode="enforce")), dispatcher=dispatcher,  # type: ignore[arg-type]
                   decisions=decisions, metrics=metrics, prices=PRICES, tick_s=1.0, sweep_s=1000.0,
                   journal=Journal())  # type: ignore[arg-type]
    assert await ev.evaluate(tick=True) == []  # nothing confirmed: not counted as made
    [decision] = decisions.recent()
    [command] = decision.commands
    assert "not confirmed by NATS" in decision.notes[-1] and command in decision.notes[-1]
    assert "inference/w1" in ev._hot  # decided again next tick
    assert state.intent("inference/w1", "a") is None


async def test_the_advisors_answer_is_handed_to_the_engine_applied_in_bounded_mode_and_counted_once() -> None:
    state = FleetState(moved=moved)
    state.ingest(report("a", [workload("w", waiting=10.0)], [node("H100", 80)], seq=1))  # 2 replicas: steady
    answers: dict[str, WorkloadAdvice] = {}
    bounded = {"mode": "bounded", "endpoint": "http://llm:8000/v1", "interval_s": 60, "max_delta_replicas": 2}
    ev = evaluator(state, policy("w", advisor=bounded))
    ev.advice = lambda now: answers
    assert [d.desired_replicas for d in await ev.evaluate(tick=True)] == []  # no advice: 2 stands
    answers["inference/w"] = WorkloadAdvice(replicas=9, age_s=1.0, policy_id="w", answered_at="t1",
                                            summary={"workload": "inference/w"}, answer='{"replicas": 9}')
    before = planned(ev)
    (decision,) = await ev.evaluate(tick=False)  # no report moved: the new answer alone re-plans it
    assert planned(ev) == before + 1
    assert decision.desired_replicas == 4 and decision.audit is not None
    assert decision.audit["cause"] == "advice"
    advice = decision.audit["advice"]
    assert (advice["advised"], advice["engine"], advice["outcome"], advice["exchange"]["answer"]) == (
        9, 2, "clamped", '{"replicas": 9}')
    counted = ev.metrics.advice.labels("clamped")._value.get()
    await ev.evaluate(tick=True)  # the same answer again: not counted again
    assert counted == 1 and ev.metrics.advice.labels("clamped")._value.get() == 1
    seen = planned(ev)
    assert await ev.evaluate(tick=False) == [] and planned(ev) == seen  # and not re-planned for it
    answers["inference/w"] = WorkloadAdvice(replicas=3, age_s=200.0, policy_id="w", answered_at="t2")
    await ev.evaluate(tick=True)
    assert ev.metrics.advice.labels("stale")._value.get() == 1


async def test_a_backlog_is_planned_a_batch_at_a_time_oldest_change_first() -> None:
    state = FleetState(moved=moved)
    names = [f"w{i}" for i in range(5)]
    waiting = dict.fromkeys(names, 10.0)
    state.ingest(report("a", fleet(waiting), [node("H100", 80)], seq=1))
    ev = evaluator(state, *(policy(n) for n in names))
    ev.batch = 2
    await ev.evaluate(tick=True, full=True)
    for seq, name in enumerate(["w4", "w0", "w2"], start=2):  # changed in this order
        waiting[name] = 40.0
        state.ingest(report("a", fleet(waiting), [node("H100", 80)], seq=seq))
    ev._wake.clear()
    first = await ev.evaluate(tick=False)
    assert {d.workload for d in first} == {"inference/w4", "inference/w0"} and planned(ev) == 5 + 2
    assert list(ev._backlog) == ["inference/w2"]
    waiting["w1"] = 40.0  # a newer change queues behind the older one
    state.ingest(report("a", fleet(waiting), [node("H100", 80)], seq=9))
    assert {d.workload for d in await ev.evaluate(tick=False)} == {"inference/w2", "inference/w1"}
    assert not ev._backlog and planned(ev) == 5 + 4


async def test_a_sharded_hub_plans_only_its_partitions_and_all_of_them_when_they_change() -> None:
    from hub.control.leases import Holding, LeaseKeeper, partition_of
    from hub.control.shard import Shard

    state = FleetState(moved=partial(moved, tolerance=0.02))
    names = [f"w{i}" for i in range(40)]
    state.ingest(report("a", fleet(dict.fromkeys(names, 10.0)), [node("H100", 81)], seq=1))
    keeper = LeaseKeeper(None, "hub-a", 4, renew_s=2.0, ttl_s=8.0, clock=lambda: 0.0)
    keeper.held = {0: Holding(7, 1, 100.0), 1: Holding(7, 2, 100.0)}
    keeper._live = ("hub-a", "hub-b")
    ev = evaluator(state, *(policy(n) for n in names))
    ev.shard = ev.dispatcher.shard = Shard(keeper)
    mine = {f"inference/{n}" for n in names if partition_of(f"inference/{n}", 4) in (0, 1)}
    assert 0 < len(mine) < len(names)
    await ev.evaluate(tick=True)
    assert planned(ev) == len(mine) and set(ev._plans) == mine
    # Another hub's workload moves: not this hub's to re-plan.
    other = next(n for n in names if partition_of(f"inference/{n}", 4) == 3)  # never held here
    state.ingest(report("a", fleet(dict.fromkeys(names, 10.0) | {other: 90.0}), [node("H100", 81)], seq=2))
    assert await ev.evaluate(tick=False) == [] and planned(ev) == len(mine)
    # A partition comes: everything held is planned at once, the new partition's workloads too.
    keeper.held[2] = Holding(9, 3, 100.0)
    keeper.version += 1
    await ev.evaluate(tick=False)
    now_mine = {f"inference/{n}" for n in names if partition_of(f"inference/{n}", 4) in (0, 1, 2)}
    assert planned(ev) == len(mine) + len(now_mine)
    # Its share of the pool: 81 free GPUs between two hubs, 41 for the first by id.
    assert ev.shard.narrow(state.snapshot()).clusters["a"].free_gpus() == {"H100": 41}
    fence = ev.shard.fence(sorted(now_mine)[0])
    assert fence is not None and fence.lease.startswith("p4-") and fence.epoch in (7, 9)
    assert ev.shard.fence(f"inference/{other}") is None
