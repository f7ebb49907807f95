"""The simulated fleet: clusters of GPU nodes, workloads replaying traces, one shared clock.

``SimWorld`` owns everything that spans replicas: the clock and its event order, GPU placement
(a replica holds whole GPUs on one node from creation until it is removed or drained), the global
router, scale-up/down, and accounting. Replicas (``replica.py``) own the serving physics and
``sampling.py`` owns how telemetry is derived; this module only wires them together.

Routing: each workload sits behind one global gateway and is served from every cluster. An arriving
request goes to the ready replica, in any cluster and GPU type, with the shortest expected delay:
its outstanding work at full speed plus the request's own work on that replica (prompt at prefill
speed, output at saturated decode speed). When no ready replica can take it, the request waits in
the gateway queue (reported in the gateway cluster's ``requests_waiting``) and is dispatched the
moment a replica becomes ready; its TTFT includes that wait. Nothing times out or is dropped.

Scale-down removes starting replicas first (newest first, their GPUs are freed at once), then the
ready replica with the least outstanding work. A removed ready replica drains: the router stops
sending to it, its not-yet-admitted requests go back through the router (keeping their arrival
time), its running requests finish, and it holds (and is billed for) its GPUs until the last one
does - like a terminating pod with a graceful shutdown.

Determinism: the world has no randomness and no wall clock; the same specs and the same calls give
the same results. Events at the same time run as: replicas becoming ready, counter checkpoints,
then arrivals in trace order (workloads in the order given).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Mapping, Sequence

from shared.gpus import GPU_PROFILES, ServingProfile, serving_profile
from shared.messages import (
    MAX_RECENT_STARTS,
    GpuNode,
    RoutingRule,
    Samples,
    StartTier,
    StartTimes,
    VariantStatus,
    WorkloadRef,
)
from shared.simulation.ledger import CompletedRequest, Ledger
from shared.simulation.replica import Replica, Request
from shared.simulation.sampling import build_samples
from shared.simulation.specs import (
    CapacityError,
    ClusterSpec,
    NodeSpec,
    UnknownTargetError,
    WorkloadSpec,
    WorkloadStatus,
)


class _Node:
    __slots__ = ("capacity", "free_ids", "gpu_type", "name")

    def __init__(self, spec: NodeSpec) -> None:
        self.name = spec.name
        self.gpu_type = spec.gpu_type
        self.capacity = spec.gpus
        self.free_ids = list(range(spec.gpus))


class _Workload:
    __slots__ = ("gateway", "gateway_cluster", "key", "ledgers", "live", "next_index", "profiles", "ready",
                 "ref", "retired", "routing", "spec", "types_seen")

    def __init__(self, spec: WorkloadSpec, clusters: Sequence[str], sink: list[CompletedRequest]) -> None:
        self.spec = spec
        self.key = spec.key
        self.ref = WorkloadRef(namespace=spec.namespace, name=spec.name)
        self.next_index = 0
        self.live: list[Replica] = []
        """Replicas not removed: starting, ready (not draining)."""
        self.ready: list[Replica] = []
        self.retired: list[Replica] = []
        """Draining and removed replicas, kept while they may fall in a telemetry window."""
        self.gateway: deque[Request] = deque()
        self.gateway_cluster = spec.gateway_cluster or clusters[0]
        self.ledgers = {c: Ledger(c, spec.key, sink) for c in clusters}
        self.profiles: dict[str, ServingProfile] = {}
        self.types_seen: dict[str, set[str]] = {c: set() for c in clusters}
        self.routing: tuple[RoutingRule, ...] = ()
        """The hub's routing rules (``set_routing``): a request goes only to GPU types its class may use."""

    def allowed(self, request: Request) -> frozenset[str] | None:
        """GPU types ``request`` may be sent to under the routing rules; None: any."""
        for rule in self.routing:
            if rule.covers(request.input_tokens):
                return frozenset(rule.gpu_types)
        return None

    def profile(self, gpu_type: str) -> ServingProfile:
        if gpu_type not in self.profiles:
            self.profiles[gpu_type] = serving_profile(
                GPU_PROFILES[gpu_type], self.spec.model, gpus_per_replica=self.spec.gpus_per_replica,
                cold_start_s=self.spec.cold_start_s,
            )
        return self.profiles[gpu_type]


class SimWorld:
    """Clusters, workloads and one clock. Advance it with ``advance``; read and act like a spoke."""

    def __init__(
        self, clusters: Sequence[ClusterSpec], workloads: Sequence[WorkloadSpec], *, step_s: float = 1.0,
        history_s: float = 900.0,
    ) -> None:
        """``step_s`` is the grid on which replica counters are checkpointed (the resolution of
        windowed utilisation and token rates); the serving physics is event-driven and exact
        regardless. ``history_s`` bounds how far back telemetry windows may reach."""
        if not clusters:
            raise ValueError("a world needs at least one cluster")
        if step_s <= 0 or history_s < step_s:
            raise ValueError("need step_s > 0 and history_s >= step_s")
        ids = [c.cluster_id for c in clusters]
        if len(set(ids)) != len(ids):
            raise ValueError("cluster ids repeat")
        self.now_s = 0.0
        self.step_s = step_s
        self.history_s = history_s
        self._nodes = {c.cluster_id: [_Node(n) for n in c.nodes] for c in clusters}
        self._completed: list[CompletedRequest] = []
        self._workloads: dict[str, _Workload] = {}
        for spec in workloads:
            if spec.key in self._workloads:
                raise ValueError(f"workload {spec.key} given twice")
            if spec.gateway_cluster is not None and spec.gateway_cluster not in self._nodes:
                raise ValueError(f"workload {spec.key}: unknown gateway_cluster {spec.gateway_cluster!r}")
            self._workloads[spec.key] = _Workload(spec, ids, self._completed)
        self._draining: list[Replica] = []
        self._ready_events: list[tuple[float, int, Replica, _Workload]] = []
        self._next_id = 0
        self._next_grid = step_s
        self._gpu_s_closed: dict[tuple[str, str], float] = {}
        self._gpu_s_closed_by_workload: dict[str, dict[tuple[str, str], float]] = {}
        """The same, per workload key (each replica belongs to one workload)."""
        self._arrivals: list[tuple[float, int, _Workload]] = []
        self._starts: dict[tuple[str, str, str], tuple[deque[float], list[int]]] = {}
        """(cluster, workload key, GPU type) -> the latest cold-start durations, and how many there were."""
        for order, w in enumerate(self._workloads.values()):
            self._push_arrival(w, order)
        for w in self._workloads.values():
            for (cluster_id, gpu_type), n in w.spec.initial_replicas.items():
                self._scale(w, cluster_id, {gpu_type: n}, warm=True)

    # --- clock ----------------------------------------------------------------------------------

    def advance(self, to_s: float) -> None:
        """Run the world until ``to_s`` (inclusive of events at ``to_s``)."""
        if to_s < self.now_s:
            raise ValueError(f"cannot go back in time: now {self.now_s}, asked {to_s}")
        arrivals, ready_events = self._arrivals, self._ready_events
        while True:
            t_ready = ready_events[0][0] if ready_events else float("inf")
            t_arrival = arrivals[0][0] if arrivals else float("inf")
            t_grid = self._next_grid
            t = min(t_ready, t_arrival, t_grid)
            if t > to_s:
                break
            if t_ready == t:
                _, _, replica, w = heapq.heappop(ready_events)
                if replica.end_s is None and not replica.draining:
                    self._become_ready(w, replica, t)
            elif t_grid == t:
                self._checkpoint(t)
            else:
                _, order, w = heapq.heappop(arrivals)
                spec = w.spec.trace
                i = w.next_index
                w.next_index += 1
                self._push_arrival(w, order)
                self._route(w, Request(spec.arrival_s[i], spec.input_tokens[i], spec.output_tokens[i]), t)
        for w in self._workloads.values():
            for r in w.ready:
                r.advance(to_s)
        for r in self._draining:
            r.advance(to_s)
        self.now_s = to_s
        self._sweep_drained()

    def _push_arrival(self, w: _Workload, order: int) -> None:
        trace = w.spec.trace
        if w.next_index < len(trace):
            heapq.heappush(self._arrivals, (trace.arrival_s[w.next_index], order, w))

    def _checkpoint(self, t: float) -> None:
        max_points = int(self.history_s / self.step_s) + 2
        for w in self._workloads.values():
            for r in w.ready:
                r.advance(t)
                r.checkpoint(max_points)
            horizon = t - self.history_s
            if w.retired and w.retired[0].end_s is not None and w.retired[0].end_s < horizon:
                w.retired = [r for r in w.retired if r.end_s is None or r.end_s >= horizon]
            if int(t / self.step_s) % 60 == 0:
                for ledger in w.ledgers.values():
                    ledger.trim(horizon)
        for r in self._draining:
            r.advance(t)
            r.checkpoint(max_points)
        self.now_s = t
        self._sweep_drained()
        self._next_grid += self.step_s

    def _become_ready(self, w: _Workload, replica: Replica, t: float) -> None:
        replica.ready = True
        replica.now = t
        if t > replica.created_s:  # replicas ready at creation (the initial fleet) never started
            recent, count = self._starts.setdefault(
                (replica.cluster_id, w.key, replica.gpu_type), (deque(maxlen=MAX_RECENT_STARTS), [0]))
            recent.append(t - replica.created_s)
            count[0] += 1
        w.ready.append(replica)
        if w.spec.flow_control is not None:
            replica.room_listener = lambda r, now: self._on_room(w, r, now)
        if w.gateway:
            queued = list(w.gateway)
            w.gateway.clear()
            for request in queued:
                self._route(w, request, t)

    # --- routing --------------------------------------------------------------------------------

    def _route(self, w: _Workload, request: Request, t: float) -> None:
        flow = w.spec.flow_control
        for r in w.ready:
            r.advance(t)  # may hand gateway requests to replicas that freed room (``_on_room``)
        if flow is not None and w.gateway:
            self._hold(w, request, t)  # first come, first served: behind those already waiting
            return
        best: Replica | None = None
        best_delay = float("inf")
        allowed = w.allowed(request)
        if allowed is not None and not any(r.gpu_type in allowed for r in w.ready):
            allowed = None  # none of its types is ready yet: any replica rather than none
        for r in w.ready:
            if not r.fits(request) or (allowed is not None and r.gpu_type not in allowed):
                continue
            if flow is not None and r.saturated(flow.queue_depth, flow.kv_cache_ratio):
                continue
            delay = r.work_s() + r.request_work_s(request)
            if delay < best_delay:
                best, best_delay = r, delay
        if best is None:
            self._hold(w, request, t)
            return
        if not request.counted:
            request.counted = True
            best.ledger.dispatched.append(t)
        best.enqueue(request)

    def _hold(self, w: _Workload, request: Request, t: float) -> None:
        w.gateway.append(request)
        if not request.counted:
            request.counted = True
            w.ledgers[w.gateway_cluster].dispatched.append(t)

    def _on_room(self, w: _Workload, replica: Replica, now: float) -> None:
        """Flow control: a request finished on ``replica``; send it the oldest waiting requests it has room for.

        The replica is mid-``advance`` at ``now``. Replicas are advanced one after another, so when
        two free room within one advance the one advanced first takes the head of the queue even
        if the other freed room a little earlier: a request can start up to that gap late.
        """
        flow = w.spec.flow_control
        if not w.gateway or flow is None or replica.draining or not replica.ready:
            return
        while w.gateway and not replica.saturated(flow.queue_depth, flow.kv_cache_ratio):
            i = self._next_for(w, replica)
            if i is None or not replica.fits(w.gateway[i]):
                return
            request = w.gateway[i]
            del w.gateway[i]
            replica.enqueue(request)

    @staticmethod
    def _next_for(w: _Workload, replica: Replica) -> int | None:
        """The oldest waiting request the routing rules let ``replica`` serve (the head, without rules)."""
        if not w.routing:
            return 0
        has_allowed_ready: dict[frozenset[str], bool] = {}
        for i, request in enumerate(w.gateway):
            allowed = w.allowed(request)
            if allowed is None or replica.gpu_type in allowed:
                return i
            if allowed not in has_allowed_ready:
                has_allowed_ready[allowed] = any(r.gpu_type in allowed for r in w.ready)
            if not has_allowed_ready[allowed]:
                return i  # none of its types is ready: any replica rather than none
        return None

    # --- scaling --------------------------------------------------------------------------------

    def set_routing(self, namespace: str, name: str, rules: Sequence[RoutingRule]) -> None:
        """The gateway's routing rules for a workload (the hub's ``ScaleCommand.routing``): each request
        goes, by shortest expected delay, only to ready replicas of the GPU types fast enough for its
        prompt-length class, or to any replica while none of those is ready. The rules' weights (the
        plan's preference) are not followed: shortest expected delay balances by itself."""
        self._workload(namespace, name).routing = tuple(rules)

    def routing(self, namespace: str, name: str) -> tuple[RoutingRule, ...]:
        """The routing rules the gateway follows for a workload (empty: none)."""
        return self._workload(namespace, name).routing

    def set_replicas(self, cluster_id: str, namespace: str, name: str, gpu_type: str, replicas: int) -> int:
        """Set the absolute replica count of one GPU type; returns the replicas now desired."""
        return self.scale(cluster_id, namespace, name, {gpu_type: replicas})[gpu_type]

    def scale(
        self, cluster_id: str, namespace: str, name: str, replicas_by_gpu_type: Mapping[str, int]
    ) -> dict[str, int]:
        """Set absolute replicas for several GPU types at once, all or nothing.

        Raises ``UnknownTargetError`` (no such cluster/workload), ``CapacityError`` (not enough free
        GPUs; nothing changed) or ``ValueError`` (negative count, unknown GPU type, model does not
        fit the GPU). Returns the desired replicas of every GPU type this workload has used here.
        """
        return self._scale(self._workload(namespace, name), cluster_id, replicas_by_gpu_type, warm=False)

    def _scale(
        self, w: _Workload, cluster_id: str, wanted: Mapping[str, int], *, warm: bool
    ) -> dict[str, int]:
        nodes = self._cluster_nodes(cluster_id)
        for gpu_type, n in wanted.items():
            if gpu_type not in GPU_PROFILES:
                raise ValueError(f"unknown gpu_type {gpu_type!r}; known: {sorted(GPU_PROFILES)}")
            if n < 0:
                raise ValueError(f"replicas must not be negative, got {n} for {gpu_type}")
            w.profile(gpu_type)  # raises ValueError if the model does not fit this GPU type
        g = w.spec.gpus_per_replica
        free = {node.name: len(node.free_ids) for node in nodes}
        removals: list[Replica] = []
        additions: list[tuple[str, _Node]] = []
        for gpu_type, n in wanted.items():
            current = [r for r in w.live if r.cluster_id == cluster_id and r.gpu_type == gpu_type]
            if n < len(current):
                starting = sorted((r for r in current if not r.ready), key=lambda r: -r.replica_id)
                ready = sorted((r for r in current if r.ready), key=lambda r: (r.work_s(), -r.replica_id))
                victims = (starting + ready)[: len(current) - n]
                removals += victims
                for r in victims:
                    if not r.ready:
                        free[r.node] += g
            for _ in range(n - len(current)):
                node = next((x for x in nodes if x.gpu_type == gpu_type and free[x.name] >= g), None)
                if node is None:
                    have = sum(free[x.name] for x in nodes if x.gpu_type == gpu_type)
                    raise CapacityError(
                        f"cluster {cluster_id}: {w.key} needs {n - len(current)} more replica(s) of "
                        f"{g}x {gpu_type}; not enough free {gpu_type} GPUs on one node ({have} free in total)"
                    )
                free[node.name] -= g
                additions.append((gpu_type, node))
        for r in removals:
            self._remove(w, r)
        for gpu_type, node in additions:
            self._add(w, cluster_id, gpu_type, node, warm=warm)
        for gpu_type in wanted:
            w.types_seen[cluster_id].add(gpu_type)
        return self._desired(w, cluster_id)

    def _add(self, w: _Workload, cluster_id: str, gpu_type: str, node: _Node, *, warm: bool) -> None:
        profile = w.profile(gpu_type)
        g = w.spec.gpus_per_replica
        ids, node.free_ids = node.free_ids[:g], node.free_ids[g:]
        ready_s = self.now_s if warm else self.now_s + profile.cold_start_s
        replica = Replica(
            replica_id=self._next_id, profile=profile, cluster_id=cluster_id, node=node.name,
            gpu_ids=tuple(f"{node.name}/gpu{i}" for i in ids), ledger=w.ledgers[cluster_id],
            created_s=self.now_s, ready_s=ready_s,
        )
        self._next_id += 1
        w.live.append(replica)
        if warm:
            self._become_ready(w, replica, self.now_s)
        else:
            heapq.heappush(self._ready_events, (ready_s, replica.replica_id, replica, w))

    def _remove(self, w: _Workload, r: Replica) -> None:
        w.live.remove(r)
        w.retired.append(r)
        if not r.ready:
            self._release(r, self.now_s)
            return
        w.ready.remove(r)
        r.draining = True
        # The drain ends when its last running request finishes, and not before it started.
        r.last_finish_s = max(r.last_finish_s, self.now_s)
        for request in r.take_waiting():
            self._route(w, request, self.now_s)
        self._draining.append(r)
        self._sweep_drained()

    def _sweep_drained(self) -> None:
        if any(r.running == 0 for r in self._draining):
            for r in [r for r in self._draining if r.running == 0]:
                self._draining.remove(r)
                self._release(r, r.last_finish_s)

    def _release(self, r: Replica, end_s: float) -> None:
        r.end_s = end_s
        node = next(n for n in self._nodes[r.cluster_id] if n.name == r.node)
        node.free_ids = sorted(node.free_ids + [int(i.rsplit("gpu", 1)[1]) for i in r.gpu_ids])
        key = (r.cluster_id, r.gpu_type)
        held = (end_s - r.created_s) * len(r.gpu_ids)
        self._gpu_s_closed[key] = self._gpu_s_closed.get(key, 0.0) + held
        mine = self._gpu_s_closed_by_workload.setdefault(r.ledger.workload, {})
        mine[key] = mine.get(key, 0.0) + held

    # --- reading --------------------------------------------------------------------------------

    @property
    def cluster_ids(self) -> list[str]:
        return list(self._nodes)

    @property
    def workload_refs(self) -> list[WorkloadRef]:
        return [w.ref for w in self._workloads.values()]

    def inventory(self, cluster_id: str) -> list[GpuNode]:
        return [
            GpuNode(
                node=n.name, gpu_product=GPU_PROFILES[n.gpu_type].product_label, gpu_type=n.gpu_type,
                capacity_gpus=n.capacity, allocatable_gpus=n.capacity, free_gpus=len(n.free_ids),
            )
            for n in self._cluster_nodes(cluster_id)
        ]

    def workload_states(self, cluster_id: str) -> list[WorkloadStatus]:
        self._cluster_nodes(cluster_id)
        states = []
        for w in self._workloads.values():
            desired = self._desired(w, cluster_id)
            ready = {t: 0 for t in desired}
            for r in w.ready:
                if r.cluster_id == cluster_id:
                    ready[r.gpu_type] += 1
            g = w.spec.gpus_per_replica
            variants = tuple(
                VariantStatus(
                    gpu_type=t, desired_replicas=desired[t], ready_replicas=ready[t], gpus_per_replica=g,
                    starts=self._start_times(cluster_id, w.key, t),
                )
                for t in sorted(desired)
            )
            states.append(WorkloadStatus(w.ref, sum(desired.values()), sum(ready.values()), g, variants))
        return states

    def _start_times(self, cluster_id: str, key: str, gpu_type: str) -> tuple[StartTimes, ...]:
        """The replicas' measured starts as a spoke reports them (protocol 1.3). The world models one
        start delay, with no image cache, so every start is ``cold``."""
        entry = self._starts.get((cluster_id, key, gpu_type))
        if entry is None:
            return ()
        recent, count = entry
        return (StartTimes(tier=StartTier.COLD, recent_s=tuple(recent), count=count[0]),)

    def samples(self, cluster_id: str, namespace: str, name: str, window_s: float) -> Samples:
        """Telemetry of one workload in one cluster over ``(now - window_s, now]``; see ``sampling``."""
        self._cluster_nodes(cluster_id)
        w = self._workload(namespace, name)
        replicas = [r for r in (*w.live, *w.retired) if r.cluster_id == cluster_id]
        return build_samples(
            now_s=self.now_s, window_s=window_s, ledger=w.ledgers[cluster_id], replicas=replicas,
            gateway_waiting=len(w.gateway) if w.gateway_cluster == cluster_id else None,
            workload_name=name,
        )

    def gateway_waiting(self, namespace: str, name: str) -> int:
        return len(self._workload(namespace, name).gateway)

    def unfinished_requests(self) -> int:
        """Requests that arrived and have not finished (queued anywhere or running)."""
        arrived = sum(w.next_index for w in self._workloads.values())
        return arrived - len(self._completed)

    # --- accounting -----------------------------------------------------------------------------

    def completed_requests(self) -> list[CompletedRequest]:
        """Every finished request so far, in completion order per replica (not globally sorted)."""
        return list(self._completed)

    def gpu_seconds(self, workload: str | None = None) -> dict[tuple[str, str], float]:
        """GPU-seconds held per (cluster_id, gpu_type), cold starts and drains included.

        ``workload`` (a ``namespace/name`` key) counts only that workload's replicas; the GPUs of
        several workloads sum to the whole fleet's.
        """
        if workload is None:
            totals = dict(self._gpu_s_closed)
            live = [r for w in self._workloads.values() for r in w.live]
        else:
            if workload not in self._workloads:
                raise UnknownTargetError(f"no workload {workload}")
            totals = dict(self._gpu_s_closed_by_workload.get(workload, {}))
            live = list(self._workloads[workload].live)
        for r in live:
            key = (r.cluster_id, r.gpu_type)
            totals[key] = totals.get(key, 0.0) + (self.now_s - r.created_s) * len(r.gpu_ids)
        for r in self._draining:
            if workload is not None and r.ledger.workload != workload:
                continue
            key = (r.cluster_id, r.gpu_type)
            totals[key] = totals.get(key, 0.0) + (self.now_s - r.created_s) * len(r.gpu_ids)
        return totals

    def cost(self, workload: str | None = None) -> float:
        """Dollars for the GPU-seconds so far at ``GpuProfile.price_per_gpu_hour`` (of one workload, if given)."""
        held = self.gpu_seconds(workload).items()
        return sum(s / 3600.0 * GPU_PROFILES[t].price_per_gpu_hour for (_, t), s in held)

    # --- helpers --------------------------------------------------------------------------------

    def _cluster_nodes(self, cluster_id: str) -> list[_Node]:
        try:
            return self._nodes[cluster_id]
        except KeyError:
            known = ", ".join(self._nodes)
            raise UnknownTargetError(f"no cluster {cluster_id!r}; clusters: {known}") from None

    def _workload(self, namespace: str, name: str) -> _Workload:
        try:
            return self._workloads[f"{namespace}/{name}"]
        except KeyError:
            raise UnknownTargetError(f"no workload {namespace}/{name}") from None

    def _desired(self, w: _Workload, cluster_id: str) -> dict[str, int]:
        desired = dict.fromkeys(sorted(w.types_seen[cluster_id]), 0)
        for r in w.live:
            if r.cluster_id == cluster_id:
                desired[r.gpu_type] = desired.get(r.gpu_type, 0) + 1
        return desired
