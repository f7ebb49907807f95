"""The fleet overview: JSON views of clusters and workloads, shared by the API and the live feed.

One builder per view, so ``GET /api/v1/clusters`` and ``GET /api/v1/workloads`` and the feed's
periodic ``fleet`` event always have the same shape, and the page renders both with one code path.
Missing measurements stay ``null``; nothing here fills a gap with a guess. Each workload names the
policy bound to it (by the engine's own binding rule, so label selectors and overlaps are resolved
as the evaluator resolves them), which the page needs for the dry-run badge and the TTFT SLO.
"""

from __future__ import annotations

from typing import Any, Protocol

from hub.decisions import DecisionLog, placement_json
from hub.policy.binding import bind
from hub.policy.model import Policy
from hub.state import FleetSnapshot


class PolicySource(Protocol):
    def all(self) -> list[Policy]: ...


def clusters_json(snap: FleetSnapshot) -> list[dict[str, Any]]:
    out = []
    for cid, c in sorted(snap.clusters.items()):
        out.append({
            "cluster_id": cid,
            "stale": c.stale,
            "age_s": round(snap.taken_at - c.received_at, 3),
            "sequence": c.report.sequence,
            "interval_s": c.report.interval_s,
            "sent_at": c.report.sent_at.isoformat(),
            "spoke_version": c.report.spoke_version,
            "free_gpus": c.free_gpus(),
            "inventory": [n.model_dump(mode="json") for n in c.report.inventory],
            "workloads": [w.workload.key for w in c.report.workloads],
        })
    return out


def policy_summary(policy: Policy, overridden: tuple[str, ...]) -> dict[str, Any]:
    return {
        "id": policy.id,
        "revision": policy.revision,
        "mode": policy.mode,
        "signals": [s.model_dump(mode="json") | {"name": s.name} for s in policy.signals],
        "overridden": list(overridden),
    }


def workloads_json(snap: FleetSnapshot, decisions: DecisionLog, policies: PolicySource) -> list[dict[str, Any]]:
    bound = {b.view.key: policy_summary(b.policy, b.overridden) for b in bind(policies.all(), snap.workloads)}
    out = []
    for key, view in snap.workloads.items():
        latest = decisions.latest.get(key)
        out.append({
            "workload": key,
            "desired_replicas": view.desired_replicas,
            "ready_replicas": view.ready_replicas,
            "placement": placement_json(view.placement()),
            "stale_clusters": list(view.stale_clusters),
            "clusters": {
                cid: {
                    "desired_replicas": r.desired_replicas,
                    "ready_replicas": r.ready_replicas,
                    "variants": [v.model_dump(mode="json") for v in r.variants],
                    "samples": r.samples.model_dump(mode="json", exclude={"gpus"})
                    | {"gpu_utilization_ratio": r.samples.gpu_utilization_ratio, "gpu_count": len(r.samples.gpus)},
                }
                for cid, r in sorted(view.reports.items())
            },
            "policy": bound.get(key),
            "last_decision": latest.to_json() if latest else None,
        })
    return out


def policies_json(policies: PolicySource) -> list[dict[str, Any]]:
    return [p.model_dump(mode="json") for p in policies.all()]


def fleet_json(snap: FleetSnapshot, decisions: DecisionLog, policies: PolicySource) -> dict[str, Any]:
    """The feed's ``fleet`` event: the three list endpoints' bodies in one object."""
    return {
        "clusters": clusters_json(snap),
        "workloads": workloads_json(snap, decisions, policies),
        "policies": policies_json(policies),
    }
