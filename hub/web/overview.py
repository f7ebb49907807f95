"""The fleet overview: JSON views of clusters, workloads and policies, shared by the API and any live feed.

One builder per view, so every consumer sees the same shape. Missing measurements stay ``null``;
nothing here fills a gap with a guess. Each workload names the policy bound to it by the engine's
own binding rule (``hub.policy.binding.bind``), so label selectors and overlaps are resolved as the
evaluator resolves them. Stale clusters are listed (``stale``) but, as in the evaluator, their
workloads' numbers do not count.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from hub.decisions.log import DecisionLog, placement_json
from hub.policies.store import PolicyStore, Stored
from hub.policy.binding import bind
from hub.policy.model import Policy
from hub.state import ClusterView, FleetSnapshot, WorkloadView
from shared.messages import WorkloadReport


class PolicySource(Protocol):
    def all(self) -> list[Policy]: ...


def _entry(policies: PolicySource, policy_id: str) -> Stored | None:
    """The stored entry (owner, times) when the source is the store itself."""
    return policies.entry(policy_id) if isinstance(policies, PolicyStore) else None


def by_gpu_type(reports: list[WorkloadReport], attr: Literal["desired_replicas", "ready_replicas"]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in reports:
        for v in r.variants:
            out[v.gpu_type] = out.get(v.gpu_type, 0) + getattr(v, attr)
        if not r.variants and getattr(r, attr):
            out["unknown"] = out.get("unknown", 0) + getattr(r, attr)
    return dict(sorted(out.items()))


def _cluster_json(c: ClusterView, age_s: float) -> dict[str, Any]:
    inventory: dict[str, dict[str, int]] = {}
    for n in c.report.inventory:
        t = inventory.setdefault(n.gpu_type, {"capacity_gpus": 0, "allocatable_gpus": 0, "free_gpus": 0})
        t["capacity_gpus"] += n.capacity_gpus
        t["allocatable_gpus"] += n.allocatable_gpus
        t["free_gpus"] += n.free_gpus
    return {
        "cluster_id": c.cluster_id,
        "stale": c.stale,
        "age_s": round(age_s, 3),
        "sequence": c.report.sequence,
        "interval_s": c.report.interval_s,
        "sent_at": c.report.sent_at.isoformat(),
        "spoke_version": c.report.spoke_version,
        "free_gpus": c.free_gpus(),
        "gpus_by_type": dict(sorted(inventory.items())),
        "inventory": [n.model_dump(mode="json") for n in c.report.inventory],
        "replicas_by_gpu_type": by_gpu_type(list(c.report.workloads), "desired_replicas"),
        "workloads": [w.workload.key for w in c.report.workloads],
    }


def clusters_json(snap: FleetSnapshot, *, cluster: str | None = None) -> list[dict[str, Any]]:
    return [_cluster_json(c, snap.taken_at - c.received_at) for cid, c in sorted(snap.clusters.items())
            if cluster is None or cid == cluster]


def policy_summary(policy: Policy, overridden: tuple[str, ...], *, source: str | None = None,
                   matched_by: str | None = None) -> dict[str, Any]:
    return {
        "id": policy.id,
        "revision": policy.revision,
        "mode": policy.mode,
        "source": source,
        "matched_by": matched_by,
        "signals": [s.model_dump(mode="json") | {"name": s.name} for s in policy.signals],
        "overridden": list(overridden),
    }


def _samples_json(r: WorkloadReport) -> dict[str, Any]:
    s = r.samples
    return s.model_dump(mode="json", exclude={"gpus"}) | {
        "gpu_utilization_ratio": s.gpu_utilization_ratio, "gpu_count": len(s.gpus)}


def workloads_json(
    snap: FleetSnapshot, decisions: DecisionLog, policies: PolicySource, *,
    workload: str | None = None, cluster: str | None = None,
) -> list[dict[str, Any]]:
    """Every workload (or the one named, or those the cluster runs), with its bound policy."""

    def selected(view: WorkloadView) -> bool:
        if workload is not None and view.key != workload:
            return False
        return cluster is None or cluster in view.reports or cluster in view.stale_clusters

    bindings = {b.view.key: b for b in bind(policies.all(), snap.workloads)}
    out = []
    for key, view in snap.workloads.items():
        if not selected(view):
            continue
        reports = list(view.reports.values())
        binding = bindings.get(key)
        policy = None
        if binding is not None:
            entry = _entry(policies, binding.policy.id)
            policy = policy_summary(binding.policy, binding.overridden,
                                    source=entry.source.value if entry is not None else None,
                                    matched_by=binding.policy.targets.match(key, view.labels))
        latest = decisions.latest.get(key)
        out.append({
            "workload": key,
            "desired_replicas": view.desired_replicas,
            "ready_replicas": view.ready_replicas,
            "replicas_by_gpu_type": by_gpu_type(reports, "desired_replicas"),
            "ready_by_gpu_type": by_gpu_type(reports, "ready_replicas"),
            "placement": placement_json(view.placement()),
            "stale_clusters": list(view.stale_clusters),
            "clusters": {
                cid: {
                    "kind": r.workload.kind.value,
                    "age_s": round(snap.taken_at - snap.clusters[cid].received_at, 3),
                    "desired_replicas": r.desired_replicas,
                    "ready_replicas": r.ready_replicas,
                    "variants": [v.model_dump(mode="json") for v in r.variants],
                    "samples": _samples_json(r),
                }
                for cid, r in sorted(view.reports.items())
            },
            "policy": policy,
            "last_decision": latest.model_dump(mode="json") if latest else None,
        })
    return out


def policy_json(entry: Stored) -> dict[str, Any]:
    """A stored policy as the API shows it: the model, its revision, its owner and its times."""
    return entry.policy.model_dump(mode="json") | {
        "source": entry.source.value,
        "updated_by": entry.updated_by,
        "created_at": None if entry.created_at is None else entry.created_at.isoformat(),
        "updated_at": None if entry.updated_at is None else entry.updated_at.isoformat(),
    }


def policies_json(policies: PolicySource) -> list[dict[str, Any]]:
    out = []
    for p in policies.all():
        entry = _entry(policies, p.id)
        out.append(policy_json(entry) if entry is not None else p.model_dump(mode="json"))
    return out


def fleet_json(snap: FleetSnapshot, decisions: DecisionLog, policies: PolicySource) -> dict[str, Any]:
    """The three list endpoints' bodies in one object (for a live feed's periodic fleet event)."""
    return {
        "clusters": clusters_json(snap),
        "workloads": workloads_json(snap, decisions, policies),
        "policies": policies_json(policies),
    }
