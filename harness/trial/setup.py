"""What a trial builds before it trains: seeded RNGs, the encoded data, the base model with its
LoRA adapter (prepared for k-bit training when quantized), and the optimizer and schedule."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from harness.config import TrainConfig


def seed_everything(seed: int) -> None:
    """Python's and torch's RNGs (CPU and every GPU) from the trial's seed."""
    import torch

    random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


@dataclass
class Prepared:
    """The trial's data, encoded with the base model's tokenizer."""

    tokenizer: Any
    """The training tokenizer (its pad token set)."""
    renderer: Any
    """Renders records as the model's chat template; the samples' prompts use it too."""
    train: list[Any]
    """The encoded training examples."""
    evals: list[Any]
    """The encoded eval examples."""
    eval_records: list[Any]
    """The eval records themselves, for the comparison samples."""
    fingerprint: str
    """The dataset's fingerprint (its records and split)."""
    eval_fingerprint: str
    """The eval split's fingerprint: the base model's cached eval loss is keyed by it."""


def prepare_data(config: TrainConfig) -> Prepared:
    """The config's data loaded, checked, split and encoded, as `harness data check` does."""
    from harness.data.ready import ready_for_training
    from harness.data.records import fingerprint
    from harness.models import harness_home, training_tokenizer

    tokenizer = training_tokenizer(config.model)
    ready = ready_for_training(config.data, tokenizer, cache=harness_home())
    return Prepared(tokenizer, ready.renderer, [e for _, e in ready.train],
                    [e for _, e in ready.evals], [r for r, _ in ready.evals],
                    ready.dataset.fingerprint, fingerprint(ready.dataset.split.eval))


# Non-reentrant checkpointing: the reentrant kind breaks DistributedDataParallel's gradient hooks.
REENTRANT_FREE = {"use_reentrant": False}


def build_model(config: TrainConfig) -> Any:
    """The base model (quantized as configured) wrapped with a fresh LoRA adapter."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from harness.models import load_model

    model = load_model(config.model, config.quantization)
    if config.quantization.mode != "none":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.training.gradient_checkpointing,
            gradient_checkpointing_kwargs=REENTRANT_FREE)
    elif config.training.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=REENTRANT_FREE)
        model.enable_input_require_grads()
    lora = config.lora
    return get_peft_model(model, LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=lora.target_modules, bias=lora.bias, task_type="CAUSAL_LM"))


def build_optimizer(model: Any, config: TrainConfig, n_train: int, *,
                    processes: int = 1) -> tuple[Any, Any, int]:
    """(optimizer, scheduler, total optimizer steps) for ``n_train`` examples over
    ``processes`` data-parallel processes."""
    import torch
    from transformers import get_scheduler

    from harness.trial.batching import batches_per_epoch

    t = config.training
    per_epoch = batches_per_epoch(n_train, t.micro_batch_size)
    total = t.max_steps if t.max_steps > 0 else math.ceil(
        math.ceil(t.epochs * per_epoch) / (t.gradient_accumulation * processes))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=t.learning_rate, weight_decay=t.weight_decay)
    name = "constant_with_warmup" if t.scheduler == "constant" else t.scheduler
    scheduler = get_scheduler(name, optimizer, num_warmup_steps=t.warmup_steps,
                              num_training_steps=total)
    return optimizer, scheduler, max(1, total)
