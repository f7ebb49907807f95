"""Test helpers: the real fixture scrapes, and deterministic edits of them.

The edits build "the next scrape" of a fixture in a known way. Only sample lines are touched;
comments and every other series stay byte-identical.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


_SAMPLE = re.compile(r"^(?P<name>[^\s{#]+)(?P<labels>\{[^}]*\})?\s+(?P<value>\S+)(?P<rest>.*)$")


def edit(text: str, name: str, fn: Callable[[float, str], float]) -> str:
    """Replace the value of every sample called ``name`` with ``fn(value, labels_text)``."""
    out = []
    hits = 0
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m and m["name"] == name:
            hits += 1
            value = fn(float(m["value"]), m["labels"] or "")
            line = f"{m['name']}{m['labels'] or ''} {value!r}{m['rest']}"
        out.append(line)
    assert hits, f"{name} is not in the exposition"
    return "\n".join(out) + "\n"


def add_to_buckets(text: str, base: str, increments: dict[str, float]) -> str:
    """Add ``increments[le]`` (cumulative counts, ``le`` as printed) to ``<base>_bucket`` and the
    matching total to ``_count`` (the ``+Inf`` increment)."""

    def bump(value: float, labels: str) -> float:
        le = re.search(r'le="([^"]+)"', labels)
        assert le is not None
        return value + increments.get(le.group(1), 0.0)

    text = edit(text, f"{base}_bucket", bump)
    return edit(text, f"{base}_count", lambda v, _: v + increments["+Inf"])


def with_engine_label(text: str, engine: str, prefix: str = "vllm:") -> str:
    """The same scrape as a V1 vLLM would label it: ``engine="<n>"`` on every ``vllm:`` series."""
    out = []
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m and m["name"].startswith(prefix):
            labels = m["labels"] or "{}"
            inner = labels[1:-1]
            joined = f'{inner},engine="{engine}"' if inner else f'engine="{engine}"'
            line = f"{m['name']}{{{joined}}} {m['value']}{m['rest']}"
        out.append(line)
    return "\n".join(out) + "\n"


TTFT_BUCKET_RATES = {"0.1": 2.0, "0.5": 5.0, "+Inf": 5.0}
"""Backfilled TTFT histogram: per second, 2 observations <= 0.1 s and 3 in (0.1, 0.5]."""


def backfill_openmetrics(now: int) -> str:
    lines = []
    stamps = range(now - 120, now)
    for pod, value in (("chat-0", 3), ("chat-1", 4)):
        lines += [f'fleet_waiting{{namespace="llm",workload="chat",pod="{pod}"}} {value} {t}' for t in stamps]
    lines += [f'fleet_kv{{namespace="llm",workload="chat"}} 0.5 {t}' for t in stamps]
    lines += [f'fleet_kv{{namespace="llm",workload="other"}} 0.25 {t}' for t in stamps]
    for le, per_s in TTFT_BUCKET_RATES.items():
        lines += [
            f'fleet_ttft_seconds_bucket{{namespace="llm",workload="chat",le="{le}"}} '
            f"{per_s * (t - stamps[0])} {t}"
            for t in stamps
        ]
    return "\n".join(lines) + "\n# EOF\n"
