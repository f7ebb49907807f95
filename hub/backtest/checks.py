"""The checks of issue 10's "Done when", evaluated on one comparison, in the scored window.

1. Fleetscale serves at least 99 % of the attainable requests within the TTFT SLO;
2. its cost is at most 1.15x the hindsight plan's (a plan valid in its own replay);
3. at most 0.70x the cheapest static fleet reaching the same attainment;
4. cheaper than the cheapest HPA (GPU utilisation; queue per replica) and KEDA setting reaching
   the same attainment; where none of a baseline's settings reaches it, Fleetscale must have
   higher attainment at lower cost than that baseline's best;
5. in no minute of the scored window a cost rate above 2x the hindsight plan's (no runaway); a
   minute where the plan holds less than one replica of the cheapest type is judged against one
   such replica, so a policy's floor of one replica is never called a runaway.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.backtest.comparison import Comparison
from hub.backtest.results import PolicyResult
from hub.backtest.sweep import HPA_QUEUE, HPA_UTIL, KEDA, STATIC, frontier

ATTAINMENT = 0.99
HINDSIGHT_FACTOR = 1.15
STATIC_FACTOR = 0.70
RUNAWAY_FACTOR = 2.0
LABELS = {STATIC: "static fleet", HPA_UTIL: "HPA (GPU utilisation)", HPA_QUEUE: "HPA (queue per replica)",
          KEDA: "KEDA (queue)"}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    figures: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.figures}"


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _against(f: PolicyResult, family: list[PolicyResult], label: str, factor: float | None) -> Check:
    pick, reached = frontier(family, f.scored.attainment)
    bound = f"<= {factor:g}x" if factor is not None else "cheaper than"
    name = f"cost {bound} the cheapest {label} reaching the same attainment"
    if pick is None:
        return Check(name, False, "no run of this baseline")
    b = pick.scored
    ratio = f.scored.cost_usd / b.cost_usd if b.cost_usd > 0 else float("inf")
    if reached:
        ok = f.scored.cost_usd <= factor * b.cost_usd if factor is not None else f.scored.cost_usd < b.cost_usd
        return Check(name, ok, f"${f.scored.cost_usd:,.2f} vs {pick.name} ${b.cost_usd:,.2f} ({_pct(b.attainment)}): "
                               f"{ratio:.2f}x")
    ok = f.scored.attainment > b.attainment and f.scored.cost_usd < b.cost_usd
    return Check(name, ok, f"no setting reaches {_pct(f.scored.attainment)}; best {pick.name} {_pct(b.attainment)} at "
                           f"${b.cost_usd:,.2f}, Fleetscale ${f.scored.cost_usd:,.2f} ({ratio:.2f}x)")


def runaway(c: Comparison, f: PolicyResult) -> Check:
    h = c.hindsight.result
    floor = min(c.scenario.replica_price(t) for _, t in c.scenario.pools())
    first = int(c.scenario.scored_from_s // 60)
    worst, at = 0.0, None
    for i in range(first, min(len(f.minute_cost_per_hour), len(h.minute_cost_per_hour))):
        ratio = f.minute_cost_per_hour[i] / max(h.minute_cost_per_hour[i], floor)
        if ratio > worst:
            worst, at = ratio, i
    name = f"no minute above {RUNAWAY_FACTOR:g}x the hindsight plan's cost rate"
    if at is None:
        return Check(name, True, "no minute scored")
    plan = h.minute_cost_per_hour[at]
    against = f"${plan:,.2f}/h"
    if plan < floor:
        against = f"${floor:,.2f}/h (one replica of the cheapest type; the plan: {against})"
    return Check(name, worst <= RUNAWAY_FACTOR,
                 f"worst minute {at}: ${f.minute_cost_per_hour[at]:,.2f}/h vs {against} ({worst:.2f}x)")


def checks(c: Comparison) -> list[Check]:
    f, h = c.fleetscale, c.hindsight.result
    s = f.scored
    unattainable = f"; {s.unattainable} unattainable requests not counted" if s.unattainable else ""
    valid = "" if c.hindsight.reached else " (the plan did not reach its target: not a valid reference)"
    out = [
        Check(f"Fleetscale serves >= {100 * ATTAINMENT:g} % of attainable requests within the TTFT SLO",
              s.attainment >= ATTAINMENT, f"{_pct(s.attainment)} of {s.attainable:,}{unattainable}"),
        Check(f"cost <= {HINDSIGHT_FACTOR:g}x the hindsight plan's", c.hindsight.reached
              and s.cost_usd <= HINDSIGHT_FACTOR * h.scored.cost_usd,
              f"${s.cost_usd:,.2f} vs ${h.scored.cost_usd:,.2f} ({_pct(h.scored.attainment)}): "
              f"{s.cost_usd / h.scored.cost_usd if h.scored.cost_usd else float('inf'):.2f}x{valid}"),
        _against(f, c.family(STATIC), LABELS[STATIC], STATIC_FACTOR),
    ]
    out += [_against(f, c.family(fam), LABELS[fam], None) for fam in (HPA_UTIL, HPA_QUEUE, KEDA)]
    out.append(runaway(c, f))
    return out
