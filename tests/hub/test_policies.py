from __future__ import annotations

from pathlib import Path

import pytest

from hub.policies import parse_policy_file
from shared.errors import ConfigurationError

ROOT = Path(__file__).parents[2]


def test_the_example_policy_file_is_valid() -> None:
    (policy,) = parse_policy_file(ROOT / "docs" / "examples" / "policies.yaml")
    assert policy.workload.key == "inference/llama-3-8b"


def test_a_bad_policy_file_names_the_policy_and_the_field(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("- id: ok\n  workload: {namespace: a, name: b}\n  target: {signal: queue_per_replica, value: 5}\n"
                 "- id: bad\n  workload: {namespace: a, name: b}\n  target: {signal: qps, value: 5}\n")
    with pytest.raises(ConfigurationError, match=r"policy #1: target.signal"):
        parse_policy_file(f)
    f.write_text("- id: x\n  workload: {namespace: a, name: b}\n  target: {signal: ttft_p95, value: 1}\n"
                 "  min_replicas: 5\n  max_replicas: 2\n")
    with pytest.raises(ConfigurationError, match="max_replicas must be >= min_replicas"):
        parse_policy_file(f)
    f.write_text("- id: x\n  workload: {namespace: a, name: b}\n  target: {signal: ttft_p95, value: 1}\n  extra: 1\n")
    with pytest.raises(ConfigurationError, match="extra"):
        parse_policy_file(f)
