"""What a workload's memory learns from telemetry: the token mix, the demand, the behaviour's history."""

from __future__ import annotations

import pytest

from hub.policy.memory import WorkloadMemory
from hub.policy.signals import LoadReading

WINDOW_S = 10.0
PROMPT, GEN = 1000.0, 200.0


def reading(arrivals: float, began: float, finished: float, waiting: float, running: float) -> LoadReading:
    """A window in which ``began`` prefills started and ``finished`` requests left per second (tokens
    follow them; rates are the window's means, as engines report them)."""
    return LoadReading(request_rate=arrivals, token_rate=began * PROMPT + finished * GEN, prompt_rate=began * PROMPT,
                       generation_rate=finished * GEN, waiting=waiting, running=running)


def window_mean(series: list[float]) -> float:
    last = series[-int(WINDOW_S):]
    return sum(last) / len(last)


def test_a_draining_backlog_does_not_read_the_prompt_long() -> None:
    """4 req/s arrive at one saturated replica (1 req/s) for a minute; then more are ready, and the
    backlog is prefilled at 14 req/s and finishes later.

    Tokens over arrivals read the prompt a quarter as long while the queue builds and 3.5x as long
    while it drains (the tokens are the backlog's)."""
    mem = WorkloadMemory("p")
    waiting, running = 0.0, 4.0
    seen = {}
    begun: list[float] = []
    left: list[float] = []
    for t in range(0, 260):
        if t < 60:
            began = finished = 1.0
        else:
            began = min(14.0, waiting + 4.0)
            finished = 4.0 if t < 90 else min(12.0, running)
        waiting = max(0.0, waiting + 4.0 - began)
        running = max(0.0, running + began - finished)
        begun.append(began)
        left.append(finished)
        mem.learn_mix(float(t), reading(4.0, window_mean(begun), window_mean(left), waiting, running), WINDOW_S)
        if t in (59, 75):
            seen[t] = mem.mean_tokens()
    mix = mem.mean_tokens()
    assert mix is not None
    assert mix[0] == pytest.approx(PROMPT, rel=0.15)
    assert mix[1] == pytest.approx(GEN, rel=0.25)
    # Before the drain (tokens over arrivals read a quarter; the first window, whose start was not
    # seen, still counts its arrivals) and in the middle of it.
    assert seen[59] is not None and seen[59][0] > 0.6 * PROMPT
    assert seen[75] is not None and seen[75][0] == pytest.approx(PROMPT, rel=0.2)


def test_long_prompts_piling_up_in_a_saturated_batch_do_not_read_the_prompt_short() -> None:
    """0.4 req/s of 50k-token prompts; the full batch prefills 0.1 req/s worth and the rest queues."""
    mem = WorkloadMemory("p")
    waiting = 0.0
    for t in range(0, 120):
        waiting += 0.4 - 0.1
        window = LoadReading(request_rate=0.4, token_rate=0.1 * 50_000, prompt_rate=0.1 * 50_000,
                             generation_rate=0.1 * 200, waiting=waiting, running=8.0)
        mem.learn_mix(float(t), window, WINDOW_S)
    mix = mem.mean_tokens()
    assert mix is not None and mix[0] > 0.7 * 50_000  # tokens over arrivals read it at 12,500


def test_a_queue_is_counted_once_in_the_demand() -> None:
    mem = WorkloadMemory("p")
    for t in range(12):
        mem.learn_mix(float(t), reading(2.0, 2.0, 2.0, 0.0, 4.0), WINDOW_S)  # 1,200 tokens per request
    draining = LoadReading(request_rate=2.0, token_rate=12_000.0, prompt_rate=10_000.0, generation_rate=2_000.0,
                           waiting=100.0, running=10.0)
    demand = mem.arrival_demand(draining, drain_s=60.0)
    # arrivals 2 x 1,200 plus the 100 queued requests over 60 s; the replicas' 12,000 tokens/s are
    # that drain, not more load (taken as load too, the demand was 14,000).
    assert demand == pytest.approx(2.0 * 1200.0 + 100.0 * 1200.0 / 60.0)


def test_the_history_keeps_the_load_sized_and_holds_the_largest_in_the_window() -> None:
    mem = WorkloadMemory("p")
    mem.remember(0.0, 5750.0 / 16905.0, 16905.0)  # one H100 asked for 5,750 tokens/s
    mem.remember(30.0, 1.0, 6000.0)  # a count, valued at its mix
    assert mem.counts(3465.0) == [(0.0, 2), (30.0, 2)]  # 5,750 and 6,000 are 2 A100s each, not 5
    assert mem.held_load(60.0, 300.0) == pytest.approx(6000.0)
    assert mem.held_load(60.0, 40.0) == pytest.approx(6000.0)
    mem.remember(50.0, 3.0, None)  # a bare count: no load to value the hold by
    assert mem.held_load(60.0, 300.0) is None
