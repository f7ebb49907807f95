"""The KEDA baseline: a ScaledObject on the queue, i.e. an HPA fed by KEDA plus KEDA's own 0 <-> 1.

As KEDA does it (docs/reference anchors, KEDA section):

* KEDA creates an HPA (``minReplicas`` 1) with an External metric, ``AverageValue`` target
  ``QUEUE_THRESHOLD`` (5 waiting requests per replica): the HPA's math and default behaviour, on
  its 15 s sync, scale 1..N. Its metric is read fresh at every sync (no ``useCachedMetrics``).
* KEDA's own loop, every ``pollingInterval`` (30 s), owns activation: at 0 replicas an *active*
  trigger (queue > ``activationThreshold`` 0, strictly) scales to 1; at >= 1, once no poll has been
  active for ``cooldownPeriod`` (300 s), it scales to 0 (``minReplicaCount`` 0). At 0 replicas the
  HPA is switched off (its bounds pre-check: ``ScalingDisabled``).

The queue is the workload's ``requests_waiting`` summed over clusters: the pods' waiting requests
plus the gateway's queue, which the Deployment's cluster hosts (with 0 replicas there is nowhere
else for it to show).
Same Deployment and pool as the HPA baseline.
"""

from __future__ import annotations

import math

from hub.backtest.harness import Fleet
from hub.backtest.kubernetes_hpa import SYNC_PERIOD_S, HpaController, baseline_pool, read_workload_queue
from hub.backtest.scenario import Scenario
from hub.policy.hpa import MetricSource, MetricTarget, TargetType

QUEUE_THRESHOLD = 5
POLLING_INTERVAL_S = 30.0
COOLDOWN_PERIOD_S = 300.0
ACTIVATION_THRESHOLD = 0.0
read_queue = read_workload_queue


class KedaController:
    def __init__(
        self, scenario: Scenario, *, gpu_type: str | None = None, threshold: float = QUEUE_THRESHOLD,
        name: str = "keda-queue",
    ) -> None:
        pool, capacity = baseline_pool(scenario, gpu_type)
        self.name = name
        self.description = (
            f"KEDA ScaledObject, queue {threshold:g} waiting per replica (AverageValue), activation at 0 -> 1, "
            f"{POLLING_INTERVAL_S:g} s polling, {COOLDOWN_PERIOD_S:g} s cooldown; one Deployment on {pool[1]} "
            f"in {pool[0]}, 0..{capacity}"
        )
        self.pool = pool
        self.hpa = HpaController(
            name=self.name,
            description=self.description,
            pool=pool,
            target=MetricTarget(MetricSource.EXTERNAL, TargetType.AVERAGE_VALUE, threshold, name="queue"),
            read=read_queue,
            min_replicas=1,
            max_replicas=capacity,
        )
        self.hpa.deployed = True  # KEDA owns 0 <-> 1: its Deployment starts from what it has, even 0
        self.min_replica_count = 0
        self.last_active_s: float | None = None

    @property
    def gateway_cluster(self) -> str | None:
        return self.pool[0]

    def next_at(self, now_s: float) -> float:
        # Both loops start at 0; the polling interval is a multiple of the HPA's sync period.
        if now_s < 0:
            return 0.0
        return (math.floor(now_s / SYNC_PERIOD_S + 1e-9) + 1) * SYNC_PERIOD_S

    def act(self, fleet: Fleet, now_s: float) -> None:
        if math.isclose(now_s % POLLING_INTERVAL_S, 0.0, abs_tol=1e-6) or math.isclose(
            now_s % POLLING_INTERVAL_S, POLLING_INTERVAL_S, abs_tol=1e-6
        ):
            self.poll(fleet, now_s)
        self.hpa.reconcile(fleet, now_s)

    def poll(self, fleet: Fleet, now_s: float) -> None:
        """KEDA's scale loop: activation and deactivation (``scale_executor``)."""
        value = read_queue(fleet, self.pool)
        active = isinstance(value, float) and value > ACTIVATION_THRESHOLD
        current = self.hpa.current(fleet)
        cluster_id, gpu_type = self.pool
        # KEDA patches the scale itself; the HPA's own scale-event history does not see it.
        if active:
            self.last_active_s = now_s
            if current == 0:
                fleet.set(cluster_id, {gpu_type: max(self.min_replica_count, 1)}, pending=True)
            return
        if current > 0 and self.min_replica_count == 0:
            since = self.last_active_s if self.last_active_s is not None else 0.0
            if now_s - since >= COOLDOWN_PERIOD_S:
                fleet.set(cluster_id, {gpu_type: 0})


def keda_queue(scenario: Scenario, **kw: object) -> KedaController:
    return KedaController(scenario, **kw)  # type: ignore[arg-type]
