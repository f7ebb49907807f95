"""The running hub with every policy source: files, a directory and the CRD, into one store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kmock as km
import pytest

from hub.policies.crd_schema import GROUP, PLURAL, VERSION
from hub.policies.store import Source
from tests.e2e.conftest import eventually, running_hub, write_policies
from tests.hub.policies.helpers import policy_object

pytestmark = pytest.mark.nats


def policy(policy_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "id": policy_id,
        "targets": {"workloads": [{"namespace": "inference", "name": policy_id}]},
        "signals": [{"metric": "queue_per_replica", "target": 4}],
        **changes,
    }


async def test_hub_syncs_a_file_a_directory_and_the_crd(
    nats_server: Any, kube: km.KubernetesEmulator, kubectl: Any, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: kmock\n"
        f"clusters: [{{name: kmock, cluster: {{server: '{str(kube.url).rstrip('/')}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: kmock, context: {cluster: kmock, user: u}}]\n"
    )
    directory = tmp_path / "policies.d"
    directory.mkdir()
    write_policies(directory / "a.yaml", policy("from-dir"))
    single = write_policies(tmp_path / "policies.yaml", policy("from-file"))
    settings = {
        "policy_file": single,
        "policy_dir": directory,
        "policy_poll_s": 0.05,
        "crd_watch": True,
        "kubeconfig": kubeconfig,
    }
    async with running_hub(nats_server.url, **settings) as hub:
        # File policies are in the store before the first evaluation (read before the tasks start).
        assert [p.id for p in hub.policies.all()] == ["from-dir", "from-file"]
        spec = {k: v for k, v in policy("from-crd").items() if k != "id"}
        await kubectl.create_namespaced_custom_object(
            GROUP, VERSION, "inference", PLURAL, policy_object("from-crd", spec)
        )
        write_policies(directory / "b.yaml", policy("also-from-dir"))
        await eventually(lambda: len(hub.policies.all()) == 4, timeout_s=5)
        sources = {p.id: hub.policies.entry(p.id).source for p in hub.policies.all()}
        assert sources == {
            "also-from-dir": Source.FILE,
            "from-crd": Source.CRD,
            "from-dir": Source.FILE,
            "from-file": Source.FILE,
        }
        assert hub.sources is not None and hub.sources.crd is not None
