"""Simulator physics shared by the demo, the end-to-end tests and the backtest benchmark.

Pure and synchronous: no asyncio and no I/O beyond reading trace files. ``shared.gpus`` holds the
hardware and model numbers, ``trace`` the load, ``replica`` one model server, ``world`` the fleet
and its clock, ``sampling`` how telemetry is derived. ``docs/simulator.md`` explains the model.
"""

from shared.gpus import (
    DEFAULT_MODEL,
    GPU_PROFILES,
    GpuProfile,
    ModelProfile,
    ServingProfile,
    serving_profile,
)
from shared.simulation.ledger import CompletedRequest
from shared.simulation.specs import FlowControl
from shared.simulation.trace import Trace, TraceError, bundled_trace, from_requests, load_trace, synthetic
from shared.simulation.world import (
    CapacityError,
    ClusterSpec,
    NodeSpec,
    SimWorld,
    UnknownTargetError,
    WorkloadSpec,
    WorkloadStatus,
)

__all__ = [
    "DEFAULT_MODEL",
    "GPU_PROFILES",
    "CapacityError",
    "ClusterSpec",
    "CompletedRequest",
    "FlowControl",
    "GpuProfile",
    "ModelProfile",
    "NodeSpec",
    "ServingProfile",
    "SimWorld",
    "Trace",
    "TraceError",
    "UnknownTargetError",
    "WorkloadSpec",
    "WorkloadStatus",
    "bundled_trace",
    "from_requests",
    "load_trace",
    "serving_profile",
    "synthetic",
]
