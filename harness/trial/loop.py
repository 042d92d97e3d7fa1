"""The training loop: optimizer steps of accumulated micro-batches, an event per logged step,
checkpoints and evals on their schedule, and the stops (NaN, a stop request, injected faults).

Everything the loop reads or changes is in one `TrainState`. Every process walks the same batch
order (in a data-parallel trial each trains on its own micro-batch of each group), so the order
is a pure function of (seed, epoch) and a resumed trial goes on exactly where it stopped.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import TrainConfig
from harness.faults import planned
from harness.protocol import Checkpoint, Events, Step
from harness.trial.parallel import sum_across
from harness.trial.stopping import Stop, StopRequest


@dataclass
class TrainState:
    """What a trial trains and where it stands."""

    config: TrainConfig
    """The trial's config."""
    accelerator: Any
    """Accelerate's handle on the device(s) and processes."""
    model: Any
    """The LoRA-wrapped model, prepared by the accelerator."""
    optimizer: Any
    """AdamW over the trainable (adapter) parameters."""
    scheduler: Any
    """The learning-rate schedule."""
    train: list[Any]
    """The encoded training examples."""
    pad: int
    """The tokenizer's pad token id."""
    events: Events
    """Where the trial's events go (the main process's, or only failures on other ranks)."""
    out: Path
    """The trial directory (checkpoints go there)."""
    total_steps: int
    """Optimizer steps the trial trains."""
    stop: StopRequest
    """Set by SIGTERM or the parent's end."""
    step: int = 0
    """Optimizer steps done."""
    position: dict[str, int] = field(default_factory=lambda: {"epoch": 0, "batch": 0})
    """Where in the batch order the next micro-batch comes from (epoch, batches done in it)."""
    epoch_ends: dict[int, float] = field(default_factory=dict)
    """Step -> epochs trained, where an epoch ends (and at the last step): each is evaluated."""


def train_loop(state: TrainState, *, evaluate_now: Callable[[int], None]) -> None:
    """Train from ``state.step`` to ``state.total_steps``."""
    from harness.trial.batching import batches_per_epoch

    t = state.config.training
    fault = planned()
    per_epoch = batches_per_epoch(len(state.train), t.micro_batch_size)
    batches = _batches(state, per_epoch)
    state.model.train()
    trainable = [p for p in state.model.parameters() if p.requires_grad]  # once, not per step
    clip = t.max_grad_norm if t.max_grad_norm > 0 else float("inf")
    while state.step < state.total_steps:
        started = time.perf_counter()
        loss, tokens, stop = accumulate(state, batches,
                                        nan=fault is not None and fault.poisons(state.step))
        if not math.isfinite(loss):
            raise Stop("nan", f"loss became {loss} at step {state.step + 1}; lower "
                       "training.learning_rate or set max_grad_norm")
        grad_norm = state.accelerator.clip_grad_norm_(trainable, clip)
        state.optimizer.step()
        state.scheduler.step()
        state.optimizer.zero_grad(set_to_none=True)
        state.step += 1
        if fault is not None:
            fault.strike(state.step, forward_batch=t.forward_batch)
        if state.step % t.logging_steps == 0 or state.step == state.total_steps:
            _log_step(state, loss=loss, tokens=tokens, grad_norm=float(grad_norm),
                      seconds=time.perf_counter() - started, per_epoch=per_epoch)
        if stop:
            raise Stop("killed", f"stopped by {state.stop.cause} after step {state.step}")
        _on_schedule(state, evaluate_now)


def _batches(state: TrainState, per_epoch: int) -> Iterator[tuple[int, list[Any]]]:
    """The batch order from the state's position on, long enough for the remaining steps."""
    from harness.trial.batching import iterate

    t = state.config.training
    processes = state.accelerator.num_processes
    epochs = math.ceil(state.total_steps * t.gradient_accumulation * processes / per_epoch) + 1
    return iterate(state.train, batch_size=t.micro_batch_size, seed=t.seed,
                   start_epoch=state.position["epoch"], skip=state.position["batch"],
                   epochs=epochs, batching=state.config.data.batching)


def _log_step(state: TrainState, *, loss: float, tokens: Tokens, grad_norm: float,
              seconds: float, per_epoch: int) -> None:
    position = state.position
    state.events.emit(Step(step=state.step, total_steps=state.total_steps, loss=loss,
                           learning_rate=state.scheduler.get_last_lr()[0], grad_norm=grad_norm,
                           tokens=tokens.real, padding_efficiency=tokens.efficiency,
                           tokens_per_second=tokens.real / seconds if seconds else 0.0,
                           epoch=position["epoch"] + position["batch"] / per_epoch))


def _on_schedule(state: TrainState, evaluate_now: Callable[[int], None]) -> None:
    """A checkpoint and an eval where their steps fall, and an eval at each epoch's end (the
    last step has its own eval)."""
    t, step = state.config.training, state.step
    if step >= state.total_steps:
        return
    # The eval first: a checkpoint at this step then holds its epoch-end choice, so a trial
    # resumed from it never skips an epoch end it did not judge.
    if (t.eval_steps and step % t.eval_steps == 0) or step in state.epoch_ends:
        evaluate_now(step)
    if t.save_steps and step % t.save_steps == 0:
        checkpoint(state)


@dataclass
class Tokens:
    """An optimizer step's token counts, taken on the host (no device sync)."""

    real: int = 0
    """Example tokens over all processes."""
    own_real: int = 0
    """Example tokens in this process's micro-batches."""
    own_computed: int = 0
    """Positions this process's micro-batches computed (example tokens and padding)."""

    @property
    def efficiency(self) -> float:
        """Real tokens per computed position, on this process."""
        return self.own_real / self.own_computed if self.own_computed else 1.0


def accumulate(state: TrainState, batches: Iterator[tuple[int, list[Any]]], *,
               nan: bool) -> tuple[float, Tokens, bool]:
    """One optimizer step's forward and backward passes: (mean loss over all processes,
    its tokens, whether any process was asked to stop).

    Each micro-step takes the next micro-batch of every process (all walk the same order)
    and trains on its own; the state's position moves past all of them.
    """
    import torch

    accelerator = state.accelerator
    accumulation = state.config.training.gradient_accumulation
    rank, processes = accelerator.process_index, accelerator.num_processes
    tokens, losses = Tokens(), []
    for micro in range(accumulation):
        group = [next(batches) for _ in range(processes)]
        tokens.real += _advance(state.position, group)
        own = group[rank][1]
        tokens.own_real += sum(len(e.input_ids) for e in own)
        losses.append(_train_on(state, own, tokens=tokens, nan=nan,
                                last=micro == accumulation - 1))
    mean = float(torch.stack(losses).mean())  # the step's one sync, as any loop logs
    if processes == 1:
        return mean, tokens, state.stop.requested
    loss_sum, stops = sum_across(accelerator, [mean, float(state.stop.requested)])
    return loss_sum / processes, tokens, stops > 0


def _train_on(state: TrainState, examples: list[Any], *, tokens: Tokens, nan: bool,
              last: bool) -> Any:
    """Forward and backward passes over one micro-batch, in its parts; its loss (a tensor)."""
    from harness.trial.batching import collate, forward

    accelerator, data = state.accelerator, state.config.data
    t = state.config.training
    pieces = split_batch(examples, t.micro_batch_parts)
    total: Any = None
    for part, (piece, weight) in enumerate(pieces):
        inputs = collate(piece, state.pad, packed=data.batching == "packed",
                         row_tokens=data.cutoff_len)
        tokens.own_computed += inputs["input_ids"].numel()
        # gradients are exchanged once per optimizer step, on its last forward pass
        quiet = accelerator.num_processes > 1 and not (last and part == len(pieces) - 1)
        with accelerator.no_sync(state.model) if quiet else contextlib.nullcontext():
            loss = forward(state.model, inputs, accelerator.device).loss
            if weight != 1.0:
                # a part's mean loss weighted by its share of the micro-batch's targets: the
                # parts sum to the micro-batch's own mean loss, and so do their gradients
                loss = loss * weight
            if nan:
                loss = loss * float("nan")
            accelerator.backward(loss / t.gradient_accumulation)
        total = loss.detach() if total is None else total + loss.detach()
    return total


def split_batch(examples: list[Any], parts: int) -> list[tuple[list[Any], float]]:
    """A micro-batch in ``parts`` consecutive parts, each with its share of the micro-batch's
    targets (tokens whose label counts; a sequence's first token never does)."""
    if parts == 1:
        return [(examples, 1.0)]
    size = -(-len(examples) // parts)
    pieces = [examples[i:i + size] for i in range(0, len(examples), size)]
    counts = [sum(_targets(e) for e in piece) for piece in pieces]
    total = sum(counts)
    if not total:  # nothing to learn from: one pass, whose loss says so (NaN)
        return [(examples, 1.0)]
    # a part without targets would add a NaN (0/0) loss: it is left out, as it adds nothing
    return [(piece, n / total) for piece, n in zip(pieces, counts, strict=True) if n]


def _targets(example: Any) -> int:
    from harness.trial.batching import IGNORE_INDEX

    return sum(label != IGNORE_INDEX for label in example.labels[1:])


def _advance(position: dict[str, int], group: list[tuple[int, list[Any]]]) -> int:
    """Move ``position`` past a group of micro-batches; their tokens (counted on the host: no
    device sync)."""
    tokens = 0
    for epoch, batch in group:
        position["batch"] = position["batch"] + 1 if epoch == position["epoch"] else 1
        position["epoch"] = epoch
        tokens += sum(len(e.input_ids) for e in batch)
    return tokens


def checkpoint(state: TrainState) -> None:
    """The main process writes the checkpoint (every process holds the same weights)."""
    from harness.trial.checkpoint import save_checkpoint

    if not state.accelerator.is_main_process:
        return
    path = save_checkpoint(state.out, step=state.step,
                           model=state.accelerator.unwrap_model(state.model),
                           optimizer=state.optimizer, scheduler=state.scheduler,
                           progress=dict(state.position))
    state.events.emit(Checkpoint(step=state.step, path=str(path)))
