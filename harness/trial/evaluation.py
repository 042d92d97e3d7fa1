"""Evaluation loss and perplexity on the eval split, and the base model's, cached."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from harness.data.encode import IGNORE_INDEX, Encoded
from harness.trial.batching import collate, micro_batches
from harness.trial.loop import TrainState
from harness.trial.parallel import same_everywhere, sum_across
from harness.trial.setup import Prepared


@torch.no_grad()
def eval_sums(model: Any, examples: Sequence[Encoded], *, batch_size: int, pad_id: int,
              device: Any, shard: tuple[int, int] = (0, 1)) -> tuple[float, int]:
    """Summed negative log-likelihood and trained-token count over this process's share
    (``shard`` = rank, processes) of the eval batches."""
    rank, processes = shard
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    batches = micro_batches(examples, batch_size=batch_size, seed=0, epoch=0, shuffle=False)
    for batch in batches[rank::processes]:
        tensors = {k: v.to(device) for k, v in collate(batch, pad_id).items()}
        n = int((tensors["labels"][:, 1:] != IGNORE_INDEX).sum())
        if n == 0:
            continue
        loss = model(**tensors).loss
        total += float(loss) * n
        tokens += n
    model.train(was_training)
    return total, tokens


def eval_loss(model: Any, examples: Sequence[Encoded], *, batch_size: int, pad_id: int,
              device: Any) -> float:
    """Mean negative log-likelihood per trained token (token-weighted over the whole split)."""
    total, tokens = eval_sums(model, examples, batch_size=batch_size, pad_id=pad_id,
                              device=device)
    return mean_loss(total, tokens)


def mean_loss(total: float, tokens: float) -> float:
    return total / tokens if tokens else float("nan")


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 50 else float("inf")


def base_cache_path(home: Path, *, model: str, quantization: dict[str, Any],
                    eval_fingerprint: str, cutoff_len: int, train_on: str) -> Path:
    key = json.dumps({"model": model, "quantization": quantization, "eval": eval_fingerprint,
                      "cutoff_len": cutoff_len, "train_on": train_on}, sort_keys=True)
    return home / "base_eval" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def read_base_loss(path: Path) -> float | None:
    """The base model's eval loss cached at ``path``, or None."""
    try:
        return float(json.loads(path.read_text())["eval_loss"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_base_loss(path: Path, loss: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")  # concurrent trials write apart
    tmp.write_text(json.dumps({"eval_loss": loss}))
    tmp.replace(path)


def base_eval(state: TrainState, data: Prepared) -> float:
    """The base model's eval loss: cached per model, quantization and eval split. The main
    process decides whether the cache serves, so all processes compute it or none does."""
    from harness.models import harness_home

    config, accelerator = state.config, state.accelerator
    path = base_cache_path(harness_home(), model=config.model,
                           quantization=asdict(config.quantization),
                           eval_fingerprint=data.eval_fingerprint,
                           cutoff_len=config.data.cutoff_len, train_on=config.data.train_on)
    loss = same_everywhere(accelerator, read_base_loss(path)
                           if accelerator.is_main_process else None)
    cached = loss is not None
    if loss is None:
        with accelerator.unwrap_model(state.model).disable_adapter():
            loss = shared_eval_loss(state, data.evals)
        if accelerator.is_main_process:
            write_base_loss(path, loss)
    state.events.emit("base_eval", loss=loss, perplexity=perplexity(loss), cached=cached)
    return loss


def evaluate(state: TrainState, data: Prepared, *, step: int, base_loss: float) -> None:
    """The adapter's eval at ``step``, as an event beside the base model's."""
    loss = shared_eval_loss(state, data.evals)
    state.events.emit("eval", step=step, loss=loss, perplexity=perplexity(loss),
                      perplexity_ratio_to_base=perplexity(loss) / perplexity(base_loss))


def shared_eval_loss(state: TrainState, examples: list[Any]) -> float:
    """Eval loss over the whole split, each process taking its share of the batches."""
    accelerator = state.accelerator
    total, tokens = eval_sums(accelerator.unwrap_model(state.model), examples,
                              batch_size=state.config.training.micro_batch_size,
                              pad_id=state.pad, device=accelerator.device,
                              shard=(accelerator.process_index, accelerator.num_processes))
    return mean_loss(*sum_across(accelerator, [total, tokens]))
