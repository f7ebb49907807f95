"""Process lifecycle: guarded root tasks in one TaskGroup, stopped together, with bounded shutdown.

Each process (hub, spoke, demo) has one composition root that builds its parts and hands their
eternal coroutines to ``run_until_stopped``. If any root task ends, for whatever reason, the whole
group stops: a hub whose intake died must not keep deciding on stale state. Signals only set the
stop event; nothing below the root calls ``sys.exit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine, Mapping
from typing import Any

logger = logging.getLogger(__name__)


class TaskEnded(Exception):
    """A root task returned although it should run until cancelled."""


async def guard(name: str, coro: Coroutine[Any, Any, Any], *, stopping: asyncio.Event | None = None) -> None:
    """Run an eternal task; log how it ended. Cancellation passes through untouched.

    A task that returns once ``stopping`` is set (it watched the same stop event) ended on purpose.
    """
    try:
        await coro
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("task %r has failed; stopping the process", name)
        raise
    if stopping is not None and stopping.is_set():
        return
    logger.error("task %r has finished unexpectedly; stopping the process", name)
    raise TaskEnded(name)


async def run_until_stopped(
    tasks: Mapping[str, Coroutine[Any, Any, Any]],
    *,
    stop: asyncio.Event,
    shutdown_timeout_s: float = 10.0,
) -> None:
    """Run named root tasks until ``stop`` is set or one of them ends; then cancel the rest.

    Shutdown is bounded by ``shutdown_timeout_s``: tasks still running after it are abandoned
    (and logged) rather than holding the process. A task failure is re-raised (as the TaskGroup's
    ``ExceptionGroup``) so the process exits non-zero.
    """

    async def group() -> None:
        async with asyncio.TaskGroup() as tg:
            for name, coro in tasks.items():
                tg.create_task(guard(name, coro, stopping=stop), name=name)

    runner = asyncio.create_task(group(), name="root-tasks")
    waiter = asyncio.create_task(stop.wait(), name="stop-watcher")
    try:
        await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not runner.done():
            runner.cancel()
            await asyncio.wait({runner}, timeout=shutdown_timeout_s)
    if not runner.done():
        logger.error("shutdown took longer than %.1fs; tasks were abandoned", shutdown_timeout_s)
        return
    if runner.cancelled() or runner.exception() is None:
        return
    raise runner.exception()  # type: ignore[misc]


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGINT/SIGTERM set the stop event (a second one is left to the default handler)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, _on_signal, stop, sig, loop)


def _on_signal(stop: asyncio.Event, sig: signal.Signals, loop: asyncio.AbstractEventLoop) -> None:
    logger.info("received %s; shutting down", sig.name)
    stop.set()
    loop.remove_signal_handler(sig)


def run(main: Coroutine[Any, Any, Any]) -> Any:
    """Run the process's main coroutine, on uvloop where it is installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(main)
    return uvloop.run(main)
