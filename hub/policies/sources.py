"""Policy sources other than the REST API: policy files and the ``AIInferenceAutoscalerPolicy`` CRD.

Each source makes its own policies in the store exactly what it holds (``PolicyStore.sync``); the
store refuses a policy another source owns. ``PolicySources`` builds the configured ones for the
hub's composition root: ``open`` reads the files once (so the first evaluation sees them) and
checks the Kubernetes configuration, failing fast on a misconfiguration; ``tasks`` are the eternal
coroutines to run as guarded root tasks.
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from hub.policies.crd_watch import CrdSource, budget_source, kube_configuration
from hub.policies.files import BudgetFiles, PolicyFiles
from hub.policies.store import BudgetStore, PolicyStore
from hub.settings import HubSettings

__all__ = ["BudgetFiles", "CrdSource", "PolicyFiles", "PolicySources"]


@dataclass
class PolicySources:
    files: PolicyFiles | None = None
    crd: CrdSource | None = None
    budget_files: BudgetFiles | None = None
    budget_crd: CrdSource | None = None

    @classmethod
    async def open(cls, settings: HubSettings, store: PolicyStore, budgets: BudgetStore | None = None
                   ) -> PolicySources:
        """The configured sources; budgets' (files, CRD) with ``budgets``, alongside the policies'."""
        sources = cls()
        if settings.policy_file is not None or settings.policy_dir is not None:
            sources.files = PolicyFiles(
                store,
                file=settings.policy_file,
                directory=settings.policy_dir,
                poll_s=settings.policy_poll_s,
                resync_s=settings.policy_resync_s,
            )
            sources.files.check()
            await sources.files.apply()
        if settings.crd_watch:
            configuration = await kube_configuration(settings.kubeconfig, settings.kube_context)
            sources.crd = CrdSource(
                store, configuration, namespace=settings.crd_namespace, resync_s=settings.policy_resync_s
            )
            if budgets is not None:
                sources.budget_crd = budget_source(budgets, configuration, namespace=settings.crd_namespace,
                                                   resync_s=settings.policy_resync_s)
        if budgets is not None and (settings.budget_file is not None or settings.budget_dir is not None):
            sources.budget_files = BudgetFiles(budgets, file=settings.budget_file, directory=settings.budget_dir,
                                               poll_s=settings.policy_poll_s, resync_s=settings.policy_resync_s)
            sources.budget_files.check()
            await sources.budget_files.apply()
        return sources

    def tasks(self) -> dict[str, Coroutine[Any, Any, None]]:
        tasks: dict[str, Coroutine[Any, Any, None]] = {}
        if self.files is not None:
            tasks["policy files"] = self.files.watcher()
        if self.crd is not None:
            tasks["policy CRD watch"] = self.crd.run()
        if self.budget_files is not None:
            tasks["budget files"] = self.budget_files.watcher()
        if self.budget_crd is not None:
            tasks["budget CRD watch"] = self.budget_crd.run()
        return tasks
