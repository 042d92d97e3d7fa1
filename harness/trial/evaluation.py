"""Evaluation loss and perplexity on the eval and test splits, and the base model's, cached."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from harness.cache import base_model_entry, read_json, write_json
from harness.config import TrainConfig
from harness.data.encode import IGNORE_INDEX, Encoded
from harness.protocol import BaseEval, Eval, HeldOut, HeldOutTest, Retention
from harness.trial.answers import means_of
from harness.trial.batching import collate, eval_batches, forward
from harness.trial.loop import TrainState
from harness.trial.parallel import same_everywhere, sum_across
from harness.trial.setup import Prepared
from harness.trial.task_metrics import TaskMetrics


@dataclass
class LossSums:
    """Per-example sums of a split's loss: summed over examples, and so over processes too.
    Example i has summed negative log-likelihood s_i over its n_i trained tokens."""

    nll: float = 0.0
    """Sum of s_i."""
    tokens: float = 0.0
    """Sum of n_i."""
    examples: float = 0.0
    """Examples with at least one trained token."""
    nll_sq: float = 0.0
    """Sum of s_i squared."""
    nll_tokens: float = 0.0
    """Sum of s_i * n_i."""
    tokens_sq: float = 0.0
    """Sum of n_i squared."""

    def add(self, nll: float, tokens: int) -> None:
        self.nll += nll
        self.tokens += tokens
        self.examples += 1
        self.nll_sq += nll * nll
        self.nll_tokens += nll * tokens
        self.tokens_sq += tokens * tokens

    def as_list(self) -> list[float]:
        return [getattr(self, f.name) for f in fields(self)]

    @property
    def loss(self) -> float:
        """The token-weighted mean loss."""
        return mean_loss(self.nll, self.tokens)

    @property
    def ci95(self) -> float:
        """Half the width of the loss's 95 % interval over examples (the ratio estimator's
        delta-method standard error): nan with fewer than two examples."""
        n = self.examples
        if n < 2 or not self.tokens:
            return math.nan
        r = self.loss
        spread = max(self.nll_sq - 2 * r * self.nll_tokens + r * r * self.tokens_sq, 0.0)
        return 1.96 * math.sqrt(spread / (n * (n - 1))) / (self.tokens / n)


@torch.no_grad()
def eval_sums(model: Any, examples: Sequence[Encoded], *, batch_size: int, pad_id: int,
              device: Any, shard: tuple[int, int] = (0, 1)) -> LossSums:
    """Per-example loss sums over this process's share (``shard`` = rank, processes) of the
    eval batches."""
    rank, processes = shard
    was_training = model.training
    model.eval()
    sums = LossSums()
    for batch in eval_batches(examples, batch_size)[rank::processes]:
        for total, n in batch_nll(model, batch, pad_id=pad_id, device=device):
            if n:
                sums.add(total, n)
    model.train(was_training)
    return sums


@torch.no_grad()
def example_losses(model: Any, examples: Sequence[Encoded], *, batch_size: int, pad_id: int,
                   device: Any) -> list[tuple[float, int]]:
    """Each example's (summed negative log-likelihood, trained tokens), in the examples'
    order (batched longest first, as `eval_sums` batches them)."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i].input_ids))
    found: dict[int, tuple[float, int]] = {}
    for start in range(0, len(order), batch_size):
        picked = order[start:start + batch_size]
        got = batch_nll(model, [examples[i] for i in picked], pad_id=pad_id, device=device)
        found.update(zip(picked, got, strict=True))
    model.train(was_training)
    return [found[i] for i in range(len(examples))]


def batch_nll(model: Any, batch: Sequence[Encoded], *, pad_id: int,
              device: Any) -> list[tuple[float, int]]:
    """Each example's summed negative log-likelihood over its trained tokens, and their count."""
    inputs = collate(batch, pad_id)
    labels = inputs.pop("labels")[:, 1:].to(device)
    logits = forward(model, inputs, device).logits[:, :-1].float()
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels,
                                            ignore_index=IGNORE_INDEX, reduction="none")
    counts = (labels != IGNORE_INDEX).sum(1)
    return list(zip(nll.sum(1).tolist(), counts.tolist(), strict=True))


def eval_loss(model: Any, examples: Sequence[Encoded], *, batch_size: int, pad_id: int,
              device: Any) -> float:
    """Mean negative log-likelihood per trained token (token-weighted over the whole split)."""
    return eval_sums(model, examples, batch_size=batch_size, pad_id=pad_id,
                     device=device).loss


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


def base_eval(state: TrainState, data: Prepared, metrics: TaskMetrics) -> float:
    """The base model's eval loss (and task metrics), as the `base_eval` event."""
    loss, cached = base_loss(state, data.evals, fingerprint=data.eval_fingerprint)
    answered = metrics.base_on_eval()
    state.events.emit(BaseEval(loss=loss, perplexity=perplexity(loss), cached=cached,
                               answers=means_of(answered)))
    return loss


def evaluate(state: TrainState, data: Prepared, *, step: int, base_loss: float,
             metrics: TaskMetrics) -> Eval:
    """The adapter's eval loss at ``step`` beside the base model's, and at an epoch's end its
    task metrics, as an event."""
    loss = shared_eval_loss(state, data.evals)
    answered = metrics.on_eval() if step in state.epoch_ends else None
    event = Eval(step=step, loss=loss, perplexity=perplexity(loss),
                 perplexity_ratio_to_base=perplexity(loss) / perplexity(base_loss),
                 answers=means_of(answered),
                 answer_seconds=None if answered is None else answered.seconds)
    state.events.emit(event)
    return event


def measure_test(state: TrainState, data: Prepared, metrics: TaskMetrics) -> list[HeldOut]:
    """The kept adapter's loss on the test split and on the general text of the forgetting
    check, each beside the base model's, as the `test` and `retention` events (none for a
    set that is empty or off); on the test split its task metrics too. The events."""
    general = (state.config.retention.cutoff_len, "response")
    emitted: list[HeldOut] = []
    for event, examples, fingerprint, encoding in (
            (HeldOutTest, data.tests, data.test_fingerprint, None),
            (Retention, data.retention, data.retention_fingerprint, general)):
        if not examples:
            continue
        began = time.monotonic()
        base, _ = base_loss(state, examples, fingerprint=fingerprint, encoding=encoding)
        sums = shared_eval_sums(state, examples)
        tuned, base_answered = metrics.on_test() if event is HeldOutTest else (None, None)
        loss = sums.loss
        emitted.append(event(step=state.total_steps, loss=loss, perplexity=perplexity(loss),
                             base_loss=base, base_perplexity=perplexity(base),
                             change=loss / base - 1 if base else math.nan,
                             ci95=sums.ci95, examples=int(sums.examples),
                             seconds=time.monotonic() - began, answers=means_of(tuned),
                             base_answers=means_of(base_answered)))
        state.events.emit(emitted[-1])
    return emitted


def shared_eval_loss(state: TrainState, examples: list[Any]) -> float:
    """Eval loss over the whole split, each process taking its share of the batches."""
    return shared_eval_sums(state, examples).loss


def shared_eval_sums(state: TrainState, examples: list[Any]) -> LossSums:
    """The split's loss sums, each process taking its share of the batches."""
    accelerator = state.accelerator
    sums = eval_sums(accelerator.unwrap_model(state.model), examples,
                     batch_size=state.config.training.forward_batch, pad_id=state.pad,
                     device=accelerator.device,
                     shard=(accelerator.process_index, accelerator.num_processes))
    return LossSums(*sum_across(accelerator, sums.as_list()))
