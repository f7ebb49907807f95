"""Reading a stream's history back: the last N messages on a subject, oldest first.

For state that lives in a JetStream stream (the hub's decision records) and must be back in memory
when a process starts. The read goes through ephemeral, unacknowledged consumers that are deleted
afterwards, so it leaves nothing behind on the server.
"""

from __future__ import annotations

import asyncio
import contextlib

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from .errors import BusUnavailable


async def tail(js: JetStreamContext, stream: str, subject: str, *, last: int, timeout_s: float = 10.0) -> list[bytes]:
    """The payloads of the last ``last`` messages on ``subject`` in ``stream``, oldest first.

    A stream with per-subject limits has gaps (replaced revisions leave deleted sequences), so the
    last N messages can span more than N sequences: windows are read backwards from the end, each
    twice as wide as the one before, until there are enough messages or the stream's start is
    reached. Raises ``BusUnavailable`` if the stream cannot be read in ``timeout_s``.
    """
    try:
        async with asyncio.timeout(timeout_s):
            state = (await js.stream_info(stream)).state
            if state.messages == 0:
                return []
            out: list[bytes] = []
            stop, width = state.last_seq, last
            while len(out) < last and stop >= state.first_seq:
                start = max(state.first_seq, stop - width + 1)
                out = await _read_range(js, stream, subject, start, stop) + out
                stop, width = start - 1, width * 2
            return out[-last:]
    except (nats.errors.Error, TimeoutError) as e:
        raise BusUnavailable(f"cannot read stream {stream}: {e!r}") from e


async def _read_range(
    js: JetStreamContext, stream: str, subject: str, start: int, stop: int, *, batch: int = 256
) -> list[bytes]:
    """Payloads with sequence numbers in [start, stop]."""
    psub = await js.pull_subscribe(
        subject,
        stream=stream,
        config=ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            inactive_threshold=30.0,
            mem_storage=True,
        ),
    )
    out: list[bytes] = []
    try:
        while True:
            try:
                msgs = await psub.fetch(batch, timeout=1.0)
            except nats.errors.TimeoutError:
                return out  # nothing at or after this point matches the subject
            for msg in msgs:
                if msg.metadata.sequence.stream <= stop:
                    out.append(msg.data)
            meta = msgs[-1].metadata
            if meta.num_pending == 0 or meta.sequence.stream >= stop:
                return out
    finally:
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            name = (await psub.consumer_info()).name
            await psub.unsubscribe()
            await js.delete_consumer(stream, name)
