"""An out-of-memory trial's second chance: the same training in smaller forward passes.

Each micro-batch goes through the model in twice as many parts (`training.micro_batch_parts`),
each part's loss weighted by its share of the micro-batch's targets. The examples of every
optimizer step, the steps, the schedule and the data order are the trial's own; only the
activations of a forward pass halve. One retry: a trial that runs out of memory again is
pruned as before.
"""

from __future__ import annotations

from dataclasses import replace

from harness.config import TrainConfig


def halved(config: TrainConfig) -> TrainConfig | None:
    """``config`` with forward passes of half as many sequences; None when it was retried
    already or its forward passes hold a single sequence."""
    t = config.training
    if t.micro_batch_parts > 1 or t.forward_batch < 2:
        return None
    return replace(config, training=replace(t, micro_batch_parts=t.micro_batch_parts * 2))


def retry_note(before: TrainConfig, smaller: TrainConfig, *, after: int) -> str:
    """What the retry changed, for its run's tag and the live view (``after``: the last step
    the first run reported)."""
    was, now = before.training, smaller.training
    return (f"out of memory after step {after}: retried from the start with forward passes of "
            f"{now.forward_batch} sequences instead of {was.forward_batch} (micro-batch "
            f"{now.micro_batch_size} in {now.micro_batch_parts} parts; same steps, data order "
            "and schedule)")
