"""Process lifecycle: guarded root tasks in one TaskGroup, stopped together, with bounded shutdown.

Each process (hub, spoke, demo) has one composition root that builds its parts and hands their
eternal coroutines to ``run_until_stopped``. If any root task ends, for whatever reason, the whole
group stops, within the shutdown bound: a hub whose intake died must not keep deciding on stale
state. Signals only set the stop event; nothing below the root calls ``sys.exit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Coroutine, Mapping
from typing import Any

from .errors import ConfigurationError

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

    Shutdown is bounded by ``shutdown_timeout_s``, from the first task's end or from ``stop``:
    tasks still running after it are abandoned (and logged) rather than holding the process. Task
    failures are re-raised as one ``ExceptionGroup``, also when some task was abandoned, so the
    process exits non-zero.

    NB: not a ``TaskGroup``: a group waits for *every* child to finish cancelling before it reports
    the failure, so one task that is slow to cancel would keep a process with a dead root task running
    (and a later SIGTERM would then end it as if nothing had failed).
    """
    running = [asyncio.create_task(guard(name, coro, stopping=stop), name=name) for name, coro in tasks.items()]
    waiter = asyncio.create_task(stop.wait(), name="stop-watcher")
    try:
        await asyncio.wait([*running, waiter], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        for task in running:
            task.cancel()
        _, left = await asyncio.wait(running, timeout=shutdown_timeout_s) if running else (set(), set())
        if left:
            logger.error("shutdown took longer than %.1fs; abandoned: %s", shutdown_timeout_s,
                         ", ".join(sorted(t.get_name() for t in left)))
    failed = {t.get_name(): e for t in running if t.done() and not t.cancelled() and (e := t.exception()) is not None}
    if failed:
        raise BaseExceptionGroup("root tasks failed: " + ", ".join(failed), list(failed.values()))


def failure_status(program: str, failed: BaseExceptionGroup[BaseException]) -> int:
    """Say on stderr why root tasks stopped the process, and the exit status for it.

    2 when a configuration error stopped it (fix the settings; restarting will not help), 1 otherwise.
    The tracebacks are in the log already (``guard``).
    """
    config = failed.subgroup(ConfigurationError)
    for e in config.exceptions if config is not None else failed.exceptions:
        print(f"{program}: {e}" if config is not None else f"{program}: {failed.message}: {e!r}", file=sys.stderr)
    return 2 if config is not None else 1


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


def run(main: Coroutine[Any, Any, Any], *, leftover_timeout_s: float = 1.0) -> Any:
    """Run the process's main coroutine, on uvloop where it is installed, and close the loop in bounded time.

    Tasks still running when ``main`` ends (abandoned at the shutdown bound) are cancelled once more
    and given ``leftover_timeout_s``; then the loop closes without them. ``asyncio.run`` would wait
    for them without limit, so one task that ignores cancellation would hold the process forever.
    """
    loop = _new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_leftovers(loop, leftover_timeout_s)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _cancel_leftovers(loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
    leftovers = asyncio.all_tasks(loop)
    if not leftovers:
        return
    for task in leftovers:
        task.cancel()
    _, left = loop.run_until_complete(asyncio.wait(leftovers, timeout=timeout_s))
    if left:
        logger.error("exiting without %d tasks that ignore cancellation: %s", len(left),
                     ", ".join(sorted(t.get_name() for t in left)))
