"""``fleetscale simulate``: replay a request trace against Fleetscale, swept baselines and a hindsight plan.

Each run drives its own fresh simulated fleet (``shared.simulation``) over the same trace, from
the same initial fleet, behind the same flow-controlled gateway:

* ``scenario`` what is replayed (trace, clusters, SLO, initial fleet, warm-up, context window);
  ``attainability`` which requests any GPU type could serve in time; ``harness`` the tick loop and
  the ``Fleet`` a controller acts through; ``results`` the figures (whole run and scored window);
* controllers: ``schedule`` (static fleets and the hindsight plan), ``kubernetes_hpa`` (HPA on GPU
  utilisation or on the queue), ``keda`` (queue, with activation from zero), ``fleetscale`` (the
  hub's planner, fed real telemetry reports built by ``telemetry``);
* ``demand`` the capacity arithmetic the static fleets and the hindsight plan share; ``hindsight``
  the reference plan, raised until it reaches its target in its own replay; ``sweep`` each
  baseline's knob swept, and the frontier;
* ``comparison`` runs them side by side; ``checks`` evaluates issue 10's "Done when"; ``report``
  and ``plot`` present it; ``cli`` is the command.
"""
