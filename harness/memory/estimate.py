"""A trial's peak memory, before it launches: what each part of a LoRA fine-tune holds at the
peak of a training step, from the base model's shape and the trial's config.

The peak is at the start of the backward pass of the largest micro-batch (``micro_batch_size``
sequences of ``cutoff_len`` tokens), once AdamW's states exist:

- the base weights at their quantization (bitsandbytes keeps the embedding and the output head
  unquantized, and the harness loads a quantized model's other weights in float32);
- the adapter: LoRA's A and B (DoRA adds a magnitude per output), each weight with its gradient
  and AdamW's two moments, all float32 (peft keeps adapters in float32);
- activations kept for the backward pass, per token and layer (`block_activation_bytes`); with
  gradient checkpointing only each block's input, plus one block recomputed at a time;
- the output head's logits and the loss over the vocabulary, the largest single tensors of a
  small model;
- the process itself: on the CPU the libraries and data of the trial process, on a GPU the CUDA
  context; and the allocator's slack: on a GPU a share of what the tensors use, on the CPU a
  share of a forward pass's activations (glibc keeps much of what a forward pass frees).

Evaluation and generation run without gradients on batches no larger than training's, so
they peak below it. `bench/memory_estimate.py` measures the estimate against real
trials (`bench/RESULTS.md`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from harness.config import TrainConfig
from harness.memory.shape import LINEAR_MODULES, ModelShape

Device = Literal["cuda", "cpu"]

MB = 2**20
ADAPTER_BYTES = 4
"""peft keeps adapter weights in float32, and casts their inputs to it."""
ADAM_BYTES = 16
"""Per trainable parameter: float32 weight, gradient and AdamW's two moments."""
CUDA_CONTEXT_MB = 600.0
"""The CUDA context and kernels of one process (about 500-700 MB on recent drivers)."""
CUDA_SLACK = 0.10
"""Share the caching allocator holds beyond what tensors use (fragmentation, rounding)."""
LOGIT_COPIES = 2
"""Vocabulary-wide float32 tensors per token alive at the loss's backward, beside the logits
themselves: their log-softmax and its gradient."""


@dataclass(frozen=True)
class CpuFit:
    """What a trial process holds on the CPU beyond its tensors: figures fitted to measured
    peaks by `bench/memory_estimate.py --fit`; the estimate is linear in each."""

    runtime_mb: float = 400.0
    """Resident memory of a trial process before its model loads: Python, torch,
    transformers, peft, accelerate and bitsandbytes imported, the tokenizer and the data."""
    slack: float = 0.52
    """Resident memory glibc's allocator keeps beyond live tensors, as a share of what one
    forward pass without gradient checkpointing keeps."""
    slack_checkpointed: float = 0.89
    """The same share with gradient checkpointing (the blocks it recomputes free their tensors
    into the heap again, and the heap keeps them)."""
    dequantized: float = 1.1
    """bitsandbytes multiplies by float32 copies of the quantized weights on the CPU, and the
    heap keeps them: this many float32 copies of the quantized blocks (a GPU dequantizes one
    layer at a time into memory its allocator reuses)."""


CPU_FIT = CpuFit()
"""`bench/memory_estimate.py --fit` on this project's 2-core CPU machine, rounded
(bench/RESULTS.md)."""


@dataclass(frozen=True)
class Estimate:
    """A trial's estimated peak, by part, in MB (2**20 bytes)."""

    runtime_mb: float
    """The process: on the CPU its libraries and data, on a GPU the CUDA context."""
    weights_mb: float
    """The base model's weights as loaded (quantized or not; on the CPU with the float32
    copies bitsandbytes multiplies by)."""
    adapter_mb: float
    """The adapter's weights, gradients and AdamW states."""
    activations_mb: float
    """What the forward pass keeps for the backward pass, over all blocks."""
    logits_mb: float
    """The output head's logits and the loss over the vocabulary."""
    slack_mb: float
    """What the allocator holds beyond live tensors: the CUDA caching allocator's, or on the
    CPU the freed memory glibc keeps."""
    device: Device
    """The device it is sized for."""

    @property
    def tensors_mb(self) -> float:
        """What the tensors themselves hold: what CUDA's allocator reports as its peak
        (`torch.cuda.max_memory_allocated`), without the context and the slack."""
        return self.weights_mb + self.adapter_mb + self.activations_mb + self.logits_mb

    @property
    def measured_like_mb(self) -> float:
        """What the trial's measured `memory/peak_mb` measures: the tensors on a GPU (the
        allocator's peak), everything on the CPU (resident memory)."""
        return self.tensors_mb if self.device == "cuda" else self.total_mb

    @property
    def total_mb(self) -> float:
        """The estimated peak."""
        return sum(getattr(self, f.name) for f in fields(self) if f.name.endswith("_mb"))

    def line(self) -> str:
        """The estimate by part, on one line."""
        parts = [(f.name.removesuffix("_mb"), getattr(self, f.name)) for f in fields(self)
                 if f.name.endswith("_mb") and getattr(self, f.name) > 0]
        return " + ".join(f"{name} {value:,.0f}" for name, value in parts) + \
            f" = {self.total_mb:,.0f} MB on {self.device}"


def targeted(config: TrainConfig) -> list[str]:
    """The linear modules of a block the adapter is put on."""
    targets = config.lora.target_modules
    if targets == "all-linear":
        return list(LINEAR_MODULES)
    return [m for m in LINEAR_MODULES if m in targets]


def dense_bytes(config: TrainConfig, device: Device) -> int:
    """Bytes of one element of the model's dense dtype, its activations' and its unquantized
    weights': bfloat16 for an unquantized model on a GPU, float32 otherwise (the harness loads
    a quantized model's unquantized parts in float32)."""
    return 2 if device == "cuda" and config.quantization.mode == "none" else 4


def weight_bytes(config: TrainConfig, shape: ModelShape, device: Device) -> float:
    """The base model's weights as loaded."""
    q = config.quantization
    dense = dense_bytes(config, device)
    blocks = shape.layers * shape.block_parameters()
    others = shape.parameters() - blocks
    if q.mode == "none":
        per = float(dense)
    elif q.mode == "8bit":
        per = 1.0  # int8, with one float32 scale per output row (below)
    else:
        # 4-bit values, one absmax per block of 64: float32, or (double quantization) 8-bit
        # with one float32 per 256 of them
        per = 0.5 + (1 / 64 + 4 / (64 * 256) if q.double_quant else 4 / 64)
    rows = shape.layers * sum(shape.linear(m)[1] for m in LINEAR_MODULES)
    scales = 4 * rows if q.mode == "8bit" else 0
    return blocks * per + scales + others * dense


def adapter_parameters(config: TrainConfig, shape: ModelShape) -> int:
    """Trainable parameters: r x (in + out) per adapted module, and DoRA's magnitudes."""
    per_block = 0
    for module in targeted(config):
        n_in, n_out = shape.linear(module)
        per_block += config.lora.r * (n_in + n_out) + (n_out if config.lora.dora else 0)
    return shape.layers * per_block


def block_activation_bytes(config: TrainConfig, shape: ModelShape, device: Device) -> float:
    """Bytes one token keeps in one decoder block for its backward pass."""
    d = dense_bytes(config, device)
    h, i = shape.hidden, shape.intermediate
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    targets = set(targeted(config))
    # the two RMSNorms keep their float32 input and output; attention keeps q, k, v and its
    # output; the MLP gate, SiLU(gate) and up. A frozen layer needs only its weight to pass
    # the gradient on, an adapted one keeps its input for A's gradient
    kept = 2 * 2 * h * 4 + d * (2 * q + 2 * kv + 3 * i)
    kept += d * h * (bool(targets & {"q_proj", "k_proj", "v_proj"}) +
                     bool(targets & {"gate_proj", "up_proj"}))
    kept += d * (q * ("o_proj" in targets) + i * ("down_proj" in targets))
    a = ADAPTER_BYTES
    for module in targets:
        n_in, n_out = shape.linear(module)
        if d != a:  # peft casts each adapted layer's input to the adapter's float32: a copy
            kept += a * n_in
        kept += a * config.lora.r  # A's output, kept for B
        if config.lora.dropout > 0:  # a dropped-out copy of the input, and its mask
            kept += (a + 1) * n_in
        if config.lora.dora:  # the base and adapter outputs, scaled by the magnitude
            kept += 2 * d * n_out
    return kept


def training_bytes(config: TrainConfig, shape: ModelShape,
                   device: Device) -> tuple[float, float, float]:
    """(activations, logits, every block's activations) at the peak of a training step; the
    last is what a forward pass without gradient checkpointing keeps."""
    tokens = config.training.forward_batch * config.data.cutoff_len
    block = block_activation_bytes(config, shape, device)
    d = dense_bytes(config, device)
    every = shape.layers * block
    if config.training.gradient_checkpointing:
        kept = shape.layers * shape.hidden * d + block  # block inputs, one block recomputed
    else:
        kept = every
    if config.lora.dora:  # DoRA forms each adapted weight densely to take its norm
        kept += max((m * n for m, n in map(shape.linear, targeted(config))), default=0) \
            * d / tokens
    logits = LOGIT_COPIES * 4 * shape.vocab + d * shape.vocab
    return tokens * kept, tokens * logits, tokens * every


def estimate(config: TrainConfig, shape: ModelShape, *, device: Device,
             cpu: CpuFit = CPU_FIT) -> Estimate:
    """The peak memory of one process of the trial ``config`` on ``device`` (on the CPU with
    the fitted figures ``cpu``)."""
    activations, logits, every = training_bytes(config, shape, device)
    weights = weight_bytes(config, shape, device)
    adapter = adapter_parameters(config, shape) * ADAM_BYTES
    on_gpu = device == "cuda"
    if not on_gpu and config.quantization.mode != "none":
        weights += cpu.dequantized * 4 * shape.layers * shape.block_parameters()
    used = weights + adapter + activations + logits
    share = cpu.slack_checkpointed if config.training.gradient_checkpointing else cpu.slack
    slack = CUDA_SLACK * used if on_gpu else share * every
    return Estimate(runtime_mb=CUDA_CONTEXT_MB if on_gpu else cpu.runtime_mb,
                    weights_mb=weights / MB, adapter_mb=adapter / MB,
                    activations_mb=activations / MB, logits_mb=logits / MB,
                    slack_mb=slack / MB, device=device)
