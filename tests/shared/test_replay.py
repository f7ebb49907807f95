"""Reading a stream's last messages back, across the gaps that replaced revisions leave."""

from __future__ import annotations

import pytest

from shared import subjects
from shared.bus import Bus, BusOptions, DecisionRetention
from shared.replay import tail

pytestmark = pytest.mark.nats


async def test_tail_returns_the_last_messages_even_when_revisions_left_gaps(nats_server) -> None:
    async with Bus.connect(BusOptions(url=nats_server.url)) as bus:
        await bus.ensure_topology(decisions=DecisionRetention())
        assert await tail(bus.js, subjects.DECISIONS_STREAM, subjects.DECISIONS_ALL, last=5) == []
        for i in range(10):
            await bus.publish_durable(subjects.decision(f"d{i}"), f"d{i}/0".encode(), msg_id=f"d{i}/0")
        # d0..d2 get four more revisions each, in turns: the 10 decisions now span 22 sequence
        # numbers, and the last 10 of those hold only 3 messages (the newest revisions of d0..d2).
        for rev in range(1, 5):
            for i in range(3):
                await bus.publish_durable(subjects.decision(f"d{i}"), f"d{i}/{rev}".encode(), msg_id=f"d{i}/{rev}")
        state = (await bus.js.stream_info(subjects.DECISIONS_STREAM)).state
        assert (state.messages, state.last_seq) == (10, 22)
        got = await tail(bus.js, subjects.DECISIONS_STREAM, subjects.DECISIONS_ALL, last=10)
        assert [g.decode() for g in got] == [f"d{i}/0" for i in range(3, 10)] + ["d0/4", "d1/4", "d2/4"]
        got = await tail(bus.js, subjects.DECISIONS_STREAM, subjects.DECISIONS_ALL, last=4)
        assert [g.decode() for g in got] == ["d9/0", "d0/4", "d1/4", "d2/4"]
        assert len(await tail(bus.js, subjects.DECISIONS_STREAM, subjects.DECISIONS_ALL, last=1000)) == 10
        # The ephemeral consumers are gone.
        assert (await bus.js.stream_info(subjects.DECISIONS_STREAM)).state.consumer_count == 0
