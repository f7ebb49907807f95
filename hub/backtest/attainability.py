"""Which requests any policy could serve within the SLO: the denominator of attainment.

A request is *attainable* if its first token comes within the TTFT SLO on an idle replica of the
fastest GPU type the scenario allows that can hold it (``solo_ttft_s``: its prefill alone, no
queue). A request that misses even there cannot be served in time by any number of replicas, so
counting it as a miss would only say how long the trace's prompts are; it is reported as a count
instead, and attainment is over the attainable requests. A request no allowed type can hold at all
(prompt and output over every type's KV capacity) is unattainable too.
"""

from __future__ import annotations

import math

from hub.backtest.scenario import Scenario
from shared.simulation.capacity import solo_ttft_s


def fastest_ttft_s(scenario: Scenario) -> tuple[float, ...]:
    """Per request of the scenario's trace: its TTFT on an idle replica of the best type for it (inf: none holds it)."""
    types = sorted({t for _, t in scenario.pools()})
    profiles = [scenario.profile(t) for t in types]
    cache: dict[tuple[int, int], float] = {}
    out = []
    trace = scenario.trace
    for i, o in zip(trace.input_tokens, trace.output_tokens, strict=True):
        key = (i, o)
        if key not in cache:
            cache[key] = min(
                (solo_ttft_s(p, i) for p in profiles if i + o <= p.kv_capacity_tokens), default=math.inf
            )
        out.append(cache[key])
    return tuple(out)


def attainable(scenario: Scenario) -> tuple[bool, ...]:
    """Per request: whether any allowed GPU type serves it within the SLO when idle."""
    slo = scenario.slo_ttft_s
    return tuple(t <= slo for t in fastest_ttft_s(scenario))
