from dataclasses import replace

from hub.backtest import hindsight as hs
from hub.backtest.attainability import attainable
from hub.backtest.demand import Supply, windows
from hub.backtest.scenario import Scenario
from shared.simulation import ClusterSpec, NodeSpec, synthetic

CLUSTERS = (ClusterSpec("a", (NodeSpec("a-l4", "L4", 8),)), ClusterSpec("b", (NodeSpec("b-a100", "A100", 4),)))


def bursty() -> Scenario:
    trace = synthetic("step", duration_s=480, rate_per_s=1.0, step_at_s=240, step_rate_per_s=5.0,
                      step_back_at_s=300, seed=7, input_tokens=(200, 1500), output_tokens=(20, 200))
    return Scenario(trace, clusters=CLUSTERS, warmup_s=120)


def test_the_plan_reaches_its_target_in_its_own_replay():
    s = bursty()
    ok = attainable(s)
    plan = hs.hindsight(s, Supply(s), ok)
    assert plan.reached and plan.result.scored.attainment >= 0.99
    assert plan.result.name == "hindsight"


def test_a_plan_short_in_its_replay_is_raised_until_it_reaches_the_target(monkeypatch):
    """Make the capacity model badly optimistic (a third of every need): the first plan falls short and
    the replay-driven raises must buy what is missing."""
    s = bursty()

    def optimistic(supply, window_s):
        return [replace(w, needs={u: n / 3 for u, n in w.needs.items()}) for w in windows(supply, window_s)]

    monkeypatch.setattr(hs, "windows", optimistic)
    plan = hs.hindsight(s, Supply(s), attainable(s))
    assert plan.model.scored.attainment < 0.99  # the model-only plan fails in replay...
    assert plan.rounds >= 1 and plan.reached  # ...and the raised plan reaches the target
    assert plan.result.scored.attainment >= 0.99
    assert plan.result.scored.cost_usd > plan.model.scored.cost_usd


def test_a_plan_that_cannot_reach_the_target_says_so(monkeypatch):
    s = bursty()

    def optimistic(supply, window_s):
        return [replace(w, needs={u: n / 3 for u, n in w.needs.items()}) for w in windows(supply, window_s)]

    monkeypatch.setattr(hs, "windows", optimistic)
    plan = hs.hindsight(s, Supply(s), attainable(s), max_rounds=0)  # no raise allowed
    assert plan.rounds == 0 and not plan.reached
    assert plan.result.scored.attainment < 0.99


def test_a_fixed_fleet_that_reaches_the_target_for_less_becomes_the_reference():
    from tests.hub.backtest.test_sweep import result

    window = result("hindsight", 0.995, 20.0)
    plan = hs.Hindsight(result=window, model=window, rounds=0, reached=True, target=0.99)
    cheap, short, dear = result("static-x1", 0.992, 15.0), result("static-x0.5", 0.95, 5.0), result("static-x2", 1, 40)
    chosen = hs.cheapest_valid(plan, [cheap, short, dear])
    assert chosen.result.name == "hindsight" and chosen.result.scored.cost_usd == 15.0
    assert chosen.windows is window and "static-x1" in chosen.result.description
    assert hs.cheapest_valid(plan, [short, dear]) is plan  # nothing valid is cheaper: the window plan stays
    failed = hs.Hindsight(result=result("hindsight", 0.9, 3.0), model=window, rounds=8, reached=False, target=0.99)
    assert hs.cheapest_valid(failed, [dear]).reached  # a valid fixed fleet replaces a plan that fell short
