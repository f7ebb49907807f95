"""GPU and model datasheets, and the serving profile (roofline) derived from them.

The product needs these numbers (the hub's capacity priors and default prices) and so does the
simulator; they live here, in the shared package, so that the hub's control path never imports the
simulator's physics (``shared.simulation``) to get them.

Every hardware number comes from a public datasheet and every price from a public on-demand list
price; none is tuned to the traces the simulator replays. A ``ServingProfile`` turns a GPU and a
model into the few quantities the replica model needs (prefill speed, decode step time, KV-cache
capacity) with a roofline: prefill is compute-bound, decode is memory-bandwidth-bound, and a mixed
step costs whichever bound is higher. The efficiency constants (``MFU``, ``MBU``, the per-step
overhead) are assumptions, stated with their reasoning in ``docs/simulator.md``.

Prices are AWS EC2 on-demand, Linux, us-east-1, per instance divided by its GPUs, as listed before
AWS's June 2025 cut of P4/P5 on-demand prices (up to ~45 %). They include the host (CPU, RAM,
network) of the instance, so they are "price per GPU-hour as rented", not per bare GPU. The point
is the *ratio* between GPU types for cost comparisons, not an up-to-date bill.
"""

from __future__ import annotations

from dataclasses import dataclass

MFU = 0.5
"""Model FLOPs utilisation reached by prefill. Large prefill GEMMs reach 50-60 % of dense peak in
vLLM/SGLang profiles; 0.5 is a round, slightly conservative value."""

MBU = 0.7
"""Memory bandwidth utilisation reached by decode. Decode kernels stream weights and KV at 60-80 %
of HBM peak; 0.7 sits in the middle."""

STEP_OVERHEAD_S = 0.001
"""Fixed cost of one engine step (scheduling, sampling, kernel launches), with CUDA graphs on."""

MEMORY_FRACTION = 0.9
"""Share of GPU memory the engine may use (vLLM's ``gpu_memory_utilization`` default)."""

DEFAULT_MAX_BATCH = 256
"""Most sequences one replica runs at once (vLLM's ``max_num_seqs`` default)."""

DEFAULT_CHUNK_TOKENS = 2048
"""Prefill tokens one step may carry under chunked prefill (order of vLLM's online-serving
``max_num_batched_tokens``; the exact default varies by version and GPU)."""

REFERENCE_CONTEXT_TOKENS = 2048
"""Context length per sequence assumed when a profile quotes one decode throughput figure (used
only by the router's work estimate, never by the step physics)."""

IDLE_POWER_RATIO = 0.15
"""Idle power as a share of TDP. Not in the datasheets: an assumption (an idle H100 SXM draws on
the order of 70-100 W, an L4 around 15-20 W)."""


@dataclass(frozen=True, slots=True)
class GpuProfile:
    """One GPU model as its datasheet describes it, plus an on-demand price."""

    gpu_type: str
    product_label: str
    """Value of the node label ``nvidia.com/gpu.product`` set by GPU feature discovery."""
    memory_bytes: float
    bf16_dense_flops: float
    """Dense (no sparsity) BF16 tensor-core FLOP/s."""
    memory_bandwidth_bytes_per_s: float
    tdp_w: float
    price_per_gpu_hour: float
    price_source: str

    @property
    def idle_power_w(self) -> float:
        return self.tdp_w * IDLE_POWER_RATIO


GPU_PROFILES: dict[str, GpuProfile] = {
    p.gpu_type: p
    for p in (
        # NVIDIA H100 Tensor Core GPU datasheet, SXM5: 989 TFLOPS dense BF16 (1,979 with sparsity),
        # 80 GB HBM3, 3.35 TB/s, up to 700 W.
        GpuProfile(
            gpu_type="H100",
            product_label="NVIDIA-H100-80GB-HBM3",
            memory_bytes=80e9,
            bf16_dense_flops=989e12,
            memory_bandwidth_bytes_per_s=3.35e12,
            tdp_w=700.0,
            price_per_gpu_hour=98.32 / 8,
            price_source="AWS p5.48xlarge (8x H100) on-demand us-east-1 $98.32/h, pre-June-2025 list",
        ),
        # NVIDIA A100 Tensor Core GPU datasheet, SXM4 40 GB: 312 TFLOPS dense BF16, 1,555 GB/s, 400 W.
        GpuProfile(
            gpu_type="A100",
            product_label="NVIDIA-A100-SXM4-40GB",
            memory_bytes=40e9,
            bf16_dense_flops=312e12,
            memory_bandwidth_bytes_per_s=1.555e12,
            tdp_w=400.0,
            price_per_gpu_hour=32.77 / 8,
            price_source="AWS p4d.24xlarge (8x A100 40GB) on-demand us-east-1 $32.77/h, pre-June-2025 list",
        ),
        # NVIDIA L4 datasheet: 121 TFLOPS dense BF16 (242 with sparsity), 24 GB GDDR6, 300 GB/s, 72 W.
        GpuProfile(
            gpu_type="L4",
            product_label="NVIDIA-L4",
            memory_bytes=24e9,
            bf16_dense_flops=121e12,
            memory_bandwidth_bytes_per_s=0.3e12,
            tdp_w=72.0,
            price_per_gpu_hour=0.805,
            price_source="AWS g6.xlarge (1x L4) on-demand us-east-1 $0.805/h",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """A served model: how much it computes per token and how much memory it holds."""

    name: str
    params: float
    weights_bytes: float
    kv_bytes_per_token: float
    """2 (K and V) x layers x KV heads x head dim x bytes per element."""


DEFAULT_MODEL = ModelProfile(
    name="Llama-3.1-8B-Instruct (BF16)",
    params=8.03e9,
    weights_bytes=16.06e9,
    # 32 layers, 8 KV heads (GQA), head dim 128, BF16: 2 x 32 x 8 x 128 x 2 bytes.
    kv_bytes_per_token=2 * 32 * 8 * 128 * 2,
)


@dataclass(frozen=True, slots=True)
class ServingProfile:
    """What one replica (``gpus_per_replica`` GPUs of one type, tensor-parallel) can do.

    A step carrying ``batch`` decoding sequences with ``context_tokens`` of KV in total, plus
    ``prefill_tokens`` of prompt, takes::

        overhead + max((weights + context_tokens x kv_bytes) / (bandwidth x MBU),
                       (batch + prefill_tokens) x 2 x params / (flops x MFU))

    For decode alone this is WVA's ``ITL = alpha + beta x batch`` with alpha = overhead + weight
    read time and beta = KV read time of one sequence's context, until compute becomes the bound.
    """

    gpu: GpuProfile
    model: ModelProfile
    gpus_per_replica: int
    weights_read_s: float
    kv_read_s_per_token: float
    compute_s_per_token: float
    step_overhead_s: float
    kv_capacity_tokens: int
    max_batch: int
    chunk_tokens: int
    cold_start_s: float

    @property
    def prefill_tokens_per_s(self) -> float:
        """Compute-bound prompt throughput: flops x MFU / (2 x params)."""
        return 1.0 / self.compute_s_per_token

    def step_s(self, batch: int, context_tokens: float, prefill_tokens: float = 0.0) -> float:
        memory_s = self.weights_read_s + context_tokens * self.kv_read_s_per_token
        compute_s = (batch + prefill_tokens) * self.compute_s_per_token
        return self.step_overhead_s + (memory_s if memory_s > compute_s else compute_s)

    def decode_step_s(self, batch: int, context_tokens: float) -> float:
        """Time of one decode step (the inter-token latency every running sequence sees)."""
        return self.step_s(batch, context_tokens)

    @property
    def decode_tokens_per_s(self) -> float:
        """Saturated decode throughput at ``REFERENCE_CONTEXT_TOKENS`` per sequence."""
        batch = max(1, min(self.max_batch, self.kv_capacity_tokens // REFERENCE_CONTEXT_TOKENS))
        return batch / self.decode_step_s(batch, batch * REFERENCE_CONTEXT_TOKENS)

    @property
    def gpu_hour_price(self) -> float:
        """Price of one replica-hour."""
        return self.gpu.price_per_gpu_hour * self.gpus_per_replica


def serving_profile(
    gpu: GpuProfile,
    model: ModelProfile = DEFAULT_MODEL,
    *,
    gpus_per_replica: int = 1,
    cold_start_s: float = 90.0,
    max_batch: int = DEFAULT_MAX_BATCH,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
) -> ServingProfile:
    """Derive a replica's serving profile by roofline.

    Tensor parallelism over ``gpus_per_replica`` GPUs is taken as ideal (flops, bandwidth and
    memory add up; no communication cost). Raises ``ValueError`` if the weights do not fit.
    """
    if gpus_per_replica < 1:
        raise ValueError(f"gpus_per_replica must be at least 1, got {gpus_per_replica}")
    if cold_start_s < 0:
        raise ValueError(f"cold_start_s must not be negative, got {cold_start_s}")
    g = gpus_per_replica
    usable = gpu.memory_bytes * g * MEMORY_FRACTION
    kv_capacity = int((usable - model.weights_bytes) // model.kv_bytes_per_token)
    if kv_capacity <= 0:
        raise ValueError(
            f"{model.name} ({model.weights_bytes / 1e9:.1f} GB of weights) does not fit on "
            f"{g}x {gpu.gpu_type} ({usable / 1e9:.1f} GB usable)"
        )
    bandwidth = gpu.memory_bandwidth_bytes_per_s * g * MBU
    return ServingProfile(
        gpu=gpu,
        model=model,
        gpus_per_replica=g,
        weights_read_s=model.weights_bytes / bandwidth,
        kv_read_s_per_token=model.kv_bytes_per_token / bandwidth,
        compute_s_per_token=2.0 * model.params / (gpu.bf16_dense_flops * g * MFU),
        step_overhead_s=STEP_OVERHEAD_S,
        kv_capacity_tokens=kv_capacity,
        max_batch=max_batch,
        chunk_tokens=chunk_tokens,
        cold_start_s=cold_start_s,
    )
