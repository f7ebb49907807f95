"""Closing a bus whose connection drops at that moment must not fail the process's shutdown."""

from __future__ import annotations

import pytest

from shared.bus import Bus, BusOptions


class DroppingClient:
    """A nats-py client whose socket is lost as it closes (what nats-py raises then)."""

    is_closed = False
    is_connected = True
    closed = False
    _subs: dict[int, object] = {}  # noqa: RUF012 (nats-py's own attribute, read by Bus.close)

    def jetstream(self, **_options: object) -> None:
        return None

    async def flush(self, timeout: float) -> None:  # noqa: ASYNC109 (nats-py's signature)
        raise ConnectionResetError("Connection lost")

    async def close(self) -> None:
        self.closed = True
        raise ConnectionResetError("Connection lost")


async def test_a_connection_lost_while_closing_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    client = DroppingClient()
    await Bus(client, BusOptions(url="nats://127.0.0.1:1", name="t")).close()  # type: ignore[arg-type]
    assert client.closed
    assert "lost while closing" in caplog.text
