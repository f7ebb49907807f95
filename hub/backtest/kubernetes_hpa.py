"""The Kubernetes HPA baseline: one HorizontalPodAutoscaler on one Deployment, HPA-exact.

One HPA scales one Deployment, and a Deployment's pods run on one GPU type (node affinity), so the
baseline lives in one pool: ``BASELINE_GPU_TYPE`` in its cluster, the cheapest GPU type that can
hold the model (docs/simulator.md prices), with ``maxReplicas`` = that cluster's GPUs of it.

Each sync period (15 s, ``--horizontal-pod-autoscaler-sync-period``) the controller does what
``reconcileAutoscaler`` does, through ``hub.policy.hpa`` and ``hub.policy.behavior``: the bounds
pre-check, the metric's proposal (``replicas_for_metric`` / ``replicas_for_metrics``), then
``apply_behavior`` with the recommendation and scale-event history it keeps, and a rescale when the
result differs. The metric reader is a plug-in: GPU utilisation here, the queue for KEDA.

GPU utilisation as the HPA would see it: a Pods metric (DCGM_FI_DEV_GPU_UTIL through a metrics
adapter) with an ``AverageValue`` target of 70 (percent). The simulated exporter gives the mean
busy share of the ready replicas' GPUs over ``GPU_METRIC_WINDOW_S`` (a 15 s scrape averaged over
two scrapes); every ready pod reports that mean as a whole percent (DCGM's unit), and a starting
pod reports nothing (it is not scraped yet), which the HPA's missing-pod rule handles.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from hub.backtest.harness import Fleet
from hub.backtest.scenario import Pool, Scenario
from hub.policy.behavior import Behavior, Recommendation, ScaleEvent, apply_behavior, bounds_precheck
from hub.policy.hpa import MetricSource, MetricTarget, PodSample, TargetType, replicas_for_metric, replicas_for_metrics

SYNC_PERIOD_S = 15.0
GPU_METRIC_WINDOW_S = 30.0
GPU_UTILIZATION_TARGET_PERCENT = 70

Observed = Sequence[PodSample] | float | None
"""What the metric reader saw: pods for a Pods metric, a value for an External one, None if nothing."""


def baseline_pool(scenario: Scenario, gpu_type: str | None = None) -> tuple[Pool, int]:
    """The single pool a one-Deployment baseline runs in, and its size.

    The largest pool of ``gpu_type``; without one, the cheapest replica-hour's.
    """
    pools = scenario.pools()
    if gpu_type is not None:
        pools = {p: n for p, n in pools.items() if p[1] == gpu_type}
    if not pools:
        raise ValueError(f"no pool of {gpu_type or 'any GPU type'} in the scenario can hold the model")
    if gpu_type is not None:
        pool = max(pools, key=lambda p: (pools[p], p))
    else:
        pool = min(pools, key=lambda p: (scenario.replica_price(p[1]), p))
    return pool, pools[pool]


class HpaController:
    """One HPA with default behaviour on one Deployment (one pool)."""

    def __init__(
        self,
        *,
        name: str,
        description: str,
        pool: Pool,
        target: MetricTarget,
        read: Callable[[Fleet, Pool], Observed],
        min_replicas: int,
        max_replicas: int,
        behavior: Behavior | None = None,
        sync_period_s: float = SYNC_PERIOD_S,
    ) -> None:
        self.name = name
        self.description = description
        self.pool = pool
        self.target = target
        self.read = read
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self.behavior = behavior or Behavior.default()
        self.sync_period_s = sync_period_s
        self.deployed = False
        self.recommendations: list[Recommendation] = []
        self.scale_up_events: list[ScaleEvent] = []
        self.scale_down_events: list[ScaleEvent] = []
        self._horizon = max(
            self.behavior.scale_up.stabilization_window_seconds,
            self.behavior.scale_down.stabilization_window_seconds,
            *(p.period_seconds for p in (*self.behavior.scale_up.policies, *self.behavior.scale_down.policies)),
        )

    @property
    def gateway_cluster(self) -> str | None:
        return self.pool[0]

    def next_at(self, now_s: float) -> float:
        if now_s < 0:
            return 0.0
        return (math.floor(now_s / self.sync_period_s + 1e-9) + 1) * self.sync_period_s

    def current(self, fleet: Fleet) -> int:
        """The Deployment's replicas (pods left Pending for lack of GPUs are not simulated)."""
        return fleet.replicas().get(self.pool, 0)

    def rescale(self, fleet: Fleet, now_s: float, current: int, replicas: int) -> None:
        if replicas == current or not fleet.set(self.pool[0], {self.pool[1]: replicas}, pending=True):
            return
        now = self.current(fleet)  # less than asked when the cluster ran out of GPUs
        # storeScaleEvent: what the rate limits of later syncs count.
        if now > current:
            self.scale_up_events.append((now_s, now - current))
        elif now < current:
            self.scale_down_events.append((now_s, current - now))

    def act(self, fleet: Fleet, now_s: float) -> None:
        self.reconcile(fleet, now_s)

    def reconcile(self, fleet: Fleet, now_s: float) -> None:
        if not self.deployed:
            # The Deployment is created with minReplicas pods (an HPA never scales up from 0: its
            # bounds pre-check disables scaling there); they cold-start unless the initial fleet has them.
            self.deployed = True
            if self.current(fleet) < self.min_replicas:
                fleet.set(self.pool[0], {self.pool[1]: self.min_replicas}, pending=True)
        fleet.retire_others(self.pool)
        current = self.current(fleet)
        override = bounds_precheck(current, min_replicas=self.min_replicas, max_replicas=self.max_replicas)
        if override is not None:
            if override.rescale:
                self.rescale(fleet, now_s, current, override.replicas)
            return
        observed = self.read(fleet, self.pool)
        if observed is None:
            return  # no reading at all: the HPA reports FailedGet*Metric and does not scale
        proposal = replicas_for_metric(
            current, observed, self.target, tolerance=self.behavior.tolerances(), status_replicas=current
        )
        decision = replicas_for_metrics(current, [proposal])
        if decision.replicas is None:
            return
        result = apply_behavior(
            current,
            decision.replicas,
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
            behavior=self.behavior,
            recommendations=self.recommendations,
            scale_up_events=self.scale_up_events,
            scale_down_events=self.scale_down_events,
            now=now_s,
        )
        self.recommendations.append(result.record)
        self._forget(now_s)
        if result.rescale:
            self.rescale(fleet, now_s, current, result.replicas)

    def _forget(self, now_s: float) -> None:
        """Drop history no window or period can reach any more (it would not change a decision)."""
        cutoff = now_s - self._horizon - self.sync_period_s
        for history in (self.recommendations, self.scale_up_events, self.scale_down_events):
            while history and history[0][0] < cutoff:
                history.pop(0)


def read_gpu_utilization(fleet: Fleet, pool: Pool) -> Observed:
    """Per pod of the Deployment: the exporter's GPU busy %, or missing for a starting pod."""
    scenario = fleet.scenario
    cluster_id = pool[0]
    replicas = fleet.replicas().get(pool, 0)
    ready = fleet.ready().get(pool, 0)
    if replicas == 0:
        return None
    samples = fleet.world.samples(cluster_id, scenario.namespace, scenario.name, GPU_METRIC_WINDOW_S)
    mean = samples.gpu_utilization_ratio
    pods = [PodSample(value=None) for _ in range(replicas - ready)]
    if mean is not None:
        pods += [PodSample(value=float(round(100 * mean))) for _ in range(ready)]
    else:
        pods += [PodSample(value=None) for _ in range(ready)]
    return pods


def read_workload_queue(fleet: Fleet, pool: Pool) -> Observed:
    """Requests waiting for the workload: its pods' queues in every cluster plus the gateway's."""
    scenario = fleet.scenario
    values = [
        fleet.world.samples(cid, scenario.namespace, scenario.name, QUEUE_WINDOW_S).requests_waiting
        for cid in fleet.world.cluster_ids
    ]
    seen = [v for v in values if v is not None]
    return float(sum(seen)) if seen else None


QUEUE_WINDOW_S = 1.0
"""``requests_waiting`` is an instant gauge; any window gives the value now."""


def hpa_gpu_utilization(
    scenario: Scenario, *, gpu_type: str | None = None, target_percent: int = GPU_UTILIZATION_TARGET_PERCENT,
    name: str = "hpa-gpu-util",
) -> HpaController:
    pool, capacity = baseline_pool(scenario, gpu_type)
    return HpaController(
        name=name,
        description=(
            f"Kubernetes HPA, GPU utilisation target {target_percent} %, default behaviour, "
            f"{SYNC_PERIOD_S:g} s sync; one Deployment on {pool[1]} in {pool[0]}, 1..{capacity}"
        ),
        pool=pool,
        target=MetricTarget(MetricSource.PODS, TargetType.AVERAGE_VALUE, target_percent, name="DCGM_FI_DEV_GPU_UTIL"),
        read=read_gpu_utilization,
        min_replicas=1,
        max_replicas=capacity,
    )


def hpa_queue(scenario: Scenario, *, gpu_type: str | None = None, per_replica: float, name: str) -> HpaController:
    """An HPA on the workload's waiting requests per replica (External metric, ``AverageValue``)."""
    pool, capacity = baseline_pool(scenario, gpu_type)
    return HpaController(
        name=name,
        description=(
            f"Kubernetes HPA, {per_replica:g} waiting requests per replica (External AverageValue), default "
            f"behaviour, {SYNC_PERIOD_S:g} s sync; one Deployment on {pool[1]} in {pool[0]}, 1..{capacity}"
        ),
        pool=pool,
        target=MetricTarget(MetricSource.EXTERNAL, TargetType.AVERAGE_VALUE, per_replica, name="queue"),
        read=read_workload_queue,
        min_replicas=1,
        max_replicas=capacity,
    )
