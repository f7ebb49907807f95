from __future__ import annotations

import asyncio
import time

import pytest

from shared.lifecycle import TaskEnded, run, run_until_stopped


async def forever(started: list[str], name: str) -> None:
    started.append(name)
    await asyncio.Event().wait()


async def stuck_in_cleanup(cleaning: asyncio.Event, release: asyncio.Event) -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        cleaning.set()
        await asyncio.shield(release.wait())  # a cleanup that does not end in time
        raise


async def let_abandoned_task_end(name: str, release: asyncio.Event) -> None:
    """An abandoned task is the process's to drop (``shared.lifecycle.run``); a test lets it end instead."""
    (abandoned,) = [t for t in asyncio.all_tasks() if t.get_name() == name]
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await abandoned


async def test_stop_event_cancels_every_root_task() -> None:
    stop = asyncio.Event()
    started: list[str] = []
    runner = asyncio.create_task(run_until_stopped({"a": forever(started, "a"), "b": forever(started, "b")},
                                                   stop=stop, shutdown_timeout_s=1))
    while len(started) < 2:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(runner, 2)


async def test_one_task_failing_stops_the_others_and_raises() -> None:
    async def boom() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("intake died")

    with pytest.raises(ExceptionGroup) as e:
        await run_until_stopped({"ok": forever([], "ok"), "boom": boom()}, stop=asyncio.Event())
    assert e.group_contains(RuntimeError, match="intake died")


async def test_a_task_returning_unexpectedly_is_an_error_but_not_while_stopping() -> None:
    async def quits() -> None:
        return None

    with pytest.raises(ExceptionGroup) as e:
        await run_until_stopped({"quits": quits()}, stop=asyncio.Event())
    assert e.group_contains(TaskEnded)

    stop = asyncio.Event()

    async def quits_on_stop() -> None:
        await stop.wait()

    async def stopper() -> None:
        stop.set()
        await asyncio.Event().wait()

    await asyncio.wait_for(run_until_stopped({"q": quits_on_stop(), "s": stopper()}, stop=stop), 2)


async def test_shutdown_is_bounded_when_a_task_ignores_cancellation() -> None:
    cleaning, release = asyncio.Event(), asyncio.Event()
    stop = asyncio.Event()
    stop.set()
    started = asyncio.get_running_loop().time()
    await run_until_stopped({"stubborn": stuck_in_cleanup(cleaning, release)}, stop=stop, shutdown_timeout_s=0.2)
    assert cleaning.is_set() and asyncio.get_running_loop().time() - started < 0.9
    await let_abandoned_task_end("stubborn", release)


async def test_a_failure_stops_within_the_bound_even_when_another_task_is_stuck_in_cleanup() -> None:
    async def boom() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("api died")

    cleaning, release = asyncio.Event(), asyncio.Event()
    stuck = stuck_in_cleanup(cleaning, release)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ExceptionGroup, match="root tasks failed: boom") as e:
        await run_until_stopped({"stuck": stuck, "boom": boom()}, stop=asyncio.Event(), shutdown_timeout_s=0.3)
    assert cleaning.is_set() and 0.3 <= loop.time() - started < 2
    assert e.group_contains(RuntimeError, match="api died")
    await let_abandoned_task_end("stuck", release)


def test_run_returns_in_bounded_time_past_a_task_that_ignores_cancellation() -> None:
    async def main() -> str:
        stubborn = asyncio.create_task(stuck_in_cleanup(asyncio.Event(), asyncio.Event()), name="stubborn")
        await asyncio.sleep(0)
        assert not stubborn.done()
        return "done"

    started = time.monotonic()
    assert run(main(), leftover_timeout_s=0.2) == "done"
    assert time.monotonic() - started < 2
