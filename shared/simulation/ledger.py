"""What happened to requests: the per-(cluster, workload) event log and the finished-request records.

Replicas write here as their requests get a first token or finish; ``sampling`` reads the recent
part back to build telemetry windows, and the benchmark reads ``CompletedRequest`` records for
SLO attainment. Replicas advance one after another to a common time, so events reach a ledger
slightly out of time order; the lists are kept sorted by insertion (``insort``), which is cheap
because out-of-order events are always near the end.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass
from operator import itemgetter

_FIRST = itemgetter(0)


@dataclass(frozen=True, slots=True)
class CompletedRequest:
    """One finished request, for accounting and SLO attainment."""

    workload: str
    """``namespace/name``."""
    cluster_id: str
    gpu_type: str
    arrival_s: float
    ttft_s: float
    e2e_s: float
    itl_s: float | None
    """Mean time between output tokens; None for one-token outputs."""
    input_tokens: int
    output_tokens: int


class Ledger:
    """Event log of one workload in one cluster (times are simulation seconds)."""

    __slots__ = ("cluster_id", "completions", "dispatched", "first_tokens", "sink", "workload")

    def __init__(self, cluster_id: str, workload: str, sink: list[CompletedRequest]) -> None:
        self.cluster_id = cluster_id
        self.workload = workload
        self.sink = sink
        self.dispatched: list[float] = []
        """Times requests entered this cluster (routed here, or queued at its gateway)."""
        self.first_tokens: list[tuple[float, float]] = []
        """(time, ttft_s)."""
        self.completions: list[tuple[float, float, float | None]] = []
        """(time, e2e_s, itl_s)."""

    def first_token(self, t: float, ttft_s: float) -> None:
        insort(self.first_tokens, (t, ttft_s), key=_FIRST)

    def complete(
        self, t: float, *, gpu_type: str, arrival_s: float, first_token_s: float, input_tokens: int,
        output_tokens: int,
    ) -> None:
        itl = (t - first_token_s) / (output_tokens - 1) if output_tokens > 1 else None
        insort(self.completions, (t, t - arrival_s, itl), key=_FIRST)
        self.sink.append(
            CompletedRequest(
                workload=self.workload,
                cluster_id=self.cluster_id,
                gpu_type=gpu_type,
                arrival_s=arrival_s,
                ttft_s=first_token_s - arrival_s,
                e2e_s=t - arrival_s,
                itl_s=itl,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
            )
        )

    def trim(self, before_s: float) -> None:
        """Forget window events older than ``before_s`` (completed records are kept)."""
        del self.dispatched[: bisect_left(self.dispatched, before_s)]
        del self.first_tokens[: bisect_left(self.first_tokens, before_s, key=_FIRST)]
        del self.completions[: bisect_left(self.completions, before_s, key=_FIRST)]
