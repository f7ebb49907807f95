"""NATS names: every subject, stream, consumer and bucket is spelled here and nowhere else.

The ``fleetscale.v1`` prefix carries the protocol's major version, so two majors can share one NATS
account during a migration without seeing each other's messages.
"""

from __future__ import annotations

import re

from .messages import CLUSTER_ID_PATTERN, PROTOCOL_VERSION

PREFIX = f"fleetscale.v{PROTOCOL_VERSION}"
DECISION_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")

# Core NATS: at-most-once, latest report wins.
TELEMETRY_ALL = f"{PREFIX}.telemetry.*"
HUB_HEARTBEAT = f"{PREFIX}.hub.heartbeat"

# JetStream streams.
COMMANDS_STREAM = "FLEETSCALE_COMMANDS"
COMMANDS_ALL = f"{PREFIX}.commands.*"
RESULTS_STREAM = "FLEETSCALE_RESULTS"
RESULTS_ALL = f"{PREFIX}.results.*"
HUB_RESULTS_CONSUMER = "hub-results"
LEASES_BUCKET = "fleetscale_leases"
"""Sharded hubs' partition leases and heartbeats (hub.control.leases); the hubs' alone."""
# The hub's decision records: one subject per decision id, the stream keeps the last revision of each.
DECISIONS_STREAM = "FLEETSCALE_DECISIONS"
DECISIONS_ALL = f"{PREFIX}.decisions.>"

# JetStream key-value bucket holding the hub's durable state.
POLICIES_BUCKET = "fleetscale_policies"
BUDGETS_BUCKET = "fleetscale_budgets"


def _token(cluster_id: str) -> str:
    if not CLUSTER_ID_PATTERN.match(cluster_id):
        raise ValueError(f"cluster id {cluster_id!r} is not a valid subject token")
    return cluster_id


def telemetry(cluster_id: str) -> str:
    return f"{PREFIX}.telemetry.{_token(cluster_id)}"


def commands(cluster_id: str) -> str:
    return f"{PREFIX}.commands.{_token(cluster_id)}"


def results(cluster_id: str) -> str:
    return f"{PREFIX}.results.{_token(cluster_id)}"


def decision(decision_id: str) -> str:
    """The subject of one decision record; its revisions replace each other in the stream."""
    if not DECISION_ID_PATTERN.match(decision_id):
        raise ValueError(f"decision id {decision_id!r} is not a valid subject token")
    return f"{PREFIX}.decisions.{decision_id}"


def hub_results_consumer(hub_id: str) -> str:
    """A sharded hub's own durable consumer of every result (one per hub id)."""
    return f"{HUB_RESULTS_CONSUMER}-{hub_id}"


def spoke_consumer(cluster_id: str) -> str:
    """Durable JetStream consumer name of one spoke's command queue."""
    return f"spoke-{_token(cluster_id)}"


def spoke_inbox_prefix(cluster_id: str) -> str:
    """Where a spoke receives its replies (JetStream API answers, publish acks, fetched commands).

    Per spoke, so a server that lets each spoke subscribe only under its own prefix keeps one
    spoke from reading another's replies (nats-py: ``inbox_prefix``; the default ``_INBOX`` is shared).
    """
    return f"_INBOX.{spoke_consumer(cluster_id)}"


# JetStream API subjects a spoke needs for its own consumer and nothing else (the server's JetStream
# API reference: "$JS.API.CONSUMER.INFO.<stream>.<consumer>" and friends). Per-spoke permissions are
# built from these (shared/natsauth.py).
def spoke_consumer_info(cluster_id: str) -> str:
    return f"$JS.API.CONSUMER.INFO.{COMMANDS_STREAM}.{spoke_consumer(cluster_id)}"


def spoke_consumer_next(cluster_id: str) -> str:
    """Fetching (pull) from the spoke's durable consumer."""
    return f"$JS.API.CONSUMER.MSG.NEXT.{COMMANDS_STREAM}.{spoke_consumer(cluster_id)}"


def spoke_consumer_acks(cluster_id: str) -> str:
    """Ack, nak and term of the messages the spoke's consumer delivered (a wildcard)."""
    return f"$JS.ACK.{COMMANDS_STREAM}.{spoke_consumer(cluster_id)}.>"


def cluster_of(subject: str) -> str:
    """The cluster token of a telemetry/commands/results subject."""
    return subject.rsplit(".", 1)[-1]
