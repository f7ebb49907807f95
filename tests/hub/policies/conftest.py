"""Fixtures for the policy sources: a real JetStream policy store and a Kubernetes API at the wire.

The API is kmock's ``KubernetesEmulator`` with the one gap-filler the CRD watch needs: it does not
recognise kubernetes-asyncio's ``?watch=True`` as a watch (shared/reference/infra.md §2), so that
request is routed to the emulator's own watch stream. The emulator keeps no resourceVersion and
answers a watch with every current object (ADDED) before the live events; the watcher treats
events as idempotent, as it must against a real server after a re-list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import kmock as km
import pytest
from kubernetes_asyncio import client as k8s

from hub.policies.crd_schema import KIND
from hub.policies.store import PolicyStore
from shared.bus import Bus, BusOptions
from tests.hub.policies.helpers import RESOURCE


@pytest.fixture
async def store(nats_server: Any) -> AsyncIterator[PolicyStore]:
    async with Bus.connect(BusOptions(url=nats_server.url, name="test")) as bus:
        await bus.ensure_topology()
        yield PolicyStore(await bus.policies_bucket())


@pytest.fixture
def kube(kmock: km.KubernetesEmulator) -> km.KubernetesEmulator:
    kmock.resources[RESOURCE] = {"kind": KIND, "namespaced": True}
    kmock[km.method.GET, km.params(watch="True")] << kmock._serve_watch
    return kmock


@pytest.fixture
def configuration(kube: km.KubernetesEmulator) -> k8s.Configuration:
    return k8s.Configuration(host=str(kube.url).rstrip("/"))


@pytest.fixture
async def kubectl(configuration: k8s.Configuration) -> AsyncIterator[k8s.CustomObjectsApi]:
    """What a user (or Argo CD) does to the objects, through the same API."""
    async with k8s.ApiClient(configuration) as api:
        yield k8s.CustomObjectsApi(api)
