"""The spoke's start log and the woken tier: what the report carries per variant (protocol 1.3)."""

from __future__ import annotations

from shared.messages import (
    MAX_RECENT_STARTS,
    Samples,
    StartTier,
    StartTimes,
    VariantStatus,
    WorkloadRef,
)
from spoke.backend import WorkloadState
from spoke.starts import StartLog
from spoke.wakes import WakeWatch

KEY = "llm/llama"


def state(ready: int = 2, types: tuple[str, ...] = ("H100",), starts: tuple[StartTimes, ...] = ()) -> WorkloadState:
    return WorkloadState(
        ref=WorkloadRef(namespace="llm", name="llama"), desired_replicas=ready * len(types),
        ready_replicas=ready * len(types),
        variants=tuple(VariantStatus(gpu_type=t, desired_replicas=ready, ready_replicas=ready, starts=starts)
                       for t in types),
    )


def test_the_log_keeps_the_latest_starts_per_tier_within_their_age_and_counts_all() -> None:
    log = StartLog(max_age_s=3600)
    for i in range(MAX_RECENT_STARTS + 4):
        log.record(KEY, "H100", StartTier.COLD, 100.0 + i, at=float(i))
    log.record(KEY, "H100", StartTier.CACHED, 30.0, at=10.0)
    log.record(KEY, "A100", StartTier.CACHED, 1e9, at=10.0)  # beyond the wire's bound: kept at a day
    log.record(KEY, "H100", StartTier.CACHED, -3.0, at=10.0)  # clock skew: dropped, counted
    cold, cached = log.summary(KEY, "H100", now=100.0)
    assert cold.tier is StartTier.COLD and cold.count == MAX_RECENT_STARTS + 4
    assert cold.recent_s == tuple(100.0 + i for i in range(4, MAX_RECENT_STARTS + 4))
    assert (cached.recent_s, cached.count) == ((30.0,), 1)
    assert log.summary(KEY, "A100", now=100.0)[0].recent_s == (86_400.0,)
    assert log.dropped == 1
    # An hour later only what ended within the hour is left; later still, nothing.
    assert [s.tier for s in log.summary(KEY, "H100", now=3605.0)] == [StartTier.COLD, StartTier.CACHED]
    assert log.summary(KEY, "H100", now=3605.0)[0].recent_s[0] == 100.0 + 5
    assert log.summary(KEY, "H100", now=10_000.0) == ()


def test_attach_adds_to_what_a_variant_carries_and_forget_bounds_the_log() -> None:
    log = StartLog()
    log.record(KEY, "H100", StartTier.WOKEN, 5.0, at=0.0)
    log.record("llm/other", "H100", StartTier.COLD, 5.0, at=0.0)
    cold = StartTimes(tier=StartTier.COLD, recent_s=(120.0,), count=1)
    (out,) = log.attach([state(starts=(cold,))], now=1.0)
    assert [(s.tier, s.recent_s) for s in out.variants[0].starts] == [(StartTier.COLD, (120.0,)),
                                                                      (StartTier.WOKEN, (5.0,))]
    log.forget({KEY})
    assert log.summary("llm/other", "H100", now=1.0) == ()


def sleeping(n: int | None) -> dict[str, Samples]:
    return {KEY: Samples(engines_sleeping=n)}


def test_an_engine_leaving_sleep_mode_is_a_woken_start_bounded_by_the_report_interval() -> None:
    watch = WakeWatch()
    watch.observe([state()], sleeping(2), at=0.0)
    watch.observe([state()], sleeping(2), at=10.0)
    watch.observe([state()], sleeping(1), at=20.0)
    (woken,) = watch.log.summary(KEY, "H100", now=20.0)
    assert (woken.tier, woken.recent_s, woken.count) == (StartTier.WOKEN, (10.0,), 1)
    (attached,) = watch.attach([state()], now=20.0)
    assert attached.variants[0].starts == (woken,)


def test_a_sleeping_pod_scaled_away_or_an_unknown_state_is_no_wake() -> None:
    watch = WakeWatch()
    watch.observe([state(ready=3)], sleeping(2), at=0.0)
    watch.observe([state(ready=2)], sleeping(1), at=10.0)  # one sleeping replica went away
    watch.observe([state(ready=2)], sleeping(None), at=20.0)  # the engines were not read
    watch.observe([state(ready=2)], sleeping(0), at=30.0)  # from unknown: cannot tell when it woke
    assert watch.log.summary(KEY, "H100", now=30.0) == ()


def test_a_wake_on_a_workload_with_several_ready_gpu_types_is_not_attributed() -> None:
    watch = WakeWatch()
    both = state(types=("H100", "A100"))
    watch.observe([both], sleeping(1), at=0.0)
    watch.observe([both], sleeping(0), at=10.0)
    assert watch.unattributed == 1
    assert watch.log.summary(KEY, "H100", now=10.0) == watch.log.summary(KEY, "A100", now=10.0) == ()
