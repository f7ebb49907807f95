"""ApiException → classified ApplyError: by unit, and end to end through the real client."""

from __future__ import annotations

import aiohttp
import kmock
import pytest
from kube_emulator import Cluster, Factory, status
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.client.exceptions import ApiException

from shared.errors import PermanentError, TemporaryError
from shared.messages import ResultReason
from spoke.backend import PermanentApplyError, TemporaryApplyError
from spoke.backends.kubernetes import KubernetesBackend, KubernetesSettings
from spoke.backends.kubernetes.errors import Access, ConflictError, ForbiddenError, NotFoundError, classify

SCALE_PATCH = Access("patch", "deployments", "apps", subresource="scale", namespace="llm")


def api_exception(code: int, body: str = "", headers: dict[str, str] | None = None) -> ApiException:
    exc = ApiException(status=code, reason="Reason")
    exc.body, exc.headers = body, headers
    return exc


@pytest.mark.parametrize(
    ("code", "cls", "reason", "temporary"),
    [
        (404, NotFoundError, ResultReason.NOT_FOUND, False),
        (409, ConflictError, ResultReason.BACKEND_ERROR, True),
        (403, ForbiddenError, ResultReason.FORBIDDEN, False),
        (401, TemporaryApplyError, ResultReason.BACKEND_ERROR, True),
        (429, TemporaryApplyError, ResultReason.BACKEND_ERROR, True),
        (500, TemporaryApplyError, ResultReason.BACKEND_ERROR, True),
        (503, TemporaryApplyError, ResultReason.BACKEND_ERROR, True),
        (422, PermanentApplyError, ResultReason.INVALID, False),
        (405, PermanentApplyError, ResultReason.BACKEND_ERROR, False),
    ],
)
def test_statuses_are_classified_by_what_the_caller_should_do(
    code: int, cls: type, reason: ResultReason, temporary: bool
) -> None:
    error = classify(api_exception(code), SCALE_PATCH, target="Deployment/llama/scale")

    assert isinstance(error, cls)
    assert (error.reason, error.temporary) == (reason, temporary)
    assert isinstance(error, TemporaryError if temporary else PermanentError)


def test_forbidden_names_the_rbac_rule_to_grant() -> None:
    body = '{"kind":"Status","message":"deployments.apps \\"llama\\" is forbidden: User cannot patch"}'

    error = classify(api_exception(403, body), SCALE_PATCH, target="Deployment/llama/scale")

    assert str(error) == (
        'patch Deployment/llama/scale: forbidden; the spoke\'s service account needs "patch" on '
        "\"deployments/scale\" (apiGroup 'apps') in namespace 'llm'. Grant it in the spoke's (Cluster)Role "
        '(deployments.apps "llama" is forbidden: User cannot patch)'
    )


def test_retry_after_sets_the_delay_and_backoff_is_the_fallback() -> None:
    throttled = classify(api_exception(429, headers={"Retry-After": "7"}), SCALE_PATCH, backoff_s=2.0)
    unavailable = classify(api_exception(503, headers={}), SCALE_PATCH, backoff_s=2.0)
    garbage = classify(api_exception(429, headers={"Retry-After": "soon"}), SCALE_PATCH, backoff_s=3.0)

    assert isinstance(throttled, TemporaryApplyError) and throttled.delay_s == 7.0
    assert isinstance(unavailable, TemporaryApplyError) and unavailable.delay_s == 2.0
    assert isinstance(garbage, TemporaryApplyError) and garbage.delay_s == 3.0


@pytest.mark.parametrize("exc", [aiohttp.ClientConnectionError("refused"), TimeoutError(), OSError(111, "x")])
def test_transport_failures_are_temporary(exc: BaseException) -> None:
    error = classify(exc, SCALE_PATCH)

    assert isinstance(error, TemporaryApplyError)
    assert "unreachable" in str(error)


def test_long_non_json_bodies_are_truncated() -> None:
    error = classify(api_exception(500, "x" * 5000), SCALE_PATCH)

    assert len(str(error)) < 500


def test_anything_else_is_a_bug_not_an_api_failure() -> None:
    with pytest.raises(TypeError):
        classify(ValueError("nope"), SCALE_PATCH)


# --- end to end: the real client against the emulator ----------------------------------------------


async def test_forbidden_scale_is_a_permanent_forbidden_with_the_rbac_hint(
    kube: Cluster, backend: KubernetesBackend, scale_command
) -> None:
    kube.workload("llama", replicas=2)
    kube.k.override[kmock.method.PATCH, kmock.subresource("scale")] << status(403, "forbidden by RBAC")

    with pytest.raises(PermanentApplyError, match=r'needs "patch" on "deployments/scale"') as caught:
        await backend.apply(scale_command("llama", {"H100": 3}))

    assert caught.value.reason == ResultReason.FORBIDDEN
    assert caught.value.temporary is False


async def test_forbidden_pod_patch_names_pods(kube: Cluster, make_backend: Factory, scale_command) -> None:
    kube.workload("llama", replicas=2)
    kube.pod("llama-1", labels={"app": "llama"})
    kube.k.override[kmock.method.PATCH, kmock.resource("v1/pods")] << status(403, "forbidden")

    async def loads(ref, pods):  # type: ignore[no-untyped-def]
        return {}

    with pytest.raises(PermanentApplyError, match=r'needs "patch" on "pods" \(apiGroup \'core\'\)'):
        await make_backend(pod_loads=loads).apply(scale_command("llama", {"H100": 1}))


async def test_a_missing_workload_is_a_permanent_not_found(
    kube: Cluster, backend: KubernetesBackend, scale_command
) -> None:
    with pytest.raises(PermanentApplyError) as caught:
        await backend.apply(scale_command("ghost", {"H100": 1}))

    assert caught.value.reason == ResultReason.NOT_FOUND


async def test_throttling_is_temporary_with_the_servers_delay(
    kube: Cluster, backend: KubernetesBackend, scale_command
) -> None:
    kube.workload("llama", replicas=2)
    kube.k.override[kmock.method.GET, kmock.subresource("scale")] << status(
        429, "slow down", **{"Retry-After": "3"}
    )

    with pytest.raises(TemporaryApplyError) as caught:
        await backend.apply(scale_command("llama", {"H100": 3}))

    assert (caught.value.reason, caught.value.delay_s) == (ResultReason.BACKEND_ERROR, 3.0)


async def test_an_unreachable_api_server_is_temporary(scale_command) -> None:
    # Nothing listens on port 9 (discard) of localhost; the connection is refused at once.
    api = ApiClient(Configuration(host="http://127.0.0.1:9"))
    backend = KubernetesBackend(api, KubernetesSettings(backoff_s=1.5))
    try:
        with pytest.raises(TemporaryApplyError) as caught:
            await backend.apply(scale_command("llama", {"H100": 1}))
    finally:
        await backend.aclose()

    assert caught.value.delay_s == 1.5
