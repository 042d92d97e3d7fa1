"""What a trial builds before it trains: seeded RNGs, the encoded data, the base model with its
LoRA adapter (prepared for k-bit training when quantized), and the optimizer and schedule."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, TypeVar

from harness.config import TrainConfig

T = TypeVar("T")


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
    tests: list[Any]
    """The encoded test examples: measured once, on the adapter the trial keeps."""
    test_records: list[Any]
    """The test records themselves (the same sample), for the task metrics' prompts."""
    fingerprint: str
    """The dataset's fingerprint (its records and split)."""
    eval_fingerprint: str
    """The eval split's fingerprint: the base model's cached eval loss is keyed by it."""
    test_fingerprint: str
    """The test split's, likewise (empty without a test split)."""
    retention: list[Any]
    """The encoded general-text examples of the forgetting check (empty when it is off)."""
    retention_fingerprint: str
    """Their fingerprint."""
    profile: dict[str, Any]
    """The data's profile (`Ready.profile`), logged with the run's dataset inputs."""


def prepare_data(config: TrainConfig) -> Prepared:
    """The config's data loaded, checked, split and encoded, as `harness data check` does."""
    from harness.data.ready import ready_for_training
    from harness.data.records import fingerprint
    from harness.data.retention import retention_data, retention_records
    from harness.models import harness_home, training_tokenizer

    tokenizer = training_tokenizer(config.model)
    general = retention_records(config.retention, tokenizer=tokenizer)
    ready = ready_for_training(config.data, tokenizer, cache=harness_home(), general=general)
    split = ready.dataset.split
    retention, retention_fingerprint = retention_data(config.retention, tokenizer=tokenizer,
                                                      renderer=ready.renderer, records=general)
    tests = scored_sample(ready.tests, config.evaluation.max_test_examples,
                          seed=config.data.seed)
    return Prepared(tokenizer, ready.renderer, train=[e for _, e in ready.train],
                    evals=[e for _, e in ready.evals], eval_records=[r for r, _ in ready.evals],
                    tests=[e for _, e in tests], test_records=[r for r, _ in tests],
                    fingerprint=ready.dataset.fingerprint,
                    eval_fingerprint=fingerprint(split.eval),
                    # the base model's test loss is cached by it and the promotion gate
                    # compares versions by it: the split's own unless a sample was scored
                    test_fingerprint=(fingerprint(split.test) if tests is ready.tests
                                      else fingerprint(r for r, _ in tests)) if tests else "",
                    retention=retention, retention_fingerprint=retention_fingerprint,
                    profile=ready.profile(config.data.cutoff_len))


def scored_sample(pairs: list[T], cap: int, *, seed: int) -> list[T]:
    """At most ``cap`` of ``pairs`` (0: all), a seeded sample in their own order: the same
    examples for every trial of a study, spread over the whole split."""
    if not cap or len(pairs) <= cap:
        return pairs
    keep = sorted(random.Random(seed).sample(range(len(pairs)), cap))
    return [pairs[i] for i in keep]


def _adamw(model: Any, config: TrainConfig) -> Any:
    """AdamW over the adapter's parameters; with LoRA+ the B matrices in their own group."""
    import torch

    t, ratio = config.training, config.lora.loraplus_ratio
    if ratio != 1:
        from peft.optimizers import create_loraplus_optimizer

        return create_loraplus_optimizer(model, torch.optim.AdamW, lr=t.learning_rate,
                                         loraplus_lr_ratio=ratio, weight_decay=t.weight_decay)
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=t.learning_rate, weight_decay=t.weight_decay)


# Non-reentrant checkpointing: the reentrant kind breaks DistributedDataParallel's gradient hooks.
REENTRANT_FREE = {"use_reentrant": False}


def build_model(config: TrainConfig) -> Any:
    """The base model (quantized as configured) wrapped with a fresh LoRA adapter."""
    from harness.models import load_model
    from harness.trial.parallel import local_rank

    # one process per GPU when a trial runs data-parallel: each loads onto its own
    return add_lora(load_model(config.model, config.quantization, gpu=local_rank()), config)


def add_lora(model: Any, config: TrainConfig) -> Any:
    """``model`` prepared for training as configured (k-bit, gradient checkpointing) and
    wrapped with a fresh LoRA adapter."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

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
        target_modules=lora.target_modules, bias=lora.bias, task_type="CAUSAL_LM",
        use_rslora=lora.rslora, use_dora=lora.dora,
        init_lora_weights=True if lora.init == "default" else lora.init))


def steps_per_epoch(config: TrainConfig, n_train: int, *, processes: int = 1) -> float:
    """Optimizer steps one pass over ``n_train`` examples takes."""
    from harness.trial.batching import batches_per_epoch

    t = config.training
    return batches_per_epoch(n_train, t.micro_batch_size) / (t.gradient_accumulation * processes)


def build_optimizer(model: Any, config: TrainConfig, n_train: int, *,
                    processes: int = 1) -> tuple[Any, Any, int]:
    """(optimizer, scheduler, total optimizer steps) for ``n_train`` examples over
    ``processes`` data-parallel processes."""
    from transformers import get_scheduler

    from harness.trial.batching import batches_per_epoch

    t = config.training
    per_epoch = batches_per_epoch(n_train, t.micro_batch_size)
    total = t.max_steps if t.max_steps > 0 else math.ceil(
        math.ceil(t.epochs * per_epoch) / (t.gradient_accumulation * processes))
    optimizer = _adamw(model, config)
    name = "constant_with_warmup" if t.scheduler == "constant" else t.scheduler
    scheduler = get_scheduler(name, optimizer, num_warmup_steps=t.warmup_steps,
                              num_training_steps=total)
    return optimizer, scheduler, max(1, total)
