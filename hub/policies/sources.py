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

from hub.policies.crd_watch import CrdSource, kube_configuration
from hub.policies.files import PolicyFiles
from hub.policies.store import PolicyStore
from hub.settings import HubSettings

__all__ = ["CrdSource", "PolicyFiles", "PolicySources"]


@dataclass
class PolicySources:
    files: PolicyFiles | None = None
    crd: CrdSource | None = None

    @classmethod
    async def open(cls, settings: HubSettings, store: PolicyStore) -> PolicySources:
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
        return sources

    def tasks(self) -> dict[str, Coroutine[Any, Any, None]]:
        tasks: dict[str, Coroutine[Any, Any, None]] = {}
        if self.files is not None:
            tasks["policy files"] = self.files.watcher()
        if self.crd is not None:
            tasks["policy CRD watch"] = self.crd.run()
        return tasks
