"""The operator's command line over the hub's web API (``fleetscale status|policies|decisions|explain|top``).

A client only: it speaks HTTP to a running hub and imports nothing of the hub's internals, so it
works against any hub version that serves the same ``/api/v1`` and can run on a laptop.
"""
