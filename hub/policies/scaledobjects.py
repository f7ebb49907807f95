"""A policy as KEDA objects, for teams who want KEDA alone: ``fleetscale keda render POLICY_FILE``.

For each workload a policy names, one ScaledObject with a Prometheus (or Thanos querier) trigger
per signal, plus what the trigger needs to authenticate with a bearer token, as OpenShift AI /
Open Data Hub deploy KEDA against Thanos: a ServiceAccount, a long-lived token Secret for it, a
Role and RoleBinding that let it read the namespace's metrics, and a TriggerAuthentication that
hands KEDA the token and the CA.

KEDA then scales one Deployment per cluster on local signals: no cross-cluster placement, no GPU
mix, no capacity model. Signals that a PromQL threshold cannot express are refused by name
(``Untranslatable``) rather than approximated. Every object is checked against KEDA's CRD schemas
(the generated models of ``cloudcoil-models-keda``), unknown fields included (``check_keda``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hub.policy.model import Metric, Policy, SignalSpec

Obj = dict[str, Any]

THANOS = "https://thanos-querier.openshift-monitoring.svc.cluster.local:9092"

QUANTILE = {"p50": "0.5", "p95": "0.95", "p99": "0.99"}


class Untranslatable(ValueError):
    """A policy feature KEDA cannot express; the message names the field."""


@dataclass(frozen=True)
class Target:
    namespace: str
    name: str

    @property
    def pods(self) -> str:
        # Pods of a Deployment are <name>-<replicaset hash>-<suffix>; a regex over the pod label is
        # the portable selector (engine metrics carry no workload label of their own).
        return f'namespace="{self.namespace}",pod=~"{self.name}-.*"'


def query(signal: SignalSpec, t: Target) -> tuple[str, str]:
    """(PromQL, KEDA metricType) for one signal. AverageValue divides by replicas, as the policy's
    per-replica targets mean; Value compares a fleet-wide ratio or latency with the target."""
    sel = t.pods
    q = QUANTILE[signal.percentile or "p95"]
    match signal.metric:
        case Metric.QUEUE_PER_REPLICA:
            return f"sum(vllm:num_requests_waiting{{{sel}}})", "AverageValue"
        case Metric.REQUEST_RATE_PER_REPLICA:
            return f"sum(rate(vllm:request_success_total{{{sel}}}[1m]))", "AverageValue"
        case Metric.TOKEN_RATE_PER_REPLICA:
            return (f"sum(rate(vllm:prompt_tokens_total{{{sel}}}[1m])) + "
                    f"sum(rate(vllm:generation_tokens_total{{{sel}}}[1m]))"), "AverageValue"
        case Metric.KV_CACHE:
            return f"100 * avg(vllm:kv_cache_usage_perc{{{sel}}})", "Value"
        case Metric.GPU_UTILIZATION:
            return f"avg(DCGM_FI_DEV_GPU_UTIL{{{sel}}})", "Value"
        case Metric.GPU_MEMORY:
            return (f"100 * avg(DCGM_FI_DEV_FB_USED{{{sel}}} / "
                    f"(DCGM_FI_DEV_FB_USED{{{sel}}} + DCGM_FI_DEV_FB_FREE{{{sel}}}))"), "Value"
        case Metric.TTFT | Metric.ITL | Metric.E2E_LATENCY:
            name = {Metric.TTFT: "vllm:time_to_first_token_seconds", Metric.ITL: "vllm:inter_token_latency_seconds",
                    Metric.E2E_LATENCY: "vllm:e2e_request_latency_seconds"}[signal.metric]
            return f"histogram_quantile({q}, sum by (le) (rate({name}_bucket{{{sel}}}[2m])))", "Value"
        case Metric.CPU | Metric.MEMORY:
            raise Untranslatable(f"signals.{signal.metric.value}: use KEDA's own cpu/memory scaler (a resource "
                                 "metric, not PromQL); Fleetscale does not render it")
    raise Untranslatable(f"signals.{signal.metric.value}: no PromQL mapping")


def _behavior(policy: Policy) -> Obj:
    out: Obj = {}
    for direction, rules in (("scaleUp", policy.behavior.scale_up), ("scaleDown", policy.behavior.scale_down)):
        spec: Obj = {}
        if rules.stabilization_window_seconds is not None:
            spec["stabilizationWindowSeconds"] = rules.stabilization_window_seconds
        if rules.select_policy is not None:
            spec["selectPolicy"] = rules.select_policy
        if rules.policies:
            spec["policies"] = [{"type": p.type, "value": p.value, "periodSeconds": p.period_seconds}
                                for p in rules.policies]
        elif rules.max_scale_change is not None:
            spec["policies"] = [{"type": "Pods", "value": rules.max_scale_change, "periodSeconds": 15}]
        if spec:
            out[direction] = spec
    return out


def _labels(policy: Policy) -> Obj:
    return {"app.kubernetes.io/managed-by": "fleetscale-keda-render", "fleetscale.dev/policy": policy.id}


def auth_objects(policy: Policy, namespace: str) -> list[Obj]:
    sa = f"{policy.id}-keda-metrics"
    meta = {"namespace": namespace, "labels": _labels(policy)}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, **meta}},
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
         "metadata": {"name": f"{sa}-token", **meta, "annotations": {"kubernetes.io/service-account.name": sa}}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": sa, **meta},
         # Thanos querier's tenancy port admits a namespace's metrics to a token that may get pods there.
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
                   {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": ["get", "list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": sa, **meta},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sa},
         "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}]},
        {"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication", "metadata": {"name": sa, **meta},
         "spec": {"secretTargetRef": [
             {"parameter": "bearerToken", "name": f"{sa}-token", "key": "token"},
             {"parameter": "ca", "name": f"{sa}-token", "key": "ca.crt"},
         ]}},
    ]


def scaled_object(policy: Policy, t: Target, prometheus: str) -> Obj:
    triggers = []
    for signal in policy.signals:
        promql, metric_type = query(signal, t)
        meta: Obj = {"serverAddress": prometheus, "query": promql, "threshold": f"{signal.target:g}",
                     "authModes": "bearer", "namespace": t.namespace, "ignoreNullValues": "false"}
        if policy.scale_to_zero.enabled and signal.metric is Metric.QUEUE_PER_REPLICA:
            meta["activationThreshold"] = f"{policy.scale_to_zero.activation_threshold:g}"
        triggers.append({"type": "prometheus", "name": signal.name.replace("_", "-"), "metricType": metric_type,
                         "metadata": meta, "authenticationRef": {"name": f"{policy.id}-keda-metrics"}})
    spec: Obj = {
        "scaleTargetRef": {"name": t.name},
        "minReplicaCount": policy.bounds.min_replicas if policy.scale_to_zero.enabled else
        max(1, policy.bounds.min_replicas),
        "maxReplicaCount": policy.bounds.max_replicas,
        "triggers": triggers,
    }
    if policy.scale_to_zero.enabled:
        spec["cooldownPeriod"] = policy.scale_to_zero.idle_seconds
    if policy.fallback is not None:
        spec["fallback"] = {"failureThreshold": policy.fallback.failure_threshold,
                            "replicas": policy.fallback.replicas}
    behavior = _behavior(policy)
    if behavior:
        spec["advanced"] = {"horizontalPodAutoscalerConfig": {"behavior": behavior}}
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": t.name, "namespace": t.namespace, "labels": _labels(policy)}, "spec": spec}


def render(policy: Policy, prometheus: str = THANOS) -> list[Obj]:
    """Every object, in apply order (identity, then the ScaledObjects that use it)."""
    if policy.targets.selector is not None and not policy.targets.workloads:
        raise Untranslatable("targets.selector: a ScaledObject names one Deployment; list targets.workloads")
    if policy.prediction.enabled:
        raise Untranslatable("prediction: KEDA has no forecast for a Prometheus trigger; disable it to render")
    targets = [Target(w.namespace, w.name) for w in policy.targets.workloads]
    out: list[Obj] = []
    for namespace in sorted({t.namespace for t in targets}):
        out += auth_objects(policy, namespace)
    out += [scaled_object(policy, t, prometheus) for t in targets]
    check_keda(out)
    return out


def _unknown(given: Any, kept: Any, path: str) -> Iterable[str]:
    if isinstance(given, dict) and isinstance(kept, dict):
        for key, value in given.items():
            if key not in kept:
                yield f"{path}.{key}"
            else:
                yield from _unknown(value, kept[key], f"{path}.{key}")
    elif isinstance(given, list) and isinstance(kept, list):
        for i, (g, k) in enumerate(zip(given, kept, strict=False)):
            yield from _unknown(g, k, f"{path}[{i}]")


def check_keda(objects: Iterable[Obj]) -> None:
    """Validate KEDA objects against KEDA's CRD models; the models ignore unknown fields, so a
    field they drop on the round trip is reported as unknown (a typo KEDA's API server would prune)."""
    from cloudcoil.models.keda import v1alpha1

    models = {"ScaledObject": v1alpha1.ScaledObject, "TriggerAuthentication": v1alpha1.TriggerAuthentication}
    for obj in objects:
        model = models.get(obj.get("kind", ""))
        if model is None:
            continue
        kept = model.model_validate(obj).model_dump(by_alias=True, exclude_none=True, mode="json")
        unknown = list(_unknown(obj, kept, obj["kind"]))
        if unknown:
            raise Untranslatable(f"fields not in KEDA's schema: {', '.join(unknown)}")
