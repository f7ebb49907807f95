"""Placement: each workload's demand -> replicas per (cluster, GPU type), for all workloads at once.

Pure; no I/O. ``solve`` places a tick's workloads jointly with an exact MILP (HiGHS) at the least cost
per unit of SLO-capable load; ``place`` is the same for one workload on its own. ``failover`` keeps the
phases of clusters across ticks (lost, recovering, healthy) and adjusts demands for them.
"""

from hub.placement.failover import (
    ClusterHealth,
    FailoverTracker,
    FleetHealth,
    Phase,
    apply_failover,
)
from hub.placement.formulation import PRICE_RESOLUTION, Weights
from hub.placement.offers import (
    ALL_TYPES,
    BudgetCap,
    Key,
    LoadClass,
    Offer,
    PlacementProblem,
    WorkloadDemand,
    free_gpus,
)
from hub.placement.results import PlacementResult, Solution
from hub.placement.solver import DEFAULT_TIME_LIMIT_S, place, solve

__all__ = [
    "ALL_TYPES",
    "DEFAULT_TIME_LIMIT_S",
    "PRICE_RESOLUTION",
    "BudgetCap",
    "ClusterHealth",
    "FailoverTracker",
    "FleetHealth",
    "Key",
    "LoadClass",
    "Offer",
    "Phase",
    "PlacementProblem",
    "PlacementResult",
    "Solution",
    "Weights",
    "WorkloadDemand",
    "apply_failover",
    "free_gpus",
    "place",
    "solve",
]
