"""Per-node exporter pods (dcgm-exporter) found through the Kubernetes API, to scrape each one.

dcgm-exporter runs as a DaemonSet: one pod per GPU node, each serving only its own node's GPUs.
Scraping it through a Service reaches a random pod per request, so a workload's GPUs would appear
and disappear between reads; static per-node URLs go stale as node pools scale. Listing the pods
by label on every read follows the DaemonSet as nodes come and go.
"""

from __future__ import annotations

from dataclasses import dataclass

from spoke.backends.kubernetes.client import KubeClient, Raw


@dataclass(frozen=True, slots=True)
class ExporterPods:
    """Where to find the exporter pods and how to reach their metrics endpoint."""

    label_selector: str
    namespace: str | None = None
    """None lists all namespaces (needs cluster-wide ``list pods``)."""
    port: int = 9400
    path: str = "/metrics"

    async def urls(self, client: KubeClient) -> list[str]:
        """One URL per running exporter pod with an IP, sorted by node."""
        pods = await client.list_pods(self.namespace, label_selector=self.label_selector)
        found = sorted((_node(p), url) for p in pods if (url := self._url(p)))
        return [url for _, url in found]

    def _url(self, pod: Raw) -> str | None:
        status = pod.get("status") or {}
        ip = status.get("podIP")
        if status.get("phase") != "Running" or not ip:
            return None
        host = f"[{ip}]" if ":" in ip else ip
        return f"http://{host}:{self.port}{self.path}"


def _node(pod: Raw) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")
