"""Binding: which policy scales which workload, when selectors overlap.

A policy selects workloads by name or by labels, so two policies may claim one workload. Exactly
one wins, by a fixed rule that a user can predict from the policies alone: selecting by name beats
selecting by labels, and among equals the lowest policy id wins. The losers are reported, so the
API can show the conflict instead of silently ignoring a policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hub.policy.model import Policy
from hub.state import WorkloadView


@dataclass(frozen=True, slots=True)
class Binding:
    policy: Policy
    view: WorkloadView
    overridden: tuple[str, ...] = ()
    """Ids of other policies that also select this workload and lost."""


def bind(policies: Iterable[Policy], workloads: Mapping[str, WorkloadView]) -> list[Binding]:
    """One binding per workload selected by at least one policy, in workload key order."""
    claims: dict[str, list[tuple[int, str, Policy]]] = {}
    # Index the names: matching every policy against every workload was quadratic (4M matches a
    # tick at 2k workloads with a policy each); only selectors need a look at each workload.
    by_name: dict[str, list[Policy]] = {}
    selectors: list[Policy] = []
    for policy in policies:
        for key in dict.fromkeys(w.key for w in policy.targets.workloads):  # a name given twice counts once
            by_name.setdefault(key, []).append(policy)
        if policy.targets.selector is not None:
            selectors.append(policy)
    for key, view in workloads.items():
        found = [(0, p.id, p) for p in by_name.get(key, ())]
        named = {p.id for _, _, p in found}
        labels: dict[str, str] | None = None
        for policy in selectors:
            if policy.id in named:
                continue
            labels = view.labels if labels is None else labels
            if policy.targets.match(key, labels) == "labels":
                found.append((1, policy.id, policy))
        if found:
            claims[key] = found
    out = []
    for key in sorted(claims):
        ranked = sorted(claims[key], key=lambda c: (c[0], c[1]))
        out.append(Binding(ranked[0][2], workloads[key], tuple(c[1] for c in ranked[1:])))
    return out
