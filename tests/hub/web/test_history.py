"""The in-memory history behind the page's charts: what a point holds, the two rings, the API."""

from __future__ import annotations

import math
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from hub.decisions.log import Decision, DecisionLog
from hub.metrics import HubMetrics
from hub.policy.model import Policy
from hub.state import FleetState
from hub.web.api import make_app
from hub.web.history import FleetHistory, Ring
from tests.hub.factories import FixedPolicies, node, report, workload

POLICY = Policy.model_validate({"id": "llama", "targets": {"workloads": [{"namespace": "inference", "name": "llama"}]},
                                "signals": [{"metric": "ttft", "percentile": "p95", "target": 2.0}]})
KEY = "inference/llama"


def tick(ttft_a: float | None = 0.5, ttft_b: float | None = 1.5, waiting: float | None = 6.0):  # type: ignore[no-untyped-def]
    state = FleetState()
    a = workload(variants={"H100": (2, 2)}, ttft_p95=ttft_a, waiting=waiting)
    b = workload(variants={"L4": (3, 1)}, ttft_p95=ttft_b, waiting=None)
    a = a.model_copy(update={"samples": a.samples.model_copy(update={"request_rate_per_s": 30.0,
                                                                      "prompt_tokens_per_s": 900.0,
                                                                      "generation_tokens_per_s": 100.0})})
    b = b.model_copy(update={"samples": b.samples.model_copy(update={"request_rate_per_s": 10.0})})
    state.ingest(report("alpha", [a], [node("H100", 4)]), now=0.0)
    state.ingest(report("beta", [b], [node("L4", 4)]), now=0.0)
    plans = {KEY: (POLICY, {("alpha", "H100"): 3, ("beta", "L4"): 3})}
    return state.snapshot(now=0.5), plans, {"H100": 12.0, "L4": 1.0}


def decision(audit: dict[str, Any] | None) -> Decision:
    return Decision(workload=KEY, policy_id="llama", policy_revision=1, mode="enforce", current_replicas=5,
                    desired_replicas=6, reason="ttft", inputs={}, placement_before={}, placement_after={},
                    audit=audit)


def test_a_point_holds_plan_replicas_cost_latency_queue_and_load_and_nothing_invented() -> None:
    now = [1000.0]
    history = FleetHistory(clock=lambda: now[0])
    audit = {"capacity": {"H100": {"ttft_p95": {"capacity": 4000.0}}, "L4": {"ttft_p95": {"capacity": 300.0}}}}
    history.sample(tick(), {KEY: decision(audit)})
    w = history.window(KEY, 600)
    assert w is not None and w["t"] == [1000.0] and w["resolution_s"] == 10.0
    v = {k: vals[0] for k, vals in w["values"].items()}
    assert (v["desired"], v["ready"]) == (6, 3)
    assert v["cost_usd_per_hour"] == 2 * 12.0 + 3 * 1.0
    assert v["ttft_p95_s"] == (0.5 * 30 + 1.5 * 10) / 40  # request-weighted, as the engine reads it
    assert v["ttft_slo_s"] == 2.0
    assert v["queue_per_replica"] == 6.0 / 3
    assert v["load_tokens_per_s"] == 1000.0  # beta did not report tokens: not counted as 0 tokens, just absent
    assert v["capacity_tokens_per_s"] == 2 * 4000.0 + 3 * 300.0
    assert w["replicas"] == {"alpha/H100": [2.0], "beta/L4": [3.0]}
    fleet = history.window(None, 600)
    assert fleet is not None and fleet["replicas"] == {"H100": [2.0], "L4": [3.0]}

    history.sample(tick(ttft_a=None, ttft_b=None, waiting=None), {KEY: decision(None)})
    v2 = {k: vals[-1] for k, vals in history.window(KEY, 600)["values"].items()}  # type: ignore[index]
    assert v2["ttft_p95_s"] is None and v2["queue_per_replica"] is None
    assert v2["capacity_tokens_per_s"] is None  # no audit: unknown, not zero


def test_the_fine_ring_wraps_and_the_coarse_ring_holds_means() -> None:
    ring = Ring(3)
    for i in range(5):
        ring.append(float(i), {"desired": float(i)}, {"a/H100": float(i)})
    assert [ring.t[i] for i in ring.order(0)] == [2.0, 3.0, 4.0]
    assert [ring.t[i] for i in ring.order(3.5)] == [4.0]
    now = [0.0]
    history = FleetHistory(fine_s=10, fine_points=4, coarse_every=2, coarse_points=10, clock=lambda: now[0])
    for i in range(6):
        now[0] = 10.0 * i
        history.sample(tick(waiting=float(i) * 3), {})
    fine = history.window(KEY, 40)  # within the fine span (4 x 10 s)
    assert fine is not None and fine["t"] == [10.0, 20.0, 30.0, 40.0, 50.0][-len(fine["t"]):]
    coarse = history.window(KEY, 3600)
    assert coarse is not None and coarse["resolution_s"] == 20.0 and len(coarse["t"]) == 3
    assert coarse["values"]["queue_per_replica"] == [0.5, 2.5, 4.5]  # means of (0,1), (2,3), (4,5) x 3 / 3


def test_the_number_of_workloads_is_bounded() -> None:
    history = FleetHistory(max_workloads=2)
    for name in ("a", "b", "c"):
        series = history._workload(f"inference/{name}")
        assert series is not None
        series.append(0.0, {}, {})
    assert history.workloads() == ["inference/b", "inference/c"]
    assert history.nbytes() > 0 and math.isfinite(history.nbytes())


def test_a_fleet_larger_than_the_bound_keeps_the_series_it_holds() -> None:
    """Evicting in turn, every sample of a fleet past the bound rebuilt every series and kept none."""
    history = FleetHistory(max_workloads=2)
    for now in (10.0, 20.0):
        held = [history._workload(f"inference/{name}", now) for name in ("a", "b", "c")]
        assert held[2] is None
        assert history.workloads() == ["inference/a", "inference/b"]
    first = history._workload("inference/a", 30.0)
    assert history._workload("inference/c", 30.0) is not None  # b, not sampled at 30, makes room
    assert history.workloads() == ["inference/a", "inference/c"] and first is history._workload("inference/a", 40.0)


async def test_the_api_serves_a_window_with_markers_and_names_a_bad_field() -> None:
    history = FleetHistory()  # the wall clock, as the decisions' times are
    history.sample(tick(), {})
    log = DecisionLog()
    d = decision(None)
    log.add(d)
    app = make_app(state=FleetState(), decisions=log, policies=FixedPolicies([]), metrics=HubMetrics(),  # type: ignore[arg-type]
                   ready=lambda: {}, history=history)
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/api/v1/history", params={"workload": KEY, "window_s": "900"})
        assert r.status == 200
        body = await r.json()
        assert body["workload"] == KEY and body["window_s"] == 900 and body["workloads"] == [KEY]
        assert body["values"]["desired"] == [6]
        assert [(m["id"], m["action"], m["to"]) for m in body["markers"]] == [(d.id, "scale_up", 6)]
        fleet = await (await client.get("/api/v1/history")).json()
        assert fleet["workload"] is None and fleet["replicas"] == {"H100": [2], "L4": [3]}
        bad = await client.get("/api/v1/history", params={"window_s": "5"})
        assert bad.status == 400 and "window_s" in str(await bad.json())
        unknown = await client.get("/api/v1/history", params={"workload": "x/y"})
        assert unknown.status == 404 and (await unknown.json())["details"]["field"] == "workload"
