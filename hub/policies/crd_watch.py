"""The CRD source: ``AIInferenceAutoscalerPolicy`` objects in the hub's cluster, for GitOps tools.

One object is one policy: its id is ``metadata.name``, its ``spec`` the model's fields (camelCase or
snake_case). The watcher keeps a mirror of the objects with the usual list-then-watch: list, watch
from the list's ``resourceVersion``, re-watch from the last one seen when the server ends the stream
(``timeoutSeconds``), re-list on ``410 Gone`` (the version fell out of the server's window) and after
any other error, with exponential backoff and jitter. A reconciler turns the mirror into policies
and syncs them as the CRD source (``PolicyStore.sync``), after every change and every ``resync_s``:
a policy refused because another source owned it takes over once that source lets it go.

Nothing is synced before the first list succeeds, so a hub that cannot reach its API server (or
lacks RBAC, or the CRD is not installed) keeps the CRD policies its store already holds instead of
deleting them; it logs and retries.

**Namespaces.** All namespaces are watched (or only ``HUB_CRD_NAMESPACE``), and policy ids are
fleet-wide, so two objects with one name in two namespaces conflict: the older one (by
``creationTimestamp``, then namespace) is the policy, the other is rejected as ``DuplicateName``.

**Status.** Each object gets an ``Accepted`` condition: ``True`` with the store revision, or
``False`` with the reason (``Invalid`` naming the field, ``OwnedByOtherSource`` naming the owner,
``DuplicateName``, ``Conflict``). Writing it is best effort: without ``patch`` on the status
subresource the hub logs that once and goes on (the log still names every rejected object).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio import watch
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config.config_exception import ConfigException
from pydantic import ValidationError

from hub.policies.crd_schema import ACCEPTED, BUDGET_PLURAL, GROUP, NOT_IN_SPEC, PLURAL, VERSION
from hub.policies.store import ObjectStore, OwnershipConflict, PolicyError, Source
from hub.policy.budget import Budget
from hub.policy.model import Policy
from shared.bus import reconnect_delay
from shared.errors import ConfigurationError

logger = logging.getLogger(__name__)

Raw = dict[str, Any]
Key = tuple[str, str]
"""(namespace, name) of an object."""

MAX_MESSAGE_CHARS = 1000
"""Condition messages list field errors; a few are enough to fix the object."""


async def kube_configuration(kubeconfig: Path | None = None, context: str | None = None) -> k8s.Configuration:
    """The pod's service account, else a kubeconfig (the given one, else ``~/.kube/config``)."""
    configuration = k8s.Configuration()
    if kubeconfig is None:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
            return configuration
        except ConfigException:
            logger.info("not running in a pod; loading the default kubeconfig for the CRD watch")
    try:
        await k8s_config.load_kube_config(
            config_file=None if kubeconfig is None else str(kubeconfig),
            context=context,
            client_configuration=configuration,
        )
    except (ConfigException, OSError) as e:
        raise ConfigurationError(
            f"HUB_CRD_WATCH needs the pod's service account or a kubeconfig (HUB_KUBECONFIG): {e}"
        ) from e
    return configuration


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the hub made of one object; becomes its ``Accepted`` condition."""

    accepted: bool
    reason: str
    message: str
    revision: int | None = None


class ResourceVersionGone(Exception):
    """The watch's resourceVersion is too old for the server: list again."""


class CrdSource:
    """Watches the policy objects and keeps the store's CRD policies equal to the valid ones.

    The same for budgets: ``CrdSource.for_budgets`` watches ``AIInferenceBudget`` objects into the
    budget store, with the same rules and status conditions."""

    def __init__(
        self,
        store: ObjectStore[Any],
        configuration: k8s.Configuration,
        *,
        plural: str = PLURAL,
        parse: Callable[[Mapping[str, Any]], Policy | Budget] | None = None,
        namespace: str | None = None,
        resync_s: float = 60.0,
        watch_timeout_s: int = 300,
        request_timeout_s: float = 15.0,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
    ) -> None:
        self.store = store
        self.configuration = configuration
        self.plural = plural
        self.parse = parse or policy_of
        self.kind = store.kind
        self.namespace = namespace
        self.resync_s = resync_s
        self.watch_timeout_s = watch_timeout_s
        self.request_timeout_s = request_timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.objects: dict[Key, Raw] = {}
        """The mirror: every policy object, as the API server sent it."""
        self.verdicts: dict[Key, Verdict] = {}
        """The last reconcile's verdict per object, for operators and tests."""
        self.synced = asyncio.Event()
        """Set after each reconcile; tests and the API can wait on it."""
        self._listed = False
        self._dirty = asyncio.Event()
        self._status_forbidden = False
        self._logged: dict[Key, Verdict] = {}

    # --- running --------------------------------------------------------------------------------

    async def run(self) -> None:
        async with k8s.ApiClient(self.configuration) as api:
            custom = k8s.CustomObjectsApi(api)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._watcher(custom), name=f"{self.kind} CRD watch")
                tg.create_task(self._reconciler(custom), name=f"{self.kind} CRD reconcile")

    async def _watcher(self, custom: k8s.CustomObjectsApi) -> None:
        attempt = 0
        while True:
            try:
                version = await self._list(custom)
                attempt = 0
                while True:
                    version = await self._watch(custom, version)
            except ResourceVersionGone:
                logger.info("%s CRD watch: resourceVersion expired; listing again", self.kind)
            except Exception as e:  # API, transport or decoding: list again after a backoff
                delay = reconnect_delay(attempt, base_s=self.backoff_base_s, cap_s=self.backoff_cap_s)
                attempt += 1
                logger.warning("%s CRD list/watch failed (attempt #%d: %s); retrying in %.1fs", self.kind, attempt,
                               _describe(e), delay)
                await asyncio.sleep(delay)

    async def _list(self, custom: k8s.CustomObjectsApi) -> str | None:
        timeout = self.request_timeout_s
        if self.namespace is None:
            result = await custom.list_cluster_custom_object(GROUP, VERSION, self.plural, _request_timeout=timeout)
        else:
            result = await custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, self.plural, _request_timeout=timeout
            )
        self.objects = {_key(obj): obj for obj in result.get("items") or []}
        self._listed = True
        self._dirty.set()
        version: str | None = (result.get("metadata") or {}).get("resourceVersion")
        return version

    async def _watch(self, custom: k8s.CustomObjectsApi, version: str | None) -> str | None:
        """Apply events until the server ends the stream; the version to watch from next."""
        call: Callable[..., Awaitable[Any]]
        args: tuple[str, ...]
        if self.namespace is None:
            call, args = custom.list_cluster_custom_object, (GROUP, VERSION, self.plural)
        else:
            call, args = custom.list_namespaced_custom_object, (GROUP, VERSION, self.namespace, self.plural)
        kwargs: dict[str, Any] = {
            "timeout_seconds": self.watch_timeout_s,
            "allow_watch_bookmarks": True,
            # The server ends the stream after timeout_seconds; reading nothing for longer means
            # the connection is dead.
            "_request_timeout": aiohttp.ClientTimeout(
                sock_connect=self.request_timeout_s, sock_read=self.watch_timeout_s + self.request_timeout_s
            ),
        }
        if version:
            kwargs["resource_version"] = version
        async with watch.Watch() as stream:
            try:
                async for event in stream.stream(call, *args, **kwargs):
                    self._on_event(event["type"], event["raw_object"])
            except ApiException as e:
                if e.status == 410:
                    raise ResourceVersionGone() from e
                raise
            return stream.resource_version or version

    def _on_event(self, kind: str, obj: Raw) -> None:
        if kind in ("ADDED", "MODIFIED"):
            self.objects[_key(obj)] = obj
        elif kind == "DELETED":
            self.objects.pop(_key(obj), None)
        else:  # BOOKMARK: only moves the resourceVersion
            return
        self._dirty.set()

    async def _reconciler(self, custom: k8s.CustomObjectsApi) -> None:
        attempt = 0
        while True:
            # NB: asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as the event is set, and this task would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.resync_s):
                    await self._dirty.wait()
            if not self._listed:
                continue
            self._dirty.clear()
            try:
                await self.reconcile(custom)
                attempt = 0
            except Exception as e:  # a store or bus failure: retry, never stop the hub
                delay = reconnect_delay(attempt, base_s=self.backoff_base_s, cap_s=self.backoff_cap_s)
                attempt += 1
                logger.warning(
                    "syncing %s CRDs failed (attempt #%d: %s: %s); retrying in %.1fs",
                    self.kind,
                    attempt,
                    type(e).__name__,
                    e,
                    delay,
                )
                self._dirty.set()
                await asyncio.sleep(delay)

    # --- reconciling ----------------------------------------------------------------------------

    async def reconcile(self, custom: k8s.CustomObjectsApi | None = None) -> dict[Key, Verdict]:
        """Sync the valid objects as CRD policies; report every object's verdict in its status."""
        objects = dict(self.objects)
        verdicts: dict[Key, Verdict] = {}
        chosen: dict[str, tuple[Key, Policy | Budget]] = {}
        for key in sorted(objects, key=lambda k: (_created(objects[k]), k)):
            try:
                policy = self.parse(objects[key])
            except ValidationError as e:
                verdicts[key] = Verdict(False, "Invalid", field_errors(e))
                continue
            if policy.id in chosen:
                other = chosen[policy.id][0]
                verdicts[key] = Verdict(
                    False,
                    "DuplicateName",
                    f"{other[0]}/{other[1]} (older) already defines {self.kind} {policy.id!r}; {self.kind} ids are "
                    "fleet-wide",
                )
                continue
            chosen[policy.id] = (key, policy)
        refused = await self.store.sync([p for _, p in chosen.values()], source=Source.CRD)
        for error in refused:
            key = chosen[error.policy_id][0]
            verdicts[key] = _refusal(error, self.kind)
        for policy_id, (key, _) in chosen.items():
            if key not in verdicts:
                stored = self.store.get(policy_id)
                revision = None if stored is None else stored.revision
                verdicts[key] = Verdict(True, "Synced", f"{self.kind} {policy_id!r} is in the hub's store", revision)
        self.verdicts = verdicts
        for key, verdict in verdicts.items():
            self._log(key, verdict)
            if custom is not None:
                await self._report(custom, key, verdict)
        self.synced.set()
        return verdicts

    def _log(self, key: Key, verdict: Verdict) -> None:
        if self._logged.get(key) == verdict:
            return
        self._logged[key] = verdict
        if verdict.accepted:
            logger.info("%s CRD %s/%s accepted (revision %s)", self.kind, *key, verdict.revision)
        else:
            logger.error("%s CRD %s/%s refused: %s: %s", self.kind, *key, verdict.reason, verdict.message)

    async def _report(self, custom: k8s.CustomObjectsApi, key: Key, verdict: Verdict) -> None:
        obj = self.objects.get(key)
        if obj is None or self._status_forbidden:
            return
        status = status_for(obj, verdict)
        if status is None:
            return
        try:
            patched = await custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                key[0],
                self.plural,
                key[1],
                {"status": status},
                # kubernetes_asyncio takes _content_type at run time; its .pyi leaves it out.
                _content_type="application/merge-patch+json",  # type: ignore[call-arg]
                _request_timeout=self.request_timeout_s,
            )
        except ApiException as e:
            if e.status == 403:
                self._status_forbidden = True
                logger.warning(
                    'cannot write the status of %s CRDs (403); grant the hub "patch" on '
                    "%s/status in apiGroup %s to see verdicts with kubectl. Going on without.",
                    self.kind,
                    self.plural,
                    GROUP,
                )
            elif e.status not in (404, 409):  # gone, or changed meanwhile: the next event reconciles again
                logger.warning("writing the status of %s CRD %s/%s failed: %s", self.kind, *key, _describe(e))
            return
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            logger.warning("writing the status of %s CRD %s/%s failed: %s", self.kind, *key, _describe(e))
            return
        if key in self.objects and isinstance(patched, dict):
            # The watch will deliver this too; keeping it now stops a reconcile in between re-patching.
            self.objects[key] = patched


def policy_of(obj: Mapping[str, Any]) -> Policy:
    """The policy an object holds: ``spec`` with ``metadata.name`` as the id."""
    return Policy.model_validate(_spec_with_id(obj))


def budget_of(obj: Mapping[str, Any]) -> Budget:
    """The budget an ``AIInferenceBudget`` object holds: ``spec`` with ``metadata.name`` as the id."""
    return Budget.model_validate(_spec_with_id(obj))


def _spec_with_id(obj: Mapping[str, Any]) -> dict[str, Any]:
    spec = dict(obj.get("spec") or {})
    for field in NOT_IN_SPEC:
        # The API server prunes these (they are not in the CRD's schema); a bare mirror may not.
        spec.pop(field, None)
    return {**spec, "id": (obj.get("metadata") or {}).get("name")}


def field_errors(error: ValidationError) -> str:
    """``spec.bounds.maxReplicas: Input should be ...; ...``, in the object's own field names."""
    parts = []
    for err in error.errors():
        loc = [str(p) for p in err["loc"]]
        where = "metadata.name" if loc[:1] == ["id"] else ".".join(["spec", *loc])
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)[:MAX_MESSAGE_CHARS]


def status_for(obj: Mapping[str, Any], verdict: Verdict, *, now: datetime | None = None) -> Raw | None:
    """The status to write for ``verdict``, or None when the object already says so."""
    current: Raw = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    old = next((c for c in current.get("conditions") or [] if c.get("type") == ACCEPTED), None)
    condition: Raw = {
        "type": ACCEPTED,
        "status": "True" if verdict.accepted else "False",
        "reason": verdict.reason,
        "message": verdict.message,
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    same = old is not None and all(old.get(k) == v for k, v in condition.items())
    if same and current.get("revision") == verdict.revision and current.get("observedGeneration") == generation:
        return None
    transition = old.get("lastTransitionTime") if old is not None and old.get("status") == condition["status"] else None
    condition["lastTransitionTime"] = transition or (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # A merge patch: None removes a key that no longer applies.
    return {"observedGeneration": generation, "revision": verdict.revision, "conditions": [condition]}


def _refusal(error: PolicyError, kind: str = "policy") -> Verdict:
    if isinstance(error, OwnershipConflict):
        owner = error.details.get("owner")
        return Verdict(
            False,
            "OwnedByOtherSource",
            f"{kind} {error.policy_id!r} is owned by the {owner} source; change or delete it there "
            f"first (the source that created a {kind} owns it)",
        )
    return Verdict(False, "Conflict", f"{error} {error.details}; will retry")


def budget_source(store: ObjectStore[Budget], configuration: k8s.Configuration, **kwargs: Any) -> CrdSource:
    """The CRD source of budgets: ``AIInferenceBudget`` objects into the budget store."""
    return CrdSource(store, configuration, plural=BUDGET_PLURAL, parse=budget_of, **kwargs)


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


def _created(obj: Mapping[str, Any]) -> str:
    # RFC 3339 in UTC sorts as text; an object without one (a bare mirror) sorts first.
    return str((obj.get("metadata") or {}).get("creationTimestamp") or "")


def _describe(e: BaseException) -> str:
    if isinstance(e, ApiException):
        return f"HTTP {e.status} {e.reason or ''}".strip()
    return f"{type(e).__name__}: {e}"
