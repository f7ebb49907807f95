"""One model server replica: continuous batching with chunked prefill, simulated event by event.

The replica is a fluid model of a vLLM-style engine. Admitted requests first prefill, then decode
one token per engine step. Between two events (a prompt finishing prefill, a request finishing
decode, or the caller's target time) the batch is constant, so the step time is constant and the
replica's progress is linear in time: it jumps from event to event instead of simulating every
~10 ms engine step. That keeps a one-hour, 20-replica replay to a few seconds of pure Python.

Model, per step (see ``ServingProfile.step_s``):

* every decoding request gets one token;
* the step also carries ``min(chunk_tokens, pending prompt tokens)`` of prefill, given to the
  admitted prompts first-come first-served, so a long prompt stretches the step (and the ITL of
  everyone decoding) while it prefills;
* prefill produces the first output token (TTFT = that moment - arrival); the remaining
  ``output_tokens - 1`` come from decode steps.

Admission is FIFO with head-of-line blocking, limited by ``max_batch`` running requests and by the
KV cache: a request reserves ``input + output`` tokens of KV on admission, so the engine never
needs to preempt (real vLLM admits optimistically and preempts; not modelled). The KV in use that
telemetry reports is the tokens actually held (prompt processed so far plus tokens generated).

Decode progress is one replica-wide counter, ``steps``: a request admitted to decode at
``steps = s0`` finishes when ``steps`` reaches ``s0 + output - 1``, so finishing is a heap pop.
The KV context read per step is ``ctx_base + n x steps``; it is re-evaluated at every event and
every ``advance`` call, so its growth between two of those is ignored (a sub-step error).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from heapq import heappop, heappush

from shared.gpus import ServingProfile
from shared.simulation.ledger import Ledger

_EPS_STEPS = 1e-9
_EPS_TOKENS = 1e-6


class Request:
    __slots__ = ("arrival_s", "counted", "decode_from", "first_token_s", "input_tokens", "output_tokens",
                 "prefill_left")

    def __init__(self, arrival_s: float, input_tokens: int, output_tokens: int) -> None:
        self.arrival_s = arrival_s
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.prefill_left = 0.0
        self.decode_from = 0.0
        self.first_token_s = 0.0
        self.counted = False
        """Whether some cluster's request rate already counted this request."""


class Replica:
    """A replica of one workload on ``gpu_ids`` of one node, from creation (cold start) to removal."""

    __slots__ = (
        "_busy_s",
        "_cp",
        "_cp_t",
        "_ctx_base",
        "_decode_rate",
        "_decoding",
        "_gen_tokens",
        "_prefill_pending",
        "_prefilling",
        "_prefilling_input",
        "_prompt_tokens",
        "_queued_decode",
        "_queued_prompt",
        "_reserved",
        "_seq",
        "_steps",
        "_target_sum",
        "_waiting",
        "cluster_id",
        "created_s",
        "draining",
        "end_s",
        "gpu_ids",
        "gpu_type",
        "last_finish_s",
        "ledger",
        "node",
        "now",
        "profile",
        "ready",
        "ready_s",
        "replica_id",
        "room_listener",
    )

    def __init__(
        self, *, replica_id: int, profile: ServingProfile, cluster_id: str, node: str,
        gpu_ids: tuple[str, ...], ledger: Ledger, created_s: float, ready_s: float,
    ) -> None:
        self.replica_id = replica_id
        self.profile = profile
        # A derived property of the profile, read for every routing decision: computed once.
        self._decode_rate = profile.decode_tokens_per_s
        self.cluster_id = cluster_id
        self.gpu_type = profile.gpu.gpu_type
        self.node = node
        self.gpu_ids = gpu_ids
        self.ledger = ledger
        self.created_s = created_s
        self.ready_s = ready_s
        self.ready = False
        self.draining = False
        self.end_s: float | None = None
        self.last_finish_s = created_s
        self.now = created_s
        self.room_listener: Callable[[Replica, float], None] | None = None
        """Called (replica, time) after a request finished here: the gateway's flow control hook."""
        self._waiting: deque[Request] = deque()
        self._prefilling: deque[Request] = deque()
        self._prefill_pending = 0.0
        self._prefilling_input = 0
        self._decoding: list[tuple[float, int, Request]] = []
        self._seq = 0
        self._steps = 0.0
        self._ctx_base = 0.0
        self._target_sum = 0.0
        self._reserved = 0
        self._queued_prompt = 0
        self._queued_decode = 0
        self._busy_s = 0.0
        self._gen_tokens = 0.0
        self._prompt_tokens = 0.0
        # Checkpoints of the cumulative counters; the first is the zero at creation.
        self._cp_t: list[float] = [created_s]
        self._cp: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)]

    # --- state the world and telemetry read -----------------------------------------------------

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._prefilling) + len(self._decoding)

    @property
    def idle(self) -> bool:
        return not (self._waiting or self._prefilling or self._decoding)

    def kv_used_tokens(self) -> float:
        held_prompt = self._prefilling_input - self._prefill_pending
        return self._ctx_base + len(self._decoding) * self._steps + held_prompt

    def saturated(self, queue_depth: int, kv_cache_ratio: float) -> bool:
        """Whether a flow-controlled gateway holds requests back from this replica (``FlowControl``)."""
        kv_limit = kv_cache_ratio * self.profile.kv_capacity_tokens
        return len(self._waiting) > queue_depth or self.kv_used_tokens() > kv_limit

    def fits(self, request: Request) -> bool:
        return request.input_tokens + request.output_tokens <= self.profile.kv_capacity_tokens

    def work_s(self) -> float:
        """Outstanding work in seconds at this replica's full speed (the router's estimate)."""
        p = self.profile
        prompt = self._queued_prompt + self._prefill_pending
        decode = self._target_sum - len(self._decoding) * self._steps + self._queued_decode
        return prompt * p.compute_s_per_token + decode / self._decode_rate

    def request_work_s(self, request: Request) -> float:
        prompt_s = request.input_tokens * self.profile.compute_s_per_token
        return prompt_s + (request.output_tokens - 1) / self._decode_rate

    # --- inputs ---------------------------------------------------------------------------------

    def enqueue(self, request: Request) -> None:
        """Accept a request at ``self.now`` (the caller advanced the replica first)."""
        self._waiting.append(request)
        self._queued_prompt += request.input_tokens
        self._queued_decode += request.output_tokens - 1
        self._admit()

    def take_waiting(self) -> list[Request]:
        """Hand back requests not yet admitted (on drain, so the router can place them elsewhere)."""
        taken = list(self._waiting)
        self._waiting.clear()
        self._queued_prompt = 0
        self._queued_decode = sum(r.output_tokens - 1 for r in self._prefilling)
        return taken

    # --- time -----------------------------------------------------------------------------------

    def advance(self, t: float) -> None:
        """Run the engine from ``self.now`` to ``t``, handling every event on the way."""
        now = self.now
        if t <= now:
            return
        p = self.profile
        pre = self._prefilling
        dec = self._decoding
        chunk_max = p.chunk_tokens
        while pre or dec:
            if pre and pre[0].prefill_left <= _EPS_TOKENS:
                # Finished by the same instant as a decode event handled just before.
                self.now = now
                self._first_token(now)
                self._admit()
                if self.room_listener is not None:
                    self.room_listener(self, now)
                continue
            n = len(dec)
            pending = self._prefill_pending
            if pre and pending <= _EPS_TOKENS:
                pending = self._prefill_pending = sum(r.prefill_left for r in pre)
            chunk = pending if pending < chunk_max else chunk_max
            step = p.step_s(n, self._ctx_base + n * self._steps, chunk)
            dt = t - now
            kind = 0
            if pre:
                tp = pre[0].prefill_left * step / chunk
                if tp <= dt:
                    dt, kind = (tp if tp > 0.0 else 0.0), 1
            if n:
                td = (dec[0][0] - self._steps) * step
                if td <= dt:
                    dt, kind = (td if td > 0.0 else 0.0), 2
            if dt > 0.0:
                self._busy_s += dt
                if n:
                    ds = dt / step
                    self._steps += ds
                    self._gen_tokens += n * ds
                if pre:
                    done = dt * chunk / step
                    pre[0].prefill_left -= done
                    self._prefill_pending -= done
                    self._prompt_tokens += done
                now += dt
            if kind == 0:
                break
            self.now = now
            if kind == 1:
                self._first_token(now)
            else:
                self._finish_decodes(now)
            self._admit()
            if self.room_listener is not None:
                self.room_listener(self, now)
        self.now = t

    def _first_token(self, now: float) -> None:
        r = self._prefilling.popleft()
        self._prompt_tokens += r.prefill_left
        self._prefill_pending -= r.prefill_left
        r.prefill_left = 0.0
        self._prefilling_input -= r.input_tokens
        if not self._prefilling:
            self._prefill_pending = 0.0
        self._queued_decode -= r.output_tokens - 1
        r.first_token_s = now
        self._gen_tokens += 1
        self.ledger.first_token(now, now - r.arrival_s)
        if r.output_tokens == 1:
            self._finish(r, now)
            return
        target = self._steps + (r.output_tokens - 1)
        r.decode_from = self._steps
        heappush(self._decoding, (target, self._seq, r))
        self._seq += 1
        self._ctx_base += r.input_tokens + 1 - self._steps
        self._target_sum += target

    def _finish_decodes(self, now: float) -> None:
        dec = self._decoding
        if self._steps < dec[0][0]:
            self._steps = dec[0][0]
        limit = self._steps + _EPS_STEPS
        while dec and dec[0][0] <= limit:
            target, _, r = heappop(dec)
            self._ctx_base -= r.input_tokens + 1 - r.decode_from
            self._target_sum -= target
            self._finish(r, now)
        if not dec:
            self._ctx_base = 0.0
            self._target_sum = 0.0

    def _finish(self, r: Request, now: float) -> None:
        self._reserved -= r.input_tokens + r.output_tokens
        self.last_finish_s = now
        self.ledger.complete(
            now, gpu_type=self.gpu_type, arrival_s=r.arrival_s, first_token_s=r.first_token_s,
            input_tokens=r.input_tokens, output_tokens=r.output_tokens,
        )

    def _admit(self) -> None:
        waiting = self._waiting
        p = self.profile
        while waiting and len(self._prefilling) + len(self._decoding) < p.max_batch:
            r = waiting[0]
            need = r.input_tokens + r.output_tokens
            if self._reserved + need > p.kv_capacity_tokens:
                break
            waiting.popleft()
            self._reserved += need
            self._queued_prompt -= r.input_tokens
            r.prefill_left = float(r.input_tokens)
            self._prefilling.append(r)
            self._prefill_pending += r.input_tokens
            self._prefilling_input += r.input_tokens

    # --- counters for windowed telemetry ----------------------------------------------------------

    def checkpoint(self, max_points: int) -> None:
        """Remember the cumulative counters at ``self.now`` (called on the world's grid)."""
        self._cp_t.append(self.now)
        self._cp.append((self._busy_s, self._gen_tokens, self._prompt_tokens))
        if len(self._cp_t) > 2 * max_points:
            del self._cp_t[:max_points]
            del self._cp[:max_points]

    def counters_at(self, x: float) -> tuple[float, float, float]:
        """(busy_s, generated tokens, prompt tokens) accumulated by time ``x``.

        Exact at checkpoints and at ``self.now``, linear in between.
        """
        if x >= self.now:
            return self._busy_s, self._gen_tokens, self._prompt_tokens
        i = bisect_right(self._cp_t, x)
        if i == 0:
            # Older than the oldest checkpoint kept: clamp (only after long runs trimmed history).
            return self._cp[0]
        t0, v0 = self._cp_t[i - 1], self._cp[i - 1]
        if i < len(self._cp_t):
            t1, v1 = self._cp_t[i], self._cp[i]
        else:
            t1, v1 = self.now, (self._busy_s, self._gen_tokens, self._prompt_tokens)
        if t1 <= t0:
            return v1
        f = (x - t0) / (t1 - t0)
        return (v0[0] + f * (v1[0] - v0[0]), v0[1] + f * (v1[1] - v0[1]), v0[2] + f * (v1[2] - v0[2]))
