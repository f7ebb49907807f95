"""KEDA as the actuator: the spoke serves KEDA's external-scaler gRPC interface with the hub's targets.

A cluster that already scales with KEDA keeps it: with ``SPOKE_ACTUATOR=keda`` the spoke does not
write ``/scale``; it records each command's replica counts (``targets``) and answers KEDA's
``GetMetrics`` with them (``scaler``), so Fleetscale decides globally and KEDA applies locally.
``docs/keda.md`` shows the ScaledObject to write.
"""
