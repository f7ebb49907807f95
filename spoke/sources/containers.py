"""Containers' spec and usage: Kubernetes quantities, requests and limits from a pod, and spec filled
into the merged samples.

Sources measure usage (the metrics API: CPU and memory; dcgm-exporter: GPU memory); the pod's spec
says what each container requests and may use. The spec is not a measurement, so it is not a
source: the sampler adds it to whatever the sources measured (``with_specs``), and a container no
source measured still appears with its spec and null usage (``missing_reasons["containers"]`` says
why).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.messages import MAX_BYTES, MAX_CONTAINER_SAMPLES, MAX_CORES, ContainerUsage, Samples

_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$")
_SUFFIX = {
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
}


def parse_quantity(value: Any) -> float:
    """A Kubernetes quantity (``"250m"``, ``"1234567n"``, ``"2Gi"``, ``"1e3"``, ``4``) as a float.

    Raises ``ValueError`` for anything else; negative quantities are refused too (no resource is)."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        m = _QUANTITY.match(str(value).strip())
        if m is None:
            raise ValueError(f"not a quantity: {value!r}")
        number = float(m.group(1))
        if m.group(2):
            exponent = int(m.group(2)[1:])
            if abs(exponent) > 300:  # beyond a float: no real quantity is
                raise ValueError(f"not a quantity: {value!r}")
            number *= 10.0**exponent
        elif m.group(3):
            number *= _SUFFIX[m.group(3)]
    if not 0.0 <= number < float("inf"):
        raise ValueError(f"not a non-negative finite quantity: {value!r}")
    return number


def cores(value: Any) -> float | None:
    """A CPU quantity in cores, or None when malformed or beyond the wire's bound."""
    try:
        number = parse_quantity(value)
    except ValueError:
        return None
    return number if number <= MAX_CORES else None


def byte_count(value: Any) -> float | None:
    """A memory quantity in bytes, or None when malformed or beyond the wire's bound."""
    try:
        number = parse_quantity(value)
    except ValueError:
        return None
    return number if number <= MAX_BYTES else None


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """One container's requests and limits as its pod's spec states them (None: not set)."""

    name: str
    cpu_request_cores: float | None = None
    cpu_limit_cores: float | None = None
    memory_request_bytes: float | None = None
    memory_limit_bytes: float | None = None

    @classmethod
    def from_raw(cls, container: Mapping[str, Any]) -> ContainerSpec:
        """From a camelCase pod spec container (``{"name", "resources": {"requests", "limits"}}``)."""
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        return cls(
            name=str(container.get("name", "")),
            cpu_request_cores=cores(requests["cpu"]) if "cpu" in requests else None,
            cpu_limit_cores=cores(limits["cpu"]) if "cpu" in limits else None,
            memory_request_bytes=byte_count(requests["memory"]) if "memory" in requests else None,
            memory_limit_bytes=byte_count(limits["memory"]) if "memory" in limits else None,
        )

    def spec_fields(self) -> dict[str, float]:
        fields = {"cpu_request_cores": self.cpu_request_cores, "cpu_limit_cores": self.cpu_limit_cores,
                  "memory_request_bytes": self.memory_request_bytes, "memory_limit_bytes": self.memory_limit_bytes}
        return {k: v for k, v in fields.items() if v is not None}


def specs_of_pod(pod_spec: Mapping[str, Any]) -> tuple[ContainerSpec, ...]:
    """The regular containers of a pod spec (init containers run to completion and are not sized here)."""
    return tuple(ContainerSpec.from_raw(c) for c in pod_spec.get("containers") or () if c.get("name"))


@dataclass(frozen=True, slots=True)
class PodContainers:
    """What the sampler knows of one pod's containers before any source reads."""

    pod: str
    gpu_type: str | None
    containers: tuple[ContainerSpec, ...]


def with_specs(samples: Samples, pods: Iterable[PodContainers]) -> Samples:
    """``samples`` with every container of ``pods`` listed, its spec and GPU type filled in.

    Usage stays as the sources measured it; a container they did not measure is listed with null
    usage. Containers the sources reported for pods not in ``pods`` (gone since) are kept as read.
    """
    measured = {c.key: c for c in samples.containers}
    out: dict[tuple[str, str], ContainerUsage] = {}
    for pod in pods:
        for spec in pod.containers:
            key = (pod.pod, spec.name)
            base = measured.pop(key, None)
            fields: dict[str, Any] = (base.model_dump(exclude_none=True) if base is not None
                                      else {"pod": pod.pod, "container": spec.name})
            fields.update(spec.spec_fields())
            if pod.gpu_type:
                fields["gpu_type"] = pod.gpu_type
            out[key] = ContainerUsage(**fields)
    out.update(measured)
    if not out:
        return samples
    containers: Sequence[ContainerUsage] = list(out.values())[:MAX_CONTAINER_SAMPLES]
    return samples.model_copy(update={"containers": tuple(containers)})
