"""Pure pieces: GPU arithmetic, product normalisation, pinning, label selectors, deletion costs."""

from __future__ import annotations

import pytest

from shared.errors import ConfigurationError
from spoke.backends.kubernetes import DEFAULT_GPU_TYPES, KubernetesSettings, PodInfo
from spoke.backends.kubernetes.deletion_cost import costs
from spoke.backends.kubernetes.gpus import GpuTypes, pin, pinned_products, pinned_type, pod_gpus
from spoke.backends.kubernetes.selectors import annotation_matches, matches, render
from spoke.backends.kubernetes.variants import variant_name

TYPES = GpuTypes(DEFAULT_GPU_TYPES)


@pytest.mark.parametrize(
    ("product", "gpu_type"),
    [
        ("NVIDIA-H100-80GB-HBM3", "H100"),
        ("NVIDIA-H100-PCIe", "H100"),
        ("NVIDIA-A100-SXM4-80GB", "A100"),
        ("NVIDIA-A10G", "A10G"),
        ("NVIDIA-L40S", "L40S"),
        ("NVIDIA-L4", "L4"),
        ("nvidia-h200-141gb", "H200"),
        ("Tesla-Mystery-9000", "Tesla-Mystery-9000"),
    ],
)
def test_products_normalise_to_short_types_longest_match_first(product: str, gpu_type: str) -> None:
    assert TYPES.of(product) == gpu_type


def test_custom_product_map_overrides_the_default() -> None:
    assert GpuTypes({"GH200": "GH200", "H100": "H100"}).of("NVIDIA-GH200-480GB") == "GH200"


def test_pod_gpus_sum_containers_and_respect_init_containers() -> None:
    spec = {
        "containers": [
            {"resources": {"limits": {"nvidia.com/gpu": "2"}}},
            {"resources": {"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 1}}},
            {"resources": {"limits": {"cpu": "1"}}},
            {},
        ],
    }
    assert pod_gpus(spec) == 3
    assert pod_gpus(spec | {"initContainers": [{"resources": {"limits": {"nvidia.com/gpu": "4"}}}]}) == 4
    assert pod_gpus({"containers": [{"resources": {"limits": {"nvidia.com/gpu": "lots"}}}]}) == 0


def test_pinned_type_from_node_selector_or_affinity_and_ambiguity() -> None:
    def affinity(*values: str) -> dict:
        return {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "nvidia.com/gpu.product",
                                        "operator": "In",
                                        "values": list(values),
                                    }
                                ]
                            }
                        ]
                    }
                }
            }
        }

    assert pinned_type({"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4"}}, TYPES) == "L4"
    assert pinned_type(affinity("NVIDIA-H100-PCIe", "NVIDIA-H100-80GB-HBM3"), TYPES) == "H100"
    assert pinned_type(affinity("NVIDIA-H100-PCIe", "NVIDIA-A100-SXM4-80GB"), TYPES) is None
    assert pinned_type({}, TYPES) is None


def test_pin_replaces_product_constraints_and_keeps_the_others() -> None:
    spec = {
        "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-PCIe", "zone": "a"},
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "pool", "operator": "In", "values": ["gpu"]},
                                {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["x"]},
                            ]
                        },
                        {"matchExpressions": [{"key": "spot", "operator": "DoesNotExist"}]},
                    ]
                }
            }
        },
    }

    pinned = pin(spec, ["NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-PCIE-40GB"])

    assert pinned["nodeSelector"] == {"zone": "a"}
    assert pinned_products(pinned) == ("NVIDIA-A100-PCIE-40GB", "NVIDIA-A100-SXM4-80GB")
    terms = pinned["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert [[e["key"] for e in t["matchExpressions"]] for t in terms] == [
        ["pool", "nvidia.com/gpu.product"],
        ["spot", "nvidia.com/gpu.product"],
    ]
    assert spec["nodeSelector"]["nvidia.com/gpu.product"] == "NVIDIA-H100-PCIe"  # the input is untouched


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("a=1", {"a": "1"}, True),
        ("a==1", {"a": "2"}, False),
        ("a!=1", {}, True),
        ("a", {"a": ""}, True),
        ("!a", {"a": "x"}, False),
        ("a in (1, 2),b", {"a": "2", "b": "y"}, True),
        ("a notin (1,2)", {"a": "1"}, False),
        ("a notin (1,2)", {}, True),
        ("app=llama,!fleetscale.dev/variant-of", {"app": "llama", "fleetscale.dev/variant-of": "x"}, False),
        ("", {"anything": "goes"}, True),
    ],
)
def test_label_selector_matching(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert matches(selector, labels) is expected


def test_label_selector_rendering_round_trips() -> None:
    selector = {
        "matchLabels": {"app": "llama", "tier": "serve"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "canary"]},
            {"key": "spot", "operator": "DoesNotExist"},
        ],
    }
    rendered = render(selector)

    assert rendered == "app=llama,tier=serve,env in (prod,canary),!spot"
    assert matches(rendered, {"app": "llama", "tier": "serve", "env": "canary"})
    assert not matches(rendered, {"app": "llama", "tier": "serve", "env": "dev"})


def test_annotation_matching() -> None:
    assert annotation_matches("a=b", {"a": "b"})
    assert not annotation_matches("a=b", {"a": "c"})
    assert annotation_matches("a", {"a": ""})
    assert not annotation_matches(None, {"a": "b"})


def _pod(name: str) -> PodInfo:
    return PodInfo(
        name=name,
        namespace="llm",
        workload="llama",
        gpu_type="H100",
        ip=None,
        node=None,
        container_ids=(),
        ready=True,
        phase="Running",
    )


def test_deletion_costs_follow_load_and_unknown_gets_the_median() -> None:
    pods = [_pod(n) for n in ("a", "b", "c", "d")]

    assert costs(pods, {"a": 0.0, "b": 1.234, "c": 10.0}) == {"a": 0, "b": 123, "c": 1000, "d": 123}
    assert costs(pods, {}) == {"a": 0, "b": 0, "c": 0, "d": 0}
    assert costs(pods[:1], {"a": 1e12})["a"] == 2**31 - 1


def test_variant_names_are_dns_safe() -> None:
    assert variant_name("llama", "L40S") == "llama-l40s"
    assert variant_name("llama", "Tesla Mystery_9000") == "llama-tesla-mystery-9000"


def test_settings_are_validated() -> None:
    with pytest.raises(ConfigurationError):
        KubernetesSettings(conflict_retries=0)
    with pytest.raises(ConfigurationError):
        KubernetesSettings(unpinned_gpu_type="")
