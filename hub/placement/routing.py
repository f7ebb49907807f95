"""Routing rules: which GPU types each prompt-length class may use, from a placement of classed demand.

Placement splits each place's replicas between the request classes they can serve
(``assignment.py``). A heterogeneous fleet only meets the SLO at that cost if the gateway follows
the same split: a long prompt routed to an idle L4 misses the target however many A100s run. The
rules say, per class, the GPU types fast enough for it (the only ones it may go to) and, as a
preference, the share of its load the plan gives each (tokens/s served there over the class's
total). The preference is not a restriction: while the L4s a plan adds are starting, short prompts
must still go to the A100s that are ready (restricted to the one ready L4, they queued there and
the backlog ran the fleet to 64 GPUs). A class the placement could not serve at all is weighted by
throughput over the types that can serve it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hub.placement.assignment import assign
from hub.placement.offers import Key, LoadClass
from shared.messages import RoutingRule


def routing_rules(classes: Sequence[LoadClass], bounds: Sequence[tuple[float, float]], demand: float,
                  placement: Mapping[Key, int]) -> tuple[RoutingRule, ...]:
    """One rule per class, ``bounds[k]`` its (lower, upper] prompt tokens (upper may be ``inf``)."""
    if not classes or len(bounds) != len(classes):
        return ()
    served = assign(classes, demand, placement)
    rules = []
    for k, (c, (lo, hi)) in enumerate(zip(classes, bounds, strict=True)):
        load: dict[str, float] = {}
        for (key, kk), replicas in served.share.items():
            if kk == k:
                load[key[1]] = load.get(key[1], 0.0) + replicas * c.throughput.get(key[1], 0.0)
        if not any(v > 0 for v in load.values()):
            load = dict(c.throughput)
        total = sum(load.values())
        weights = {t: v / total for t, v in sorted(load.items()) if v > 0}
        rules.append(RoutingRule(min_prompt_tokens=lo, max_prompt_tokens=None if hi == float("inf") else hi,
                                 gpu_types=tuple(sorted(c.throughput)), weights=weights))
    return tuple(rules)
