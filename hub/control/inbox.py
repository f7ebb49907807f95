"""The inbox: the bounded queue between the telemetry subscription and its validation.

Reading a message off the socket is cheap; validating it is not (about 20-50 µs for a small report),
so a flood of hostile messages outruns the intake. Without a bound they pile up in memory (the hub
once grew from 118 to 487 MB under one); with a single bound the flood crowds out the clusters that
matter. So there are two lanes:

* **admitted** clusters' subjects: one slot per subject holding only the newest message (a report
  supersedes the one before it, so the older is dropped, counted as ``superseded``). Its size is
  bounded by the number of admitted clusters, and no flood on other subjects can push it out.
* **everything else** (new clusters, forgeries): a FIFO bounded in messages and bytes; when full,
  the oldest is dropped and counted as ``queue_full``.

The reader takes from the two lanes in turn, so a new cluster is still admitted during a flood on
an admitted subject, and the admitted clusters are still heard during a flood of new ones.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from shared import subjects


class Inbox:
    def __init__(
        self,
        *,
        admitted: Callable[[str], bool],
        capacity: int,
        capacity_bytes: int,
        on_drop: Callable[[str], None],
    ) -> None:
        self._admitted = admitted
        self.capacity = capacity
        self.capacity_bytes = capacity_bytes
        self._on_drop = on_drop
        self._latest: dict[str, bytes] = {}
        self._others: deque[tuple[str, bytes]] = deque()
        self._others_bytes = 0
        self._turn = False
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._latest) + len(self._others)

    def put(self, subject: str, data: bytes) -> None:
        """Queue a raw message; never blocks, never grows past the bounds."""
        if self._admitted(subjects.cluster_of(subject)):
            if self._latest.pop(subject, None) is not None:
                self._on_drop("superseded")
            self._latest[subject] = data  # re-inserted last: slots are served oldest first
        else:
            self._others.append((subject, data))
            self._others_bytes += len(data)
            while len(self._others) > self.capacity or self._others_bytes > self.capacity_bytes:
                _, dropped = self._others.popleft()
                self._others_bytes -= len(dropped)
                self._on_drop("queue_full")
        self._ready.set()

    def take(self) -> tuple[str, bytes] | None:
        """The next message, alternating between the lanes; None when both are empty."""
        self._turn = not self._turn
        for lane in ((self._take_latest, self._take_other) if self._turn else (self._take_other, self._take_latest)):
            item = lane()
            if item is not None:
                return item
        self._ready.clear()
        return None

    async def get(self) -> tuple[str, bytes]:
        while True:
            item = self.take()
            if item is not None:
                return item
            await self._ready.wait()

    def _take_latest(self) -> tuple[str, bytes] | None:
        if not self._latest:
            return None
        subject = next(iter(self._latest))
        return subject, self._latest.pop(subject)

    def _take_other(self) -> tuple[str, bytes] | None:
        if not self._others:
            return None
        subject, data = self._others.popleft()
        self._others_bytes -= len(data)
        return subject, data
