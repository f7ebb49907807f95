"""The engine's advice stage: an LLM's count applied in ``bounded`` mode, inside every rail, on real engine runs.

The fleet is two H100 replicas whose GPUs are busy (``gpu_utilization`` at 100 % against 50 %
proposes 4) while the queue is short (``queue_per_replica``, the SLO signal, proposes 1): the
engine's proposal is 4, its SLO-safe floor 1, so an advisor has room both ways.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.policy.advice import STALE_INTERVALS, WorkloadAdvice, slo_floor
from hub.policy.audit import Proposal, SignalInput
from hub.policy.cause import Cause
from hub.policy.engine import Recommendation
from hub.policy.model import Policy
from tests.hub.policy.fleet import KEY, Cluster, Fleet, policy

SIGNALS = [{"metric": "gpu_utilization", "target": 50}, {"metric": "queue_per_replica", "target": 5}]
QUEUE_ONLY = [{"metric": "queue_per_replica", "target": 5}]
BUSY = {"gpu_util": 1.0, "requests_waiting": 2}


def advised(n: int, *, age_s: float = 1.0, policy_id: str = "llama") -> dict[str, WorkloadAdvice]:
    return {KEY: WorkloadAdvice(replicas=n, age_s=age_s, policy_id=policy_id, answered_at="2026-12-03T13:00:00+00:00",
                                confidence=0.8, rationale="the queue is short", summary={"workload": KEY},
                                answer=f'{{"replicas": {n}}}')}


def advisor(mode: str = "bounded", **kw: Any) -> dict[str, Any]:
    return {"mode": mode, "endpoint": "http://llm:8000/v1", "interval_s": 60, **kw}


def run(n: int | None, *, mode: str = "bounded", signals: list[dict[str, Any]] = SIGNALS,
        samples: dict[str, Any] = BUSY, age_s: float = 1.0, policy_id: str = "llama", **kw: Any) -> Recommendation:
    p = policy(signals, advisor=advisor(mode, **kw), panic={"enabled": False})
    fleet = Fleet([Cluster("a", samples=dict(samples))])
    return fleet.evaluate(p, now=0, advice=None if n is None else advised(n, age_s=age_s, policy_id=policy_id))


def verdict(rec: Recommendation) -> dict[str, Any]:
    assert rec.audit is not None and rec.audit.advice is not None
    return dict(rec.audit.advice)


def test_without_advice_the_engine_proposes_4_over_an_slo_floor_of_1() -> None:
    rec = run(None)
    assert (rec.proposal, rec.desired_replicas, rec.cause) == (4, 4, Cause.SIGNAL)
    assert rec.audit is not None and rec.audit.advice is None and rec.audit.to_json()["advice"] is None


def test_bounded_advice_inside_the_rails_decides_the_count_and_the_audit_keeps_the_exchange() -> None:
    rec = run(3)
    assert (rec.desired_replicas, rec.cause) == (3, Cause.ADVICE)
    assert rec.deciding_signal == "gpu_utilization"  # the proposal the advice moved
    v = verdict(rec)
    assert (v["outcome"], v["advised"], v["engine"], v["desired"], v["floor"], v["rails"]) == (
        "applied", 3, 4, 3, 1, [2, 6])
    assert "queue_per_replica proposes 1" in v["floor_reason"]
    assert v["exchange"] == {"answered_at": "2026-12-03T13:00:00+00:00", "summary": {"workload": KEY},
                             "answer": '{"replicas": 3}'}
    assert v["rationale"] == "the queue is short" and v["confidence"] == 0.8
    clamp = next(c for c in rec.audit.clamps if c.stage == "advice")  # type: ignore[union-attr]
    assert (clamp.before, clamp.after, clamp.reason) == (4, 3, "Advice")
    assert "advisor: advisor said 3" in rec.reason


@pytest.mark.parametrize(("n", "want", "why"), [
    (0, 2, "engine - max_delta"),
    (10_000, 6, "engine + max_delta"),
    (-5, 2, "a negative count is cut like any other"),
])
def test_advice_outside_the_rails_is_clamped_to_them(n: int, want: int, why: str) -> None:
    rec = run(n)
    v = verdict(rec)
    assert (v["outcome"], v["desired"], rec.desired_replicas, rec.cause) == ("clamped", want, want, Cause.ADVICE), why


def test_the_slo_floor_holds_against_any_advice() -> None:
    # Queue only: the floor is the queue's proposal, the engine's own count; advice can only add.
    rec = run(0, signals=QUEUE_ONLY, samples={"requests_waiting": 20})
    v = verdict(rec)
    assert (v["engine"], v["floor"], v["outcome"], rec.desired_replicas, rec.cause) == (
        4, 4, "clamped", 4, Cause.SIGNAL)
    up = run(6, signals=QUEUE_ONLY, samples={"requests_waiting": 20})
    assert (up.desired_replicas, up.cause, verdict(up)["outcome"]) == (6, Cause.ADVICE, "applied")


def test_bounds_hold_whatever_the_delta() -> None:
    rec = run(10_000, max_delta_replicas=1000)
    assert rec.desired_replicas <= 40 and verdict(rec)["rails"] == [1, 40]


def test_the_behaviour_rate_limits_advice_like_any_proposal() -> None:
    slow = {"scale_up": {"policies": [{"type": "Pods", "value": 1, "period_seconds": 60}]}}
    p = policy(SIGNALS, advisor=advisor(max_delta_replicas=10), panic={"enabled": False}, behavior=slow)
    rec = Fleet([Cluster("a", samples=dict(BUSY))]).evaluate(p, now=0, advice=advised(12))
    assert verdict(rec)["desired"] == 12  # the advice stage let it through ...
    assert (rec.desired_replicas, rec.cause) == (3, Cause.RATE_LIMITED)  # ... the scale-up policy did not


def test_the_scale_down_window_holds_advice_like_any_proposal() -> None:
    p = policy(SIGNALS, advisor=advisor(), panic={"enabled": False})
    fleet = Fleet([Cluster("a", desired=4, ready=4, samples={"gpu_util": 0.5, "requests_waiting": 2})])
    assert fleet.evaluate(p, now=0).desired_replicas == 4
    rec = fleet.evaluate(p, now=10, advice=advised(2))
    assert verdict(rec)["desired"] == 2
    assert (rec.desired_replicas, rec.cause) == (4, Cause.STABILISED)


def test_stale_advice_and_advice_under_another_policy_are_ignored_and_said_so() -> None:
    old = run(3, age_s=STALE_INTERVALS * 60 + 1)
    assert (old.desired_replicas, old.cause, verdict(old)["outcome"]) == (4, Cause.SIGNAL, "stale")
    assert "121s old" in verdict(old)["reason"]
    other = run(3, policy_id="another")
    assert (other.desired_replicas, verdict(other)["outcome"]) == (4, "stale")
    fresh = run(3, age_s=STALE_INTERVALS * 60)
    assert fresh.desired_replicas == 3


def test_advisory_records_and_never_applies_and_off_records_nothing() -> None:
    rec = run(3, mode="advisory")
    assert (rec.desired_replicas, rec.cause, verdict(rec)["outcome"]) == (4, Cause.SIGNAL, "advisory")
    off = Fleet([Cluster("a", samples=dict(BUSY))]).evaluate(policy(SIGNALS, panic={"enabled": False}), now=0,
                                                             advice=advised(3))
    assert off.desired_replicas == 4 and off.audit is not None and off.audit.advice is None


def test_agreeing_advice_changes_nothing() -> None:
    rec = run(4)
    assert (rec.desired_replicas, rec.cause, verdict(rec)["outcome"]) == (4, Cause.SIGNAL, "agreed")


# --- the floor, by table -------------------------------------------------------------------------------


def _floor_policy() -> Policy:
    return policy([{"metric": "ttft", "percentile": "p95", "target": 1.0}, {"metric": "queue_per_replica", "target": 5},
                   {"metric": "gpu_utilization", "target": 50}])


def _inputs(ttft: float | None = 0.5, partial: bool = False) -> list[SignalInput]:
    return [SignalInput("ttft_p95", ttft, 1.0, "s", partial), SignalInput("queue_per_replica", 1.0, 5, "requests"),
            SignalInput("gpu_utilization", 90.0, 50, "%")]


def _props(latency: int | None = 5, queue: int = 2, util: int = 9, forecast: int | None = None) -> list[Proposal]:
    out = [Proposal("ttft_p95", "capacity-model", latency,
                    {"demand_tokens_per_s": 3000.0, "capacity_per_replica": 1000.0, "sized": latency}),
           Proposal("queue_per_replica", "hpa", queue), Proposal("gpu_utilization", "hpa", util)]
    if forecast is not None:
        out.append(Proposal("ttft_p95", "forecast", forecast))
    return out


@pytest.mark.parametrize(("inputs", "props", "want", "why"), [
    (_inputs(), _props(), 3, "ceil(3000 / 1000): the latency signal's count without headroom"),
    (_inputs(), _props(queue=4), 4, "the queue's proposal when larger"),
    (_inputs(), _props(forecast=7), 7, "the forecast of an SLO signal"),
    (_inputs(ttft=1.5), _props(), 9, "latency above target: the engine's count"),
    (_inputs(partial=True), _props(), 9, "a partial SLO signal: the engine's count"),
    (_inputs(), _props(latency=None), 9, "an SLO signal that could not propose: the engine's count"),
    (_inputs(), _props(forecast=30), 9, "never above the engine's count"),
])
def test_the_slo_floor(inputs: list[SignalInput], props: list[Proposal], want: int, why: str) -> None:
    assert slo_floor(_floor_policy(), props, inputs, engine=9)[0] == want, why


def test_a_policy_without_an_slo_signal_has_no_floor() -> None:
    p = policy([{"metric": "gpu_utilization", "target": 50}])
    assert slo_floor(p, [Proposal("gpu_utilization", "hpa", 9)], [SignalInput("gpu_utilization", 90.0, 50, "%")],
                     engine=9) == (0, "no latency or queue signal: no SLO floor")


# --- hostile answers, by property -----------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.one_of(st.integers(0, 40), st.integers(-(10**12), 10**12)),
    util=st.floats(0.0, 1.0),
    waiting=st.floats(0.0, 200.0),
    ready=st.integers(1, 12),
    lo=st.integers(1, 5),
    span=st.integers(0, 30),
    delta=st.integers(0, 20),
    mode=st.sampled_from(["advisory", "bounded"]),
)
def test_whatever_the_model_answers_the_count_stays_inside_every_rail(
    n: int, util: float, waiting: float, ready: int, lo: int, span: int, delta: int, mode: str
) -> None:
    hi = lo + span
    doc = {"signals": SIGNALS, "bounds": {"min_replicas": lo, "max_replicas": hi}, "panic": {"enabled": False},
           "advisor": advisor(mode, max_delta_replicas=delta)}

    def fleet() -> Fleet:
        samples = {"gpu_util": util, "requests_waiting": waiting}
        return Fleet([Cluster("a", desired=ready, ready=ready, samples=samples)])

    p = policy(**doc)  # type: ignore[arg-type]
    alone = fleet().evaluate(p, now=0)
    rec = fleet().evaluate(p, now=0, advice=advised(n))
    assert lo <= rec.desired_replicas <= hi
    if alone.proposal is None or alone.audit is None or not lo <= ready <= hi:
        assert rec.desired_replicas == alone.desired_replicas  # a hold: the advice is not consulted
        return
    # The floor, read from the engine-alone run: the queue signal's proposal (the SLO signal here).
    queue = next(q.replicas for q in alone.audit.proposals if q.source == "queue_per_replica")
    assert queue is not None
    v = verdict(rec)
    stage = v["desired"]
    if mode == "advisory":
        assert stage == alone.proposal and rec.desired_replicas == alone.desired_replicas
        return
    if stage != alone.proposal:  # the advice moved the count: inside every rail at once
        assert lo <= stage <= hi
        assert abs(stage - alone.proposal) <= delta
        assert stage >= min(queue, alone.proposal)
    if rec.cause is Cause.ADVICE:  # the cause says so only where the advice's count is the answer
        assert rec.desired_replicas == stage != alone.proposal
