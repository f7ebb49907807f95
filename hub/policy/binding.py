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
    ordered = sorted(policies, key=lambda p: p.id)
    for key, view in workloads.items():
        labels = view.labels
        for policy in ordered:
            how = policy.targets.match(key, labels)
            if how is not None:
                claims.setdefault(key, []).append((0 if how == "name" else 1, policy.id, policy))
    out = []
    for key in sorted(claims):
        ranked = sorted(claims[key], key=lambda c: (c[0], c[1]))
        out.append(Binding(ranked[0][2], workloads[key], tuple(c[1] for c in ranked[1:])))
    return out
