"""Binding: which policy scales which workload, when selectors overlap.

A policy selects workloads by name or by labels, so two policies may claim one workload. Exactly
one wins, by a fixed rule that a user can predict from the policies alone: selecting by name beats
selecting by labels, and among equals the lowest policy id wins. The losers are reported, so the
API can show the conflict instead of silently ignoring a policy.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hub.policy.model import Policy
from hub.state import WorkloadView


@dataclass(frozen=True, slots=True)
class Binding:
    policy: Policy
    view: WorkloadView
    overridden: tuple[str, ...] = ()
    """Ids of other policies that also select this workload and lost."""


@dataclass(frozen=True, slots=True)
class PolicyIndex:
    """The policies by the workload names they give, and those that select by labels.

    Index the names: matching every policy against every workload was quadratic (4M matches a
    tick at 2k workloads with a policy each); only selectors need a look at each workload. Built
    once per list of policies (``of``): rebuilt for every evaluation, it cost as much at 10,000
    policies as planning a hundred workloads, though an evaluation plans only the few that changed.
    """

    policies: tuple[Policy, ...]
    by_name: Mapping[str, list[Policy]] = field(default_factory=dict)
    selectors: tuple[Policy, ...] = ()

    @classmethod
    def of(cls, policies: Iterable[Policy]) -> PolicyIndex:
        listed = tuple(policies)
        by_name: dict[str, list[Policy]] = {}
        for policy in listed:
            for key in dict.fromkeys(w.key for w in policy.targets.workloads):  # a name given twice counts once
                by_name.setdefault(key, []).append(policy)
        return cls(listed, by_name, tuple(p for p in listed if p.targets.selector is not None))

    def covers(self, policies: Iterable[Policy]) -> bool:
        """Whether this index is of exactly these policies (the same objects: a cheap check)."""
        listed = tuple(policies)
        return len(listed) == len(self.policies) and all(map(operator.is_, listed, self.policies))


def bind(policies: Iterable[Policy] | PolicyIndex, workloads: Mapping[str, WorkloadView]) -> list[Binding]:
    """One binding per workload selected by at least one policy, in workload key order."""
    index = policies if isinstance(policies, PolicyIndex) else PolicyIndex.of(policies)
    by_name, selectors = index.by_name, index.selectors
    claims: dict[str, list[tuple[int, str, Policy]]] = {}
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
