"""Karmada's weighted division: a total of replicas split over clusters in proportion to weights.

Used by the ``static_weights`` strategy (weights from the policy) and the ``free_capacity`` strategy
(weights = replicas that fit in each cluster now, Karmada's dynamic weights). Each cluster gets the
floor of its exact share; the replicas left over go one each to the largest remainders, ties to the
larger weight and then to the lower cluster id, so the split is deterministic and adds up exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def divide(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """``total`` replicas over the clusters of ``weights``; a cluster of weight 0 gets none."""
    positive = {c: w for c, w in weights.items() if w > 0}
    out = dict.fromkeys(weights, 0)
    whole = sum(positive.values())
    if total <= 0 or not whole:
        return out
    exact = {c: total * w / whole for c, w in positive.items()}
    for c, share in exact.items():
        out[c] = math.floor(share)
    left = total - sum(out.values())
    order = sorted(positive, key=lambda c: (-(exact[c] - out[c]), -positive[c], c))
    for c in order[:left]:
        out[c] += 1
    return out
