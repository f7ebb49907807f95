from hub.backtest import harness
from hub.backtest.keda import COOLDOWN_PERIOD_S, POLLING_INTERVAL_S, keda_queue
from hub.backtest.scenario import Scenario
from shared.simulation import synthetic


def test_keda_activates_from_zero_on_the_first_poll_that_sees_a_queue_and_returns_to_zero_after_cooldown():
    # Quiet until 60 s, 2 req/s until 180 s, then quiet again.
    trace = synthetic("step", duration_s=600, rate_per_s=0.0, step_at_s=60, step_rate_per_s=2.0,
                      step_back_at_s=180, seed=1, input_tokens=512, output_tokens=64)
    scenario = Scenario(trace, drain_limit_s=0, initial={})  # nothing at time 0, to see the activation
    run = harness.run(scenario, keda_queue(scenario))
    timeline = dict(zip(run.timeline_s, (sum(r.values()) for r in run.timeline_replicas), strict=True))
    first = trace.arrival_s[0]
    assert all(n == 0 for t, n in timeline.items() if t <= first)
    activation = (first // POLLING_INTERVAL_S + 1) * POLLING_INTERVAL_S  # the next poll sees the queue
    assert all(n >= 1 for t, n in timeline.items() if activation + scenario.sample_s <= t <= 180)
    # From zero, the first requests wait for a whole cold start.
    assert max(r.ttft_s for r in run.completed) >= scenario.cold_start_s
    # No queue after the load stops: back to 0 once the cooldown since the last active poll is over.
    assert timeline[max(timeline)] == 0
    last_active = max(t for t in range(0, 600, int(POLLING_INTERVAL_S)) if t <= 180 + 60)
    assert all(n == 0 for t, n in timeline.items() if t >= last_active + COOLDOWN_PERIOD_S + POLLING_INTERVAL_S)
