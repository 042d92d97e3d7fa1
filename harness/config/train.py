"""One fine-tune's configuration (a `harness train` file, or one trial of a sweep):
dataclasses with a docstring per field, checked when built."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from harness.config.coerce import choice_problems, from_mapping, raise_problems
from harness.config.data import DataConfig, DataFormat
from harness.config.evaluation import EvaluationSettings, SampleSettings

DEFAULT_MODEL = "smollm2-135m-instruct"
"""The embedded model every config falls back to (`harness models` lists it)."""

QuantMode = Literal["none", "8bit", "4bit"]
QuantType = Literal["nf4", "fp4"]
ComputeDtype = Literal["auto", "float32", "bfloat16", "float16"]
LoraBias = Literal["none", "all", "lora_only"]
Scheduler = Literal["linear", "cosine", "constant"]
LoraInit = Literal["default", "gaussian", "orthogonal"]


@dataclass
class QuantConfig:
    """How the frozen base model is loaded (bitsandbytes)."""

    mode: QuantMode = "none"
    """`none` (bf16 on GPU, fp32 on CPU), `8bit` (LLM.int8) or `4bit` (QLoRA)."""
    quant_type: QuantType = "nf4"
    """4-bit only: the 4-bit data type."""
    double_quant: bool = True
    """4-bit only: quantize the quantization constants too (saves ~0.4 bit per parameter)."""
    compute_dtype: ComputeDtype = "auto"
    """4-bit only: dtype of the matmuls; `auto` is bfloat16 on GPU, float32 on CPU."""

    def __post_init__(self) -> None:
        raise_problems(choice_problems(self))



@dataclass
class LoraSettings:
    """The adapter: where LoRA matrices go and how large they are."""

    r: int = 8
    """Rank of the update matrices."""
    alpha: float = 16.0
    """Scaling numerator: the update is scaled by alpha / r."""
    dropout: float = 0.05
    """Dropout on the LoRA input."""
    target_modules: list[str] | str = "all-linear"
    """`all-linear` (every linear layer but the output head) or a list of module names."""
    bias: LoraBias = "none"
    """Which biases train."""
    rslora: bool = False
    """rsLoRA: scale the update by alpha/sqrt(r) instead of alpha/r, so that a high rank is
    not learned more slowly than a low one."""
    dora: bool = False
    """DoRA: learn each weight's magnitude apart from its direction (slower per step)."""
    loraplus_ratio: float = 1.0
    """LoRA+: the B matrices learn this many times faster than the A matrices (1: plain LoRA;
    its authors suggest 16)."""
    init: LoraInit = "default"
    """How the adapter starts: default (A Kaiming-uniform, B zero), gaussian (A normal, B
    zero) or orthogonal (A and B from orthogonal halves of one random rotation, so both learn
    from the first step while their product is still zero; needs an even r). Every choice starts
    from the base model's outputs. (PiSSA and OLoRA change the base weights, so the adapter
    would not apply to the plain base model: not offered.)"""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.loraplus_ratio < 1:
            problems.append(f"loraplus_ratio: {self.loraplus_ratio} must be at least 1")
        if self.init == "orthogonal" and self.r % 2:
            problems.append(f"init: orthogonal needs an even r, and r is {self.r}")
        if self.r < 1:
            problems.append(f"r: {self.r} must be at least 1")
        if self.alpha <= 0:
            problems.append(f"alpha: {self.alpha} must be positive")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout: {self.dropout} must be in [0, 1)")
        if isinstance(self.target_modules, list) and not self.target_modules:
            problems.append("target_modules: an empty list targets nothing")
        problems.extend(choice_problems(self))
        raise_problems(problems)


@dataclass
class TrainingSettings:
    """The optimisation: how long, how fast, how often to evaluate and save."""

    epochs: float = 1.0
    """Passes over the training split (ignored when max_steps > 0)."""
    max_steps: int = -1
    """Optimizer steps to run; -1 to run `epochs`."""
    micro_batch_size: int = 4
    """Sequences per forward pass."""
    gradient_accumulation: int = 1
    """Micro-batches per optimizer step."""
    micro_batch_parts: int = 1
    """Each micro-batch goes through the model in this many parts, their losses weighted by
    their tokens: the same examples, steps and gradients in less memory. A trial that runs out
    of memory is retried once with twice as many parts (forward passes of half as many
    sequences, twice as many of them per step)."""
    learning_rate: float = 2e-4
    """Peak learning rate of AdamW."""
    scheduler: Scheduler = "cosine"
    """The learning-rate schedule after warmup."""
    warmup_steps: int = 0
    """Optimizer steps of linear warmup from 0 to learning_rate."""
    weight_decay: float = 0.0
    """AdamW's decoupled weight decay on the adapter weights."""
    max_grad_norm: float = 1.0
    """Gradient clipping; 0 disables it."""
    seed: int = 42
    """Seed of the weights' initialisation and of the batch order."""
    gradient_checkpointing: bool = False
    """Trade compute for memory on long sequences."""
    eval_steps: int = 0
    """Evaluate every this many optimizer steps (0: only at the end)."""
    save_steps: int = 0
    """Checkpoint every this many optimizer steps (0: only the final adapter)."""
    logging_steps: int = 1
    """Emit a step event every this many optimizer steps."""
    num_processes: int = 1
    """Data-parallel processes for one trial (accelerate's num_processes), one per GPU; each
    takes its own micro-batches, so a step trains micro_batch_size x gradient_accumulation x
    num_processes sequences. In a sweep, a trial holds this many GPUs."""

    @property
    def forward_batch(self) -> int:
        """Sequences per forward pass: a part of a micro-batch."""
        return -(-self.micro_batch_size // self.micro_batch_parts)

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.max_steps <= 0 and self.epochs <= 0:
            problems.append("epochs: must be positive when max_steps is not set")
        for key in ("micro_batch_size", "gradient_accumulation", "micro_batch_parts",
                    "logging_steps", "num_processes"):
            if getattr(self, key) < 1:
                problems.append(f"{key}: must be at least 1")
        for key in ("warmup_steps", "weight_decay", "max_grad_norm", "eval_steps",
                    "save_steps"):
            if getattr(self, key) < 0:
                problems.append(f"{key}: must be 0 or more")
        if self.micro_batch_parts > self.micro_batch_size:
            problems.append(f"micro_batch_parts: {self.micro_batch_parts} parts of a micro-batch "
                            f"of {self.micro_batch_size}; at most micro_batch_size")
        if not 0 < self.learning_rate < 1:
            problems.append(f"learning_rate: {self.learning_rate} is not a learning rate")
        problems.extend(choice_problems(self))
        raise_problems(problems)


@dataclass
class RetentionSettings:
    """General text the adapter should not forget: its loss there, beside the base model's,
    measured once on the adapter a trial keeps (promotion gates on it)."""

    enabled: bool = True
    """Measure it (false: no retention figures, and promotion does not gate on them)."""
    path: str | None = None
    """Its data, in any data format; None: the general-instruction sample shipped with the
    harness (unrelated to any one domain)."""
    format: DataFormat = "auto"
    """Its data format, as `data.format`."""
    max_records: int = 64
    """At most this many of its records are used (the first ones)."""
    cutoff_len: int = 256
    """Tokens each of its examples is cut to (its own: the training cutoff suits other data)."""

    def __post_init__(self) -> None:
        problems = choice_problems(self)
        if self.max_records < 1:
            problems.append("max_records: must be at least 1")
        if self.cutoff_len < 8:
            problems.append(f"cutoff_len: {self.cutoff_len} is too short; use at least 8")
        raise_problems(problems)


@dataclass
class TrackingSettings:
    """Where the run is recorded."""

    uri: str | None = None
    """MLflow tracking URI; None uses MLFLOW_TRACKING_URI, else ./mlruns."""
    experiment: str = "harness"
    """The MLflow experiment the run goes to."""
    run_name: str | None = None
    """The run's name; None lets MLflow pick one."""

    def __post_init__(self) -> None:
        from harness.names import name_problem

        out = []
        for key in ("experiment", "run_name"):
            value = getattr(self, key)
            problem = None if value is None else name_problem(str(value))
            if problem:
                out.append(f"{key}: {value!r} {problem}")
        raise_problems(out)


@dataclass
class TrainConfig:
    """One fine-tune: a `harness train` file, or one trial of a sweep."""

    data: DataConfig
    """The training data and how it is tokenized."""
    model: str = DEFAULT_MODEL
    """Embedded model name, Hugging Face id, or local directory."""
    quantization: QuantConfig = field(default_factory=QuantConfig)
    """How the base model is loaded."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    """The adapter."""
    training: TrainingSettings = field(default_factory=TrainingSettings)
    """The optimisation."""
    samples: SampleSettings = field(default_factory=SampleSettings)
    """The comparison samples."""
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    """The general-text check against forgetting."""
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    """What the kept adapter is scored on at the end."""
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    """Where the run is recorded."""
    output_dir: str = "runs/train"
    """Checkpoints and the final adapter go here."""


def load_train_config(path: str) -> TrainConfig:
    """A `harness train` YAML file, every problem reported at once with its key path."""
    from harness.yamlfile import read_yaml

    return from_mapping(TrainConfig, read_yaml(path, "config file"), source=path)
