"""KEDA's external-scaler gRPC service, answering with the hub's targets (``targets.KedaTargets``).

A ScaledObject names the Fleetscale workload in its trigger metadata (``workload:
namespace/name``, optionally ``gpuType``) and asks for one metric, ``fleetscale-replicas``, whose
target is 1 per replica: with KEDA's ``AverageValue`` metric type the HPA then sets
``ceil(value / 1)`` replicas, which is the hub's count. ``IsActive`` is "the hub wants at least
one", which is how KEDA scales to and from zero.

The stubs are built at start from ``externalscaler.proto`` by grpcio-tools (``protos_and_services``),
so no generated code is kept in the repository.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc

from spoke.keda.targets import KedaTargets

logger = logging.getLogger(__name__)

METRIC = "fleetscale-replicas"
PROTO = Path(__file__).with_name("externalscaler.proto")


def load_proto() -> tuple[Any, Any]:
    """(messages, services) modules for ``externalscaler.proto``."""
    import sys

    folder = str(PROTO.parent)
    if folder not in sys.path:
        sys.path.append(folder)
    return grpc.protos_and_services(PROTO.name)


class ScalerError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _workload(ref: Any) -> tuple[str, str | None]:
    meta = dict(ref.scalerMetadata)
    workload = meta.get("workload", "").strip()
    if workload.count("/") != 1 or not all(workload.split("/")):
        raise ScalerError(grpc.StatusCode.INVALID_ARGUMENT,
                          "trigger metadata 'workload' must be namespace/name of the Fleetscale workload, "
                          f"got {workload!r} (ScaledObject {ref.namespace}/{ref.name})")
    return workload, (meta.get("gpuType") or None)


class ExternalScaler:
    """The servicer (method names are the proto's); every method maps a ``ScalerError`` to its gRPC status."""

    def __init__(self, targets: KedaTargets, messages: Any) -> None:
        self.targets = targets
        self.pb = messages

    def _replicas(self, ref: Any) -> int:
        workload, gpu_type = _workload(ref)
        replicas = self.targets.replicas(workload, gpu_type)
        if replicas is None:
            what = workload + (f" on {gpu_type}" if gpu_type else "")
            raise ScalerError(grpc.StatusCode.UNAVAILABLE,
                              f"no target from the Fleetscale hub yet for {what}; KEDA's fallback applies")
        return replicas

    async def IsActive(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return self.pb.IsActiveResponse(result=await _guard(context, lambda: self._replicas(request) > 0))

    async def StreamIsActive(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        """The current state at once (once the hub has sent a target), then every change of it."""
        workload, gpu_type = await _guard(context, lambda: _workload(request))
        last: bool | None = None
        version = self.targets.version
        while True:
            replicas = self.targets.replicas(workload, gpu_type)
            if replicas is not None and (replicas > 0) != last:
                last = replicas > 0
                yield self.pb.IsActiveResponse(result=last)
            version = await self.targets.wait_for_change(version)

    async def GetMetricSpec(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await _guard(context, lambda: _workload(request))
        spec = self.pb.MetricSpec(metricName=METRIC, targetSize=1, targetSizeFloat=1.0)
        return self.pb.GetMetricSpecResponse(metricSpecs=[spec])

    async def GetMetrics(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if request.metricName and request.metricName != METRIC:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown metric {request.metricName!r}; "
                                                           f"this scaler serves {METRIC!r}")
        replicas = await _guard(context, lambda: self._replicas(request.scaledObjectRef))
        value = self.pb.MetricValue(metricName=METRIC, metricValue=replicas, metricValueFloat=float(replicas))
        return self.pb.GetMetricsResponse(metricValues=[value])


async def _guard(context: grpc.aio.ServicerContext, compute: Callable[[], Any]) -> Any:
    try:
        return compute()
    except ScalerError as e:
        await context.abort(e.code, e.message)


async def serve(targets: KedaTargets, host: str, port: int, *, on_bound: Callable[[int], None] | None = None) -> None:
    """Serve until cancelled; the bound port (``port`` 0 picks one) goes to ``on_bound``."""
    messages, services = load_proto()
    server = grpc.aio.server()
    services.add_ExternalScalerServicer_to_server(ExternalScaler(targets, messages), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind the KEDA external scaler to {host}:{port}")
    await server.start()
    logger.info("KEDA external scaler listening on %s:%d", host, bound)
    if on_bound is not None:
        on_bound(bound)
    try:
        await server.wait_for_termination()
    finally:
        await asyncio.shield(server.stop(grace=1.0))
