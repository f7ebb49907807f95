"""``python -m tests.e2e.faulty_hub``: the real ``fleetscale hub`` process with two faults injected.

The web API task fails ``FAULTY_API_FAILS_AFTER_S`` after it is serving, and the live feed ignores
cancellation for a minute (a part stuck in its cleanup). Everything else is the real hub: settings
from ``HUB_*``, the real ``__main__`` with its signal handlers, loop and exit status. The test
checks that the process stops by itself, non-zero, within its shutdown bound.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import hub.service
from hub.__main__ import main
from hub.web.feed import Feed

serve = hub.service.serve


async def failing_serve(*args: Any, **kwargs: Any) -> None:
    api = asyncio.create_task(serve(*args, **kwargs))
    try:
        await asyncio.sleep(float(os.environ["FAULTY_API_FAILS_AFTER_S"]))
    finally:
        api.cancel()
    raise RuntimeError("injected: the API task failed")


async def stubborn_feed(self: Feed) -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        print("faulty hub: the live feed ignores cancellation", file=sys.stderr, flush=True)
        await asyncio.shield(asyncio.sleep(60))


hub.service.serve = failing_serve  # type: ignore[assignment]  # fault injection
Feed.run = stubborn_feed  # type: ignore[method-assign]  # fault injection

if __name__ == "__main__":
    sys.exit(main())
