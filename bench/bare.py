"""The bare peft training loop the benchmarks compare the harness with: what a user would write
without it. Same data, base model and batches as a harness trial; nothing else."""

from __future__ import annotations

import time
from typing import Any

from harness.config import TrainConfig


def build(config: TrainConfig) -> tuple[Any, Any, Any, str]:
    """(prepared data, peft model, optimizer, device), the base loaded as a trial loads it."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from harness.models import device, load_model
    from harness.trial.setup import prepare_data, seed_everything

    seed_everything(config.training.seed)
    data = prepare_data(config)
    on = device()
    model = load_model(config.model, config.quantization, on=on)
    if config.quantization.mode != "none":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    lora = config.lora
    model = get_peft_model(model, LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=lora.target_modules, task_type="CAUSAL_LM"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=config.training.learning_rate)
    return data, model, optimizer, on


def train(config: TrainConfig, data: Any, model: Any, optimizer: Any, on: str, *,
          warmup: int = 0) -> float:
    """Forward, backward, clip, step for max_steps; tokens/s over the steps after ``warmup``."""
    import torch

    from harness.trial.batching import collate, iterate

    t, d = config.training, config.data
    batches = iterate(data.train, batch_size=t.micro_batch_size, seed=t.seed, start_epoch=0,
                      skip=0, epochs=10_000, batching=d.batching)
    model.train()
    tokens, start = 0, time.perf_counter()
    for step in range(t.max_steps):
        if step == warmup:
            start, tokens = time.perf_counter(), 0
        examples = next(batches)[1]
        batch = collate(examples, data.tokenizer.pad_token_id, packed=d.batching == "packed",
                        row_tokens=d.cutoff_len)
        tokens += sum(len(e.input_ids) for e in examples)
        loss = model(**{k: v.to(on) for k, v in batch.items()}).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
    return tokens / (time.perf_counter() - start)
