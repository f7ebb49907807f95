"""Named simulated fleets: the clusters the demo and the backtest run on, defined once.

Three clusters with one GPU type each, so every (cluster, GPU type) pair differs in price, speed
and capacity: the case a multi-cluster placer exists for. The GPU counts are capacity limits; a
policy cannot hold more replicas of a type than the cluster has GPUs of it.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.simulation.specs import ClusterSpec, NodeSpec

DEMO_CLUSTERS: tuple[ClusterSpec, ...] = (
    ClusterSpec("us-east", tuple(NodeSpec(f"h100-{i}", "H100", 8) for i in range(2))),
    ClusterSpec("eu-west", tuple(NodeSpec(f"a100-{i}", "A100", 8) for i in range(2))),
    ClusterSpec("ap-south", tuple(NodeSpec(f"l4-{i}", "L4", 4) for i in range(8))),
)
"""us-east 16x H100, eu-west 16x A100, ap-south 32x L4."""


def gpu_capacity(clusters: Iterable[ClusterSpec]) -> dict[tuple[str, str], int]:
    """GPUs per (cluster id, GPU type)."""
    out: dict[tuple[str, str], int] = {}
    for cluster in clusters:
        for node in cluster.nodes:
            key = (cluster.cluster_id, node.gpu_type)
            out[key] = out.get(key, 0) + node.gpus
    return out
