from __future__ import annotations

from pathlib import Path

import pytest

from hub.policies import parse_policy_file
from shared.errors import ConfigurationError

ROOT = Path(__file__).parents[2]


def test_the_example_policy_file_is_valid() -> None:
    (policy,) = parse_policy_file(ROOT / "docs" / "examples" / "policies.yaml")
    assert [w.key for w in policy.targets.workloads] == ["inference/llama-3-8b"]


def test_a_bad_policy_file_names_the_policy_and_the_field(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    head = "  targets: {workloads: [{namespace: a, name: b}]}\n"
    f.write_text(f"- id: ok\n{head}  signals: [{{metric: queue_per_replica, target: 5}}]\n"
                 f"- id: bad\n{head}  signals: [{{metric: qps, target: 5}}]\n")
    with pytest.raises(ConfigurationError, match=r"policy #1: signals.0.metric"):
        parse_policy_file(f)
    f.write_text(f"- id: x\n{head}  signals: [{{metric: ttft, target: 1}}]\n"
                 "  bounds: {min_replicas: 5, max_replicas: 2}\n")
    with pytest.raises(ConfigurationError, match="max_replicas must be >= min_replicas"):
        parse_policy_file(f)
    f.write_text(f"- id: x\n{head}  signals: [{{metric: ttft, target: 1}}]\n  extra: 1\n")
    with pytest.raises(ConfigurationError, match="extra"):
        parse_policy_file(f)
