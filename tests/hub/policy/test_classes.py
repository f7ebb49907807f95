"""Request classes: prompt-length distributions, class bounds and per-class capacity."""

from __future__ import annotations

import math

import pytest

from hub.policy.classes import ExponentialPrompts, HistogramPrompts, bounds_of, effective_capacity, request_classes
from hub.policy.model import Metric
from hub.policy.prior import class_capacity, longest_prompt

TYPES = ("L4", "A100", "H100")
PRICES = {"L4": 0.805, "A100": 4.096, "H100": 12.29}


def classes_for(mean_in: float, demand: float | None, target: float = 2.0, **kw: object):  # type: ignore[no-untyped-def]
    longest = {t: x for t in TYPES if (x := longest_prompt(t, gpus_per_replica=1, metric=Metric.TTFT,
                                                                 target_s=target))}

    def cap(t: str, m: float, q: float) -> float | None:
        return class_capacity(t, gpus_per_replica=1, metric=Metric.TTFT, target_s=target, mean_input=m,
                              mean_output=250, prompt_at_percentile=q)

    return request_classes(ExponentialPrompts(mean_in), 250, longest, PRICES, cap, percentile=0.95,
                           demand=demand, **kw)


def test_exponential_prompts_shares_means_and_quantiles() -> None:
    p = ExponentialPrompts(1000.0)
    assert p.share(0, math.inf) == pytest.approx(1.0)
    assert p.share(0, 1000) == pytest.approx(1 - math.exp(-1))
    assert p.mean(0, math.inf) == pytest.approx(1000.0)
    assert p.mean(2000, math.inf) == pytest.approx(3000.0)  # memoryless
    assert p.quantile(0.95, 0, math.inf) == pytest.approx(1000 * math.log(20))
    assert 0 < p.quantile(0.95, 0, 500) < 500


def test_histogram_prompts_read_the_engine_buckets() -> None:
    h = HistogramPrompts((100.0, 1000.0), (10.0, 80.0, 10.0))
    assert h.share(0, math.inf) == pytest.approx(1.0)
    assert h.share(0, 100) == pytest.approx(0.1)
    assert h.mean(100, 1000) == pytest.approx(550.0)
    assert h.quantile(0.5, 100, 1000) == pytest.approx(550.0)
    assert h.quantile(0.5, 1000, math.inf) > 1000


def test_every_class_has_a_type_that_serves_it_and_the_shares_add_up() -> None:
    for mean in (300.0, 2000.0, 30000.0):
        for demand in (None, 3000.0, 60000.0):
            cs = classes_for(mean, demand)
            assert cs and all(c.capacity for c in cs)
            assert sum(c.token_share for c in cs) == pytest.approx(1.0)
            assert sum(c.request_share for c in cs) == pytest.approx(1.0)


def test_long_prompts_are_kept_off_the_types_that_cannot_prefill_them_in_time() -> None:
    cs = classes_for(2000.0, None, target=1.0)
    assert len(cs) >= 2
    l4_longest = longest_prompt("L4", gpus_per_replica=1, metric=Metric.TTFT, target_s=1.0)
    assert l4_longest is not None
    for c in cs:
        if c.lower_tokens >= l4_longest:
            assert "L4" not in c.capacity  # an idle L4 cannot prefill even its shortest prompt in time
    assert "L4" in cs[0].capacity  # the short prompts are the L4's
    # On the whole mix the L4 would be rated 0 (its p95 prompt, 3x the mean, misses on an idle L4).
    assert classes_for(2000.0, None, target=1.0)[0].capacity["L4"] > 0


def test_with_the_load_given_a_split_is_costed_in_whole_replicas() -> None:
    # 3,000 tokens/s at a 2 s target: the fluid bound and whole replicas may choose differently, and
    # whole replicas never choose a split costing more than one A100 for everything.
    from hub.policy.classes import _cost
    cs = classes_for(2000.0, 3000.0)
    assert _cost(cs, PRICES, 3000.0) <= PRICES["A100"] * 1.1


def test_effective_capacity_is_what_a_type_serves_of_the_classes_it_can() -> None:
    cs = classes_for(2000.0, None, target=1.0)
    l4 = effective_capacity(cs, "L4")
    served = [c.capacity["L4"] for c in cs if "L4" in c.capacity]
    assert min(served) <= l4 <= max(served)
    assert effective_capacity(cs, "TPU") == 0.0


def test_the_last_split_is_kept_unless_another_saves_enough() -> None:
    first = classes_for(2000.0, None)
    near = classes_for(2000.0, None, keep=())  # no split: within 10 % of the best? only then kept
    assert bounds_of(classes_for(2000.0, None, keep=bounds_of(first))) == bounds_of(first)
    assert near == first or bounds_of(near) == ()
    # A split that does not exist among the candidates is not kept.
    assert bounds_of(classes_for(2000.0, None, keep=(1.0,))) == bounds_of(first)


def test_the_engines_prompt_histogram_replaces_the_exponential_law() -> None:
    # A bimodal mix, as the engines' histograms show it: 80 % of prompts up to 800 tokens, 20 % of
    # 6,000-12,000. The mean (2,300) alone, read as exponential, puts 32 % above 2,600.
    from hub.policy.engine import Engine
    from hub.settings import DEFAULT_GPU_PRICES
    from tests.hub.policy.fleet import Cluster, Fleet, policy

    hist = {"le_tokens": [200.0, 800.0, 6000.0, 12000.0], "counts": [40.0, 120.0, 0.0, 40.0, 0.0]}
    rates = {"request_rate_per_s": 20.0, "prompt_tokens_per_s": 46000.0, "generation_tokens_per_s": 3000.0,
             "requests_waiting": 0, "ttft": 0.3}
    p = policy([{"metric": "ttft", "target": 1.0}], placement={"request_classes": True}, panic={"enabled": False})
    measured = {**rates, "prompt_tokens": hist}
    with_hist = Fleet([Cluster("a", gpu_type="A100", samples=measured), Cluster("b", gpu_type="L4", samples=measured)],
                      engine=Engine(DEFAULT_GPU_PRICES))
    without = Fleet([Cluster("a", gpu_type="A100", samples=rates), Cluster("b", gpu_type="L4", samples=rates)],
                    engine=Engine(DEFAULT_GPU_PRICES))
    with_hist.evaluate(p, now=0)
    rec = with_hist.evaluate(p, now=1)
    plain = without.evaluate(p, now=1)
    lengths = with_hist.engine._memory["inference/llama"].prompt_lengths()
    assert lengths is not None and lengths.share(0, 800) == pytest.approx(0.8)
    assert without.engine._memory["inference/llama"].prompt_lengths() is None
    assert rec.classes and rec.classes != plain.classes  # the split follows what the engines measured
