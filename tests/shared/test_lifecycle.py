from __future__ import annotations

import asyncio

import pytest

from shared.lifecycle import TaskEnded, run_until_stopped


async def forever(started: list[str], name: str) -> None:
    started.append(name)
    await asyncio.Event().wait()


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
    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(1.0)  # slow cleanup, well past the shutdown bound

    stop = asyncio.Event()
    stop.set()
    started = asyncio.get_running_loop().time()
    await run_until_stopped({"stubborn": stubborn()}, stop=stop, shutdown_timeout_s=0.2)
    assert asyncio.get_running_loop().time() - started < 0.9
