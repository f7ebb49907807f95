from hub.backtest.results import Figures, PolicyResult, Timeline
from hub.backtest.sweep import frontier


def result(name: str, attainment: float, cost: float) -> PolicyResult:
    f = Figures(from_s=0.0, requests=1000, attainable=1000, within_slo=round(attainment * 1000), unfinished=0,
                ttft_p50_s=0.1, ttft_p95_s=0.5, ttft_p99_s=1.0, gpu_hours=1.0, gpu_hours_by_type={"L4": 1.0},
                cost_usd=cost, scale_events=0)
    return PolicyResult(name=name, description="", whole=f, scored=f, minute_cost_per_hour=(), wall_s=0.0,
                        timeline=Timeline((), (), 60.0, ()), family="hpa-gpu-util", knob=name)


def test_the_frontier_is_the_cheapest_setting_reaching_the_level_else_the_best_attainment():
    runs = [result("tight", 0.995, 30.0), result("loose", 0.96, 10.0), result("middle", 0.992, 20.0),
            result("waste", 0.999, 50.0)]
    assert frontier(runs, 0.99) == (runs[2], True)  # cheapest of the three that reach 99 %
    assert frontier(runs, 0.90) == (runs[1], True)
    assert frontier(runs, 0.999) == (runs[3], True)
    best, reached = frontier(runs, 0.9995)
    assert best is runs[3] and not reached  # none reaches it: the best attainment is reported
    assert frontier([], 0.99) == (None, False)


def test_the_coarse_grid_gives_one_type_baselines_the_capacity_models_best_type_and_the_fine_grid_every_type():
    from hub.backtest.attainability import attainable
    from hub.backtest.demand import Supply
    from hub.backtest.scenario import Scenario
    from hub.backtest.sweep import COARSE, FINE, HPA_UTIL, KEDA, STATIC, baseline_entries, best_gpu_type
    from shared.simulation import synthetic

    short = Scenario(synthetic("constant", duration_s=120, rate_per_s=2.0, seed=1, input_tokens=(100, 400),
                               output_tokens=50))
    long = Scenario(synthetic("constant", duration_s=120, rate_per_s=2.0, seed=1, input_tokens=(9000, 12000),
                              output_tokens=50))
    for s in (short, long):
        supply = Supply(s)
        ok = attainable(s)
        best = best_gpu_type(supply, ok)
        assert all(best in supply.capable[i] for i in range(len(s.trace)))  # it can serve every request
        coarse = baseline_entries(s, supply, ok, COARSE)
        assert {e.controller.pool[1] for e in coarse if e.family in (HPA_UTIL, KEDA)} == {best}
        fine = baseline_entries(s, supply, ok, FINE)
        assert {e.controller.pool[1] for e in fine if e.family == HPA_UTIL} == {"H100", "A100", "L4"}
        assert len([e for e in fine if e.family == HPA_UTIL]) == 3 * 9  # 10-90 % on every type
        assert any(e.family == STATIC for e in fine)
    assert best_gpu_type(Supply(long), attainable(long)) != "L4"  # 9k-12k prompts take > 1.5 s on an L4
