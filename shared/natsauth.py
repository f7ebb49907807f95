"""NATS identities: one nkey per spoke and one for the hub, and the nats-server authorization they need.

One shared token or creds file made every spoke every other spoke (issue 13): with spoke B's
credential one could report as A, forge A's results, read A's commands and write the policy bucket.
Here each spoke gets its own nkey user whose permissions are allow lists naming only its own
subjects: publish its telemetry and results, fetch from and acknowledge its own durable consumer,
receive replies under its own inbox prefix, and hear the hub's heartbeat. Everything else (other
spokes' subjects, every KV bucket, the stream and consumer admin API, the decisions stream) is denied
by the server. The hub's user has
no restriction: it creates the streams, each spoke's consumer, and alone writes policies and decisions.

Nkeys in the server's own ``authorization`` block, rather than decentralized JWT accounts: no
operator, account resolver or ``nsc`` to run, the whole trust set is one generated file, and a
revocation is a config reload. The seeds are secrets and stay with their process; the server's file
holds only public keys. The generated file is the only place permissions are spelled, so the charts
and compose take it as it is.

Layout of the identity directory (``fleetscale nats-auth --dir DIR``)::

    DIR/server/auth.conf       for nats-server (``include``d by its config); public keys only
    DIR/hub/nkey.seed          the hub's seed (HUB_NATS_NKEY_FILE)
    DIR/spoke-C/nkey.seed      cluster C's seed (SPOKE_NATS_NKEY_FILE)
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys

from . import subjects
from .errors import ConfigurationError

HUB = "hub"
SEED_FILE = "nkey.seed"
SERVER_DIR = "server"
AUTH_FILE = "auth.conf"


def spoke_name(cluster_id: str) -> str:
    """The identity's directory name: the spoke's consumer name, ``spoke-C``."""
    return subjects.spoke_consumer(cluster_id)


def spoke_permissions(cluster_id: str) -> dict[str, Any]:
    """What cluster ``cluster_id``'s spoke may do on the server; anything not listed is denied.

    NB: no consumer create/update: the hub creates ``spoke-C`` (shared/bus.py), so a spoke cannot
    point its consumer at another cluster's commands or loosen its own delivery settings.
    """
    return {
        "publish": {
            "allow": [
                subjects.telemetry(cluster_id),
                subjects.results(cluster_id),
                subjects.spoke_consumer_info(cluster_id),
                subjects.spoke_consumer_next(cluster_id),
                subjects.spoke_consumer_acks(cluster_id),
            ]
        },
        # The hub's heartbeat too: without it a spoke takes the hub for away and holds its counts
        # (spoke/autonomy.py) while the hub decides. It names no cluster and carries nothing secret.
        "subscribe": {"allow": [f"{subjects.spoke_inbox_prefix(cluster_id)}.>", subjects.HUB_HEARTBEAT]},
    }


# --- keys -------------------------------------------------------------------------------------------


def new_user_seed() -> bytes:
    """A fresh nkey user seed (``SU...``), from the OS's CSPRNG."""
    return bytes(nkeys.encode_seed(secrets.token_bytes(32), nkeys.PREFIX_BYTE_USER))


def public_key(seed: bytes | str) -> str:
    """The public key (``U...``) of a user seed; ``ConfigurationError`` if it is not one."""
    raw = seed.encode() if isinstance(seed, str) else seed
    raw = raw.strip()
    if not raw.startswith(b"SU"):
        raise ConfigurationError("not an nkey user seed (a user seed starts with 'SU')")
    try:
        pair = nkeys.from_seed(bytearray(raw))
        key = pair.public_key.decode()
    except (nkeys.NkeysError, ValueError) as e:
        raise ConfigurationError(f"not a valid nkey seed ({type(e).__name__})") from e
    pair.wipe()
    return key


def read_seed(path: Path) -> str:
    """A seed file's content, checked to be a user seed: read once, at start."""
    try:
        text = path.read_text().strip()
    except OSError as e:
        raise ConfigurationError(f"cannot read the nkey seed file {path}: {e.strerror}") from e
    try:
        public_key(text)
    except ConfigurationError as e:
        raise ConfigurationError(f"{path}: {e}") from e
    return text


# --- the identity directory -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identity:
    name: str
    """``hub`` or ``spoke-C``."""
    public_key: str
    permissions: dict[str, Any] | None
    """None: unrestricted (the hub)."""


@dataclass(frozen=True, slots=True)
class Changes:
    added: list[str]
    kept: list[str]
    rotated: list[str]
    revoked: list[str]


class IdentityDirectory:
    """The seeds on disk, and the server file generated from them."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def seed_path(self, name: str) -> Path:
        return self.root / name / SEED_FILE

    @property
    def auth_conf(self) -> Path:
        return self.root / SERVER_DIR / AUTH_FILE

    def existing_spokes(self) -> set[str]:
        """Cluster ids that have a seed here."""
        if not self.root.is_dir():
            return set()
        prefix = spoke_name("x")[:-1]
        return {p.parent.name.removeprefix(prefix) for p in self.root.glob(f"{prefix}*/{SEED_FILE}")}

    def _write_private(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data + b"\n")
        os.replace(tmp, path)

    def ensure(self, name: str, *, rotate: bool = False) -> tuple[str, str]:
        """The identity's public key, generating its seed when missing or rotated; and what happened."""
        path = self.seed_path(name)
        if path.is_file() and not rotate:
            return public_key(read_seed(path)), "kept"
        what = "rotated" if path.is_file() else "added"
        seed = new_user_seed()
        self._write_private(path, seed)
        return public_key(seed), what

    def revoke(self, cluster_id: str) -> None:
        shutil.rmtree(self.root / spoke_name(cluster_id))

    def write_server_config(self) -> Path:
        """A minimal nats-server config beside ``auth.conf`` that includes it (the demo's; JetStream,
        address and port come from the command line)."""
        path = self.auth_conf.parent / "nats-server.conf"
        path.write_text(f'include "{AUTH_FILE}"\n')
        return path

    def write_auth_conf(self, identities: Iterable[Identity]) -> None:
        path = self.auth_conf
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(render_authorization(identities))
        os.replace(tmp, path)


def render_authorization(identities: Iterable[Identity]) -> str:
    """The nats-server ``authorization`` block: one nkey user per identity, with its allow lists.

    Values are written as JSON, which the server's config format accepts; quoted, so ``$JS...``
    subjects are strings and not variable references.
    """
    lines = [
        "# Generated by `fleetscale nats-auth`; do not edit (re-run it, then reload nats-server).",
        "# Public keys only: the seeds stay with the hub and the spokes.",
        "authorization {",
        "  users = [",
    ]
    for ident in identities:
        user: dict[str, Any] = {"nkey": ident.public_key}
        if ident.permissions is not None:
            user["permissions"] = ident.permissions
        lines.append(f"    # {ident.name}{' (unrestricted)' if ident.permissions is None else ''}")
        lines.append(f"    {json.dumps(user)}")
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def issue(
    root: Path,
    clusters: Iterable[str],
    *,
    rotate: Iterable[str] = (),
    revoke: Iterable[str] = (),
) -> Changes:
    """Bring ``root`` to exactly the hub plus ``clusters``, and write the server's file for them.

    Existing seeds are kept (re-running is harmless); ``rotate`` names identities (``hub`` or a
    cluster id) to re-key; ``revoke`` names clusters to delete. A spoke found on disk that is neither
    listed nor revoked is an error, so a cluster left out of the list by mistake is not silently
    locked out. Nothing is written when the arguments are inconsistent.
    """
    wanted = list(dict.fromkeys(clusters))
    rotate, revoke = set(rotate), set(revoke)
    for cid in [*wanted, *revoke, *(rotate - {HUB})]:
        if not subjects.CLUSTER_ID_PATTERN.match(cid):
            raise ConfigurationError(f"{cid!r} is not a valid cluster id ({subjects.CLUSTER_ID_PATTERN.pattern})")
    directory = IdentityDirectory(root)
    existing = directory.existing_spokes()
    if both := revoke & set(wanted):
        raise ConfigurationError(f"listed and revoked at once: {', '.join(sorted(both))}")
    if unknown := rotate - set(wanted) - {HUB}:
        raise ConfigurationError(f"cannot rotate what is not listed: {', '.join(sorted(unknown))}")
    if missing := revoke - existing:
        raise ConfigurationError(f"cannot revoke what has no identity in {root}: {', '.join(sorted(missing))}")
    if forgotten := existing - set(wanted) - revoke:
        raise ConfigurationError(
            f"{', '.join(sorted(forgotten))} ha{'s' if len(forgotten) == 1 else 've'} an identity in {root} but "
            "is not listed: list it to keep it, or pass --revoke to remove it"
        )
    changes = Changes([], [], [], [])
    identities = []
    for name, permissions, key in [(HUB, None, HUB), *((spoke_name(c), spoke_permissions(c), c) for c in wanted)]:
        pub, what = directory.ensure(name, rotate=key in rotate)
        getattr(changes, what).append(name)
        identities.append(Identity(name, pub, permissions))
    for cid in sorted(revoke):
        directory.revoke(cid)
        changes.revoked.append(spoke_name(cid))
    directory.write_auth_conf(identities)
    return changes


# --- the command ------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fleetscale nats-auth",
        description=(
            "Issue one NATS nkey identity per spoke (and one for the hub) and write the nats-server "
            "authorization file that confines each spoke to its own subjects. Re-run it with the full "
            "list of clusters whenever it changes; existing keys are kept. See docs/security.md."
        ),
    )
    p.add_argument("clusters", nargs="*", metavar="CLUSTER", help="every cluster id that may connect")
    p.add_argument("--dir", type=Path, required=True, help="identity directory (created if missing)")
    p.add_argument("--rotate", action="append", default=[], metavar="ID",
                   help="give this identity (a cluster id, or 'hub') a new key; repeatable")
    p.add_argument("--revoke", action="append", default=[], metavar="CLUSTER",
                   help="delete this cluster's identity; repeatable")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        changes = issue(args.dir, args.clusters, rotate=args.rotate, revoke=args.revoke)
    except ConfigurationError as e:
        print(f"fleetscale nats-auth: {e}", file=sys.stderr)
        return 2
    for what in ("added", "rotated", "revoked", "kept"):
        names = getattr(changes, what)
        if names:
            print(f"{what:>8}: {', '.join(names)}")
    directory = IdentityDirectory(args.dir)
    print(f"server authorization: {directory.auth_conf} (include it from the nats-server config)")
    if changes.added or changes.rotated or changes.revoked:
        print("reload nats-server to apply (`nats-server --signal reload` or SIGHUP); rotated identities must be "
              "restarted with their new seed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
