"""The typed app keys through which handlers reach the hub's parts (never module globals)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from aiohttp import web

from hub.advisor.advisor import Advisor
from hub.control.approvals import Approvals
from hub.decisions.log import DecisionLog
from hub.metrics import HubMetrics
from hub.policies.store import BudgetStore, PolicyStore
from hub.policy.budget import BudgetUse
from hub.policy.vertical import ResourceHistory
from hub.state import FleetState
from hub.web.auth import PRINCIPAL  # re-exported: store writes record who made them
from hub.web.history import FleetHistory


class Readiness(Protocol):
    """What keeps the hub from being ready, by part (``{"nats": "not connected to NATS"}``); empty when ready."""

    def __call__(self) -> dict[str, str]: ...


class BudgetUses(Protocol):
    """Each budget against its caps in the hub's latest plan, by budget id."""

    def __call__(self) -> Mapping[str, BudgetUse]: ...


STATE = web.AppKey("state", FleetState)
DECISIONS = web.AppKey("decisions", DecisionLog)
POLICIES = web.AppKey("policies", PolicyStore)
METRICS = web.AppKey("metrics", HubMetrics)
READY = web.AppKey("ready", Readiness)
HISTORY = web.AppKey("history", FleetHistory)
ADVISOR = web.AppKey("advisor", Advisor)
BUDGETS = web.AppKey("budgets", BudgetStore)
BUDGET_USE = web.AppKey("budget_use", BudgetUses)
RESOURCES = web.AppKey("resources", ResourceHistory)
APPROVALS = web.AppKey("approvals", Approvals)


__all__ = [
    "ADVISOR", "APPROVALS", "BUDGETS", "BUDGET_USE", "DECISIONS", "HISTORY", "METRICS", "POLICIES", "PRINCIPAL",
    "READY", "RESOURCES", "STATE", "BudgetUses", "Readiness",
]
