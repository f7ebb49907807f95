"""Reading every telemetry source at once, and never letting one source's trouble stop the others.

Sources run concurrently, each under its own timeout. A source that times out, is unavailable or
raises anything marks *its* fields missing for every workload, with a reason prefixed by its name
(``"dcgm: timed out after 2.0s"``), and the merged samples still carry what the other sources
measured. ``read_all`` itself never raises for a source failure; it returns ``SourceStats`` so the
caller can count failures (``SpokeMetrics.count_source_failures``) and log warnings.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from shared.errors import PermanentError
from shared.messages import Samples
from spoke.sources.base import (
    DEFAULT_PRECEDENCE,
    NodeGpu,
    SourceReading,
    SourceTarget,
    SourceUnavailable,
    TelemetrySource,
    merge_readings,
    missing_everywhere,
)

logger = logging.getLogger("fleetscale.spoke.sources")


@dataclass(frozen=True, slots=True)
class SourceOutcome:
    source: str
    duration_s: float
    failure: str | None = None
    """``timeout``, ``unavailable``, ``misconfigured`` or ``error``; None when the read succeeded."""
    message: str | None = None
    warnings: tuple[str, ...] = ()
    rejected_samples: int = 0


@dataclass(slots=True)
class SourceStats:
    outcomes: list[SourceOutcome] = field(default_factory=list)
    gpus: dict[str, tuple[NodeGpu, ...]] = field(default_factory=dict)
    """Every GPU each source saw, attributed or not (node inventory, idle GPUs)."""

    def failure_kinds(self) -> Iterator[tuple[str, str]]:
        return ((o.source, o.failure) for o in self.outcomes if o.failure is not None)

    def rejected(self) -> Iterator[tuple[str, int]]:
        """``(source, sample lines dropped)`` for sources that dropped any."""
        return ((o.source, o.rejected_samples) for o in self.outcomes if o.rejected_samples)


async def _read_one(
    source: TelemetrySource, targets: Sequence[SourceTarget], timeout_s: float
) -> tuple[SourceReading, SourceOutcome]:
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            reading = await source.read(targets)
    except TimeoutError:
        kind, message = "timeout", f"{source.name}: timed out after {timeout_s}s"
    except SourceUnavailable as e:
        kind, message = "unavailable", f"{source.name}: unavailable: {e}"
    except PermanentError as e:
        kind, message = "misconfigured", f"{source.name}: misconfigured: {e}"
    except Exception as e:
        logger.exception("telemetry source %s failed", source.name)
        kind, message = "error", f"{source.name}: {type(e).__name__}: {e}"
    else:
        return reading, SourceOutcome(
            source.name, time.monotonic() - started, warnings=reading.warnings,
            rejected_samples=reading.rejected_samples,
        )
    if kind != "error":  # errors were logged with their traceback above
        logger.warning("%s", message)
    reading = SourceReading(source.name, missing_everywhere(source.capabilities, targets, message))
    return reading, SourceOutcome(source.name, time.monotonic() - started, kind, message)


async def read_all(
    sources: Sequence[TelemetrySource],
    targets: Sequence[SourceTarget],
    *,
    timeout_s: float,
    precedence: Sequence[str] = DEFAULT_PRECEDENCE,
) -> tuple[dict[str, Samples], SourceStats]:
    """Read every source concurrently and merge per workload key (every target gets an entry)."""
    results = await asyncio.gather(*(_read_one(s, targets, timeout_s) for s in sources))
    readings = [r for r, _ in results]
    stats = SourceStats(outcomes=[o for _, o in results], gpus={r.source: r.gpus for r in readings})
    return merge_readings(readings, [t.key for t in targets], precedence=precedence), stats
