"""The typed app keys through which handlers reach the hub's parts (never module globals)."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from hub.advisor.advisor import Advisor
from hub.decisions.log import DecisionLog
from hub.metrics import HubMetrics
from hub.policies.store import PolicyStore
from hub.policy.vertical import ResourceHistory
from hub.state import FleetState
from hub.web.auth import PRINCIPAL  # re-exported: store writes record who made them
from hub.web.history import FleetHistory


class Readiness(Protocol):
    """What keeps the hub from being ready, by part (``{"nats": "not connected to NATS"}``); empty when ready."""

    def __call__(self) -> dict[str, str]: ...


STATE = web.AppKey("state", FleetState)
DECISIONS = web.AppKey("decisions", DecisionLog)
POLICIES = web.AppKey("policies", PolicyStore)
METRICS = web.AppKey("metrics", HubMetrics)
READY = web.AppKey("ready", Readiness)
HISTORY = web.AppKey("history", FleetHistory)
ADVISOR = web.AppKey("advisor", Advisor)
RESOURCES = web.AppKey("resources", ResourceHistory)


__all__ = ["ADVISOR", "DECISIONS", "HISTORY", "METRICS", "POLICIES", "PRINCIPAL", "READY", "RESOURCES", "STATE",
           "Readiness"]
