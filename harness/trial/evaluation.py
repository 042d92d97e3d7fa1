"""Evaluation loss and perplexity on the eval and test splits, and the base model's, cached."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from harness.cache import base_model_entry, read_json, write_json
from harness.config import TrainConfig
from harness.data.encode import IGNORE_INDEX, Encoded
from harness.protocol import BaseEval, Eval, HeldOutTest, Retention
from harness.trial.batching import collate, eval_batches, forward
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
    batches = eval_batches(examples, batch_size)
    for batch in batches[rank::processes]:
        inputs = collate(batch, pad_id)
        n = int((inputs["labels"][:, 1:] != IGNORE_INDEX).sum())
        if n == 0:
            continue
        loss = forward(model, inputs, device).loss
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


def base_loss_entry(config: TrainConfig, split_fingerprint: str, *,
                    encoding: tuple[int, str] | None = None) -> Path:
    """Where the base model's loss on a split (eval, test or the general text, told apart by
    its fingerprint) is cached; ``encoding`` is the split's (cutoff_len, train_on), by default
    the training data's."""
    cutoff_len, train_on = encoding or (config.data.cutoff_len, config.data.train_on)
    return base_model_entry("base_eval", config, eval=split_fingerprint, cutoff_len=cutoff_len,
                            train_on=train_on, system_prompt=config.data.system_prompt)


def read_base_loss(path: Path) -> float | None:
    """The base model's eval loss cached at ``path``, or None."""
    try:
        stored = read_json(path)
        return float(stored["eval_loss"]) if isinstance(stored, dict) else None
    except (KeyError, TypeError, ValueError):
        return None


def base_loss(state: TrainState, examples: list[Any], *, fingerprint: str,
              encoding: tuple[int, str] | None = None) -> tuple[float, bool]:
    """The base model's loss on a split, and whether it came from the cache (per model,
    quantization, split and its encoding). The main process decides whether the cache
    serves, so all processes compute it or none does."""
    accelerator = state.accelerator
    path = base_loss_entry(state.config, fingerprint, encoding=encoding)
    loss = same_everywhere(accelerator, read_base_loss(path)
                           if accelerator.is_main_process else None)
    if loss is not None:
        return loss, True
    with accelerator.unwrap_model(state.model).disable_adapter():
        loss = shared_eval_loss(state, examples)
    if accelerator.is_main_process:
        write_json(path, {"eval_loss": loss})
    return loss, False


def base_eval(state: TrainState, data: Prepared) -> float:
    """The base model's eval loss, as the `base_eval` event."""
    loss, cached = base_loss(state, data.evals, fingerprint=data.eval_fingerprint)
    state.events.emit(BaseEval(loss=loss, perplexity=perplexity(loss), cached=cached))
    return loss


def evaluate(state: TrainState, data: Prepared, *, step: int, base_loss: float) -> float:
    """The adapter's eval loss at ``step``, as an event beside the base model's."""
    loss = shared_eval_loss(state, data.evals)
    state.events.emit(Eval(step=step, loss=loss, perplexity=perplexity(loss),
                           perplexity_ratio_to_base=perplexity(loss) / perplexity(base_loss)))
    return loss


def measure_test(state: TrainState, data: Prepared) -> None:
    """The kept adapter's loss on the test split and on the general text of the forgetting
    check, each beside the base model's, as the `test` and `retention` events (none for a
    set that is empty or off)."""
    general = (state.config.retention.cutoff_len, "response")
    for event, examples, fingerprint, encoding in (
            (HeldOutTest, data.tests, data.test_fingerprint, None),
            (Retention, data.retention, data.retention_fingerprint, general)):
        if not examples:
            continue
        base, _ = base_loss(state, examples, fingerprint=fingerprint, encoding=encoding)
        loss = shared_eval_loss(state, examples)
        state.events.emit(event(step=state.total_steps, loss=loss, perplexity=perplexity(loss),
                                base_loss=base, base_perplexity=perplexity(base),
                                change=loss / base - 1 if base else math.nan))


def shared_eval_loss(state: TrainState, examples: list[Any]) -> float:
    """Eval loss over the whole split, each process taking its share of the batches."""
    accelerator = state.accelerator
    total, tokens = eval_sums(accelerator.unwrap_model(state.model), examples,
                              batch_size=state.config.training.micro_batch_size,
                              pad_id=state.pad, device=accelerator.device,
                              shard=(accelerator.process_index, accelerator.num_processes))
    return mean_loss(*sum_across(accelerator, [total, tokens]))
