"""`fleetscale demo` as a user runs it: real processes, a bounded duration, a summary, exit 0."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest

from shared.natsserver import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_demo_scales_up_and_down_on_two_gpu_types_and_exits_cleanly() -> None:
    port = free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "shared.cli", "demo", "--duration", "45", "--time-scale", "60", "--no-view",
         "--api-port", str(port)],
        capture_output=True, text=True, timeout=150,
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-3000:]

    def figure(label: str) -> int:
        m = re.search(rf"{label}\s+(\d+)", out)
        assert m, f"{label!r} missing from the summary:\n{out}"
        return int(m.group(1))

    assert figure("scale-ups applied") >= 1
    assert figure("scale-downs applied") >= 1
    assert figure("GPU types used") >= 2
    # Nothing is left behind: the hub process that served the API is gone with the demo.
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
