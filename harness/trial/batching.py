"""Encoded examples to padded batches, in an order fixed by (seed, epoch) so that a resumed run
sees exactly the batches an uninterrupted one would."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from harness.data.encode import IGNORE_INDEX, Encoded


def collate(examples: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input ids, attention mask, and labels with padding ignored."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def epoch_order(n: int, *, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed * 1000003 + epoch)
    return torch.randperm(n, generator=generator).tolist()


def micro_batches(
    examples: Sequence[Encoded], *, batch_size: int, seed: int, epoch: int, shuffle: bool = True
) -> list[list[Encoded]]:
    order = epoch_order(len(examples), seed=seed, epoch=epoch) if shuffle else range(len(examples))
    picked = [examples[i] for i in order]
    return [picked[i : i + batch_size] for i in range(0, len(picked), batch_size)]


def batches_per_epoch(n_examples: int, batch_size: int) -> int:
    return -(-n_examples // batch_size)


def iterate(
    examples: Sequence[Encoded], *, batch_size: int, seed: int, start_epoch: int,
    skip: int, epochs: int,
) -> Iterator[tuple[int, list[Encoded]]]:
    """(epoch, micro-batch) pairs from ``start_epoch`` on, skipping ``skip`` already seen."""
    for epoch in range(start_epoch, epochs):
        batches = micro_batches(examples, batch_size=batch_size, seed=seed, epoch=epoch)
        for batch in batches[skip if epoch == start_epoch else 0 :]:
            yield epoch, batch
