"""Which policy Fleetscale is backtested with: a policy file, or the embedded default.

The default follows docs/examples/policies.yaml: p95 TTFT tracked at half the SLO (the other half
is headroom for replicas that are still cold-starting), plus the queue per replica, bounded by
the fleet's capacity. Everything else is the policy model's own defaults (HPA behaviour, panic
mode on, prediction off).
"""

from __future__ import annotations

from pathlib import Path

from hub.backtest.scenario import Scenario
from hub.policies.store import parse_policy_file
from hub.policy.model import Policy
from shared.errors import ConfigurationError

DEFAULT_POLICY_ID = "fleetscale-default"


def default_policy(scenario: Scenario, policy_id: str = DEFAULT_POLICY_ID) -> Policy:
    return Policy.model_validate({
        "id": policy_id,
        "description": "embedded default of fleetscale simulate",
        "targets": {"workloads": [{"namespace": scenario.namespace, "name": scenario.name}]},
        "bounds": {"min_replicas": 1, "max_replicas": max(1, sum(scenario.pools().values()))},
        "signals": [
            {"metric": "ttft", "percentile": "p95", "target": scenario.slo_ttft_s / 2},
            {"metric": "queue_per_replica", "target": 4},
        ],
    })


def load_policies(path: Path) -> list[Policy]:
    """Policies of a file (``HUB_POLICY_FILE`` format); raises ``ConfigurationError`` naming the problem."""
    policies = parse_policy_file(path)
    if not policies:
        raise ConfigurationError(f"{path}: no policy in the file")
    return policies


def workload_of(policy: Policy) -> tuple[str, str, dict[str, str]]:
    """(namespace, name, labels) of the workload to simulate so that ``policy`` selects it."""
    targets = policy.targets
    if targets.workloads:
        w = targets.workloads[0]
        return w.namespace, w.name, {}
    assert targets.selector is not None  # the model requires workloads or a selector
    return targets.selector.namespace or "default", "workload", dict(targets.selector.match_labels)


def with_prediction(policy: Policy, enabled: bool) -> Policy:
    return policy.model_copy(update={"prediction": policy.prediction.model_copy(update={"enabled": enabled})})



def with_headroom(policy: Policy, headroom_percent: float) -> Policy:
    """The policy with every latency signal sized ``headroom_percent`` above the load (its one cost knob)."""
    signals = [
        s.model_copy(update={"headroom_percent": headroom_percent}) if s.metric.is_latency else s
        for s in policy.signals
    ]
    return policy.model_copy(update={"signals": signals})


def with_request_classes(policy: Policy, on: bool) -> Policy:
    """The policy with request classes (and routing rules) switched ``on`` or off."""
    return policy.model_copy(update={"placement": policy.placement.model_copy(update={"request_classes": on})})
