"""``fleetscale simulate``: replay a request trace against Fleetscale, baselines and a cost oracle.

Each policy drives its own fresh simulated fleet (``shared.simulation``) over the same trace:

* ``scenario`` what is replayed (trace, clusters, SLO); ``harness`` the tick loop and the ``Fleet``
  a controller acts through; ``results`` the figures a run is judged by;
* controllers: ``static`` (peak provisioning), ``kubernetes_hpa`` (HPA on GPU utilisation),
  ``keda`` (queue, with activation from zero), ``fleetscale`` (the hub's planner, fed real
  telemetry reports built by ``telemetry``), ``oracle`` (the cost lower bound), on ``schedule``;
* ``demand`` the capacity arithmetic the static baseline and the oracle share;
* ``comparison`` runs them side by side; ``report`` and ``plot`` present it; ``cli`` is the command.
"""
