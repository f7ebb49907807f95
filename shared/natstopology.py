"""NATS topology: the nats-server configs of a hub-side cluster of three and a leaf node per spoke cluster.

The hub side runs a JetStream cluster (three servers, routes between them, streams and KV buckets
replicated R3 by the hub, ``HUB_NATS_STREAM_REPLICAS``), so one server lost keeps quorum and nothing
stored is lost. Each spoke cluster runs one *leaf node*: a plain nats-server with no JetStream that
dials out to the hub cluster's leafnode port (the spoke cluster needs no inbound route). The spoke
connects to its leaf, in its own cluster, and never to the hub side directly.

Why a leaf without JetStream (docs/decisions.md, "NATS topology"): every stream the protocol has
lives on the hub side and must stay there. Commands are revoked by the hub when a cluster goes
stale (a purge); a copy mirrored into the spoke's cluster could be applied after the hub re-placed
that share. Telemetry is latest-wins core NATS; buffering it across a WAN loss would replay stale
reports as fresh ones. So the leaf extends the hub's account: core subjects cross it by interest,
and the spoke reaches the hub side's JetStream through its domain (``jetstream.domain``, here
``hub``): the spoke's JetStream API calls go to ``$JS.hub.API.>`` (``SPOKE_NATS_JS_DOMAIN``).

NB: the plain ``$JS.API.>`` does *not* cross a leaf connection: nats-server adds a deny on
``$JS.API.>``, ``$KV.>`` and ``$OBJ.>`` for every non-system account of a leaf link (so a request is
not answered by two JetStreams), and a spoke on a leaf without the domain gets "no responders" for
every JetStream call. Measured here with nats-server 2.15; docs.nats.io, "JetStream on Leaf Nodes".

With no JetStream of its own the leaf is stateless (no domain of its own, no
volume). Cut off from the hub, the leaf keeps the spoke's connection and every local subscription:
the spoke never reconnects, JetStream calls fail at once with "no responders" and are retried, the
missing heartbeat starts autonomy (hold the last applied counts), and when the link is back,
interest is exchanged again and telemetry, heartbeats and command fetches resume without a restart.

The configs are generated here, once, for the tests, the docs' example (``fleetscale nats-topology``)
and as the reference the spoke chart's leaf template follows (tests compare the two).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .messages import CLUSTER_ID_PATTERN

CLUSTER_NAME = "fleetscale-hub"
CLIENT_PORT = 4222
CLUSTER_PORT = 6222
LEAFNODE_PORT = 7422
MONITOR_PORT = 8222
JS_DOMAIN = "hub"
"""The hub side's JetStream domain: a spoke on a leaf reaches the streams as ``$JS.hub.API``."""
LEAF_RECONNECT_S = 1.0
"""How often a leaf whose link is down dials the hub side again (nats-server's ``leafnodes.reconnect``)."""


@dataclass(frozen=True, slots=True)
class HubNode:
    """One nats-server of the hub-side cluster, and where it listens."""

    name: str
    """``server_name``: stable across restarts (JetStream's cluster membership is by name)."""
    host: str
    client_port: int = CLIENT_PORT
    cluster_port: int = CLUSTER_PORT
    leafnode_port: int = LEAFNODE_PORT
    monitor_port: int | None = MONITOR_PORT
    listen_host: str | None = None
    """Where it binds; None: ``host`` (a pod binds 0.0.0.0 and is reached by its DNS name)."""

    @property
    def client_url(self) -> str:
        return f"nats://{self.host}:{self.client_port}"

    @property
    def route_url(self) -> str:
        return f"nats-route://{self.host}:{self.cluster_port}"

    @property
    def leafnode_url(self) -> str:
        return f"nats-leaf://{self.host}:{self.leafnode_port}"


def client_urls(nodes: Sequence[HubNode]) -> str:
    """The hub's ``HUB_NATS_URL``: every server, comma-separated, so losing one is a reconnect."""
    return ",".join(n.client_url for n in nodes)


def _quoted(value: str) -> str:
    return json.dumps(value)


def _list(values: Sequence[str]) -> str:
    """A list of strings as the config writes it: JSON, compact (as Helm's ``toJson`` writes it)."""
    return json.dumps(list(values), separators=(",", ":"))


def hub_node_config(node: HubNode, nodes: Sequence[HubNode], *, store_dir: str | None = None,
                    cluster_name: str = CLUSTER_NAME, domain: str = JS_DOMAIN) -> str:
    """The config of ``node``, one of ``nodes`` (the whole cluster, ``node`` included).

    Routes name every other server (a full mesh from the start, so a server restarted alone finds
    the others). JetStream is on, with the store in ``store_dir`` (None: the server's default, or
    ``-sd`` on its command line).
    """
    if len({n.name for n in nodes}) != len(nodes):
        raise ValueError("hub-side servers need distinct names")
    if node not in nodes:
        raise ValueError(f"{node.name} is not one of the cluster's servers")
    bind = node.listen_host or node.host
    routes = [n.route_url for n in nodes if n != node]
    lines = [
        "# Generated by Fleetscale (shared/natstopology.py): one server of the hub-side cluster.",
        f"server_name: {_quoted(node.name)}",
        f"listen: {_quoted(f'{bind}:{node.client_port}')}",
        "# The domain names this JetStream for clients beyond a leaf node (SPOKE_NATS_JS_DOMAIN).",
        f"jetstream {{ domain: {_quoted(domain)}" + (f", store_dir: {_quoted(store_dir)}" if store_dir else "") + " }",
        "cluster {",
        f"  name: {_quoted(cluster_name)}",
        f"  listen: {_quoted(f'{bind}:{node.cluster_port}')}",
        f"  routes: {_list(routes)}",
        "}",
        "# Spoke clusters' leaf nodes dial in here (the spoke side needs no inbound port). Not advertised:",
        "# a leaf uses the addresses it was given (the WAN's), never the servers' own, which it may not reach.",
        "leafnodes {",
        f"  listen: {_quoted(f'{bind}:{node.leafnode_port}')}",
        "  no_advertise: true",
        "}",
    ]
    if node.monitor_port is not None:
        lines.append(f"http: {_quoted(f'{bind}:{node.monitor_port}')}")
    return "\n".join(lines) + "\n"


def leaf_config(cluster_id: str, remotes: Sequence[str], *, host: str = "0.0.0.0", port: int = CLIENT_PORT,
                monitor_port: int | None = MONITOR_PORT, credentials_file: str | None = None,
                reconnect_s: float = LEAF_RECONNECT_S) -> str:
    """The config of cluster ``cluster_id``'s leaf node: no JetStream, one remote to the hub side.

    ``remotes``: the hub cluster's leafnode URLs (``nats-leaf://host:7422``), all of them, so the
    leaf moves to another server when the one it uses dies. ``credentials_file``: a ``.creds`` file
    the leaf presents to the hub side (None: the hub side's leafnode port takes no auth).
    """
    if not CLUSTER_ID_PATTERN.match(cluster_id):
        raise ValueError(f"{cluster_id!r} is not a valid cluster id")
    if not remotes:
        raise ValueError("a leaf node needs at least one hub-side leafnode URL")
    remote = f"{{ urls: {_list(remotes)}"
    remote += f", credentials: {_quoted(credentials_file)} }}" if credentials_file else " }"
    lines = [
        f"# Fleetscale: cluster {cluster_id}'s leaf node (shared/natstopology.py; the spoke chart writes the same).",
        "# No JetStream here: every stream lives on the hub side (docs/operations.md, NATS topology).",
        f"server_name: {_quoted(f'leaf-{cluster_id}')}",
        f"listen: {_quoted(f'{host}:{port}')}",
        "leafnodes {",
        f"  reconnect: {_quoted(f'{reconnect_s:g}s')}",
        f"  remotes: [ {remote} ]",
        "}",
    ]
    if monitor_port is not None:
        lines.append(f"http: {_quoted(f'{host}:{monitor_port}')}")
    return "\n".join(lines) + "\n"


# --- the command ------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fleetscale nats-topology",
        description=(
            "Write the nats-server configs of a hub-side cluster (three servers, JetStream) and of a "
            "leaf node per spoke cluster, and print the hub's and spokes' NATS settings for them. "
            "See docs/operations.md, NATS topology."
        ),
    )
    p.add_argument("--out", type=Path, required=True, help="directory for the .conf files (created)")
    p.add_argument("--hub-host", action="append", required=True, metavar="HOST",
                   help="a hub-side server's address (three, or five); repeat per server")
    p.add_argument("--spoke", action="append", default=[], metavar="CLUSTER",
                   help="a spoke cluster that gets a leaf node; repeatable")
    p.add_argument("--leaf-credentials", default=None, metavar="FILE",
                   help="a .creds file each leaf presents to the hub side (path as the leaf sees it)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    nodes = [HubNode(f"hub-{i}", host, listen_host="0.0.0.0") for i, host in enumerate(args.hub_host)]
    if len(nodes) % 2 == 0:
        print("fleetscale nats-topology: use an odd number of hub-side servers (a quorum needs a majority)",
              file=sys.stderr)
        return 2
    bad = [c for c in args.spoke if not CLUSTER_ID_PATTERN.match(c)]
    if bad:
        print(f"fleetscale nats-topology: not a valid cluster id: {', '.join(bad)}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for node in nodes:
        (args.out / f"{node.name}.conf").write_text(hub_node_config(node, nodes, store_dir="/data/jetstream"))
    for cluster_id in args.spoke:
        text = leaf_config(cluster_id, [n.leafnode_url for n in nodes], credentials_file=args.leaf_credentials)
        (args.out / f"leaf-{cluster_id}.conf").write_text(text)
    print(f"wrote {len(nodes)} hub-side and {len(args.spoke)} leaf configs to {args.out}")
    print(f"hub:    HUB_NATS_URL={client_urls(nodes)} HUB_NATS_STREAM_REPLICAS={min(3, len(nodes))}")
    for cluster_id in args.spoke:
        print(f"spoke {cluster_id}: SPOKE_NATS_URL=nats://<leaf-{cluster_id} address>:{CLIENT_PORT} "
              f"SPOKE_NATS_JS_DOMAIN={JS_DOMAIN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
