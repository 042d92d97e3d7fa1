"""Encoded examples to batches, in an order fixed by (seed, epoch) so that a resumed run sees
exactly the batches an uninterrupted one would.

Three layouts, chosen by ``data.batching``; every one puts the same number of examples in a
micro-batch, so steps, epochs and the learning-rate schedule mean the same under all three:

- ``padded``: micro-batches in shuffled order, each right-padded to its longest example.
- ``grouped``: the shuffled order is cut into chunks of `GROUP_CHUNK` micro-batches; within a
  chunk the examples are sorted by length and the micro-batches cut from them are shuffled
  again. An epoch is still a random order, but each micro-batch holds examples of similar
  length, so little of it is padding.
- ``packed``: micro-batches in shuffled order, their examples laid end to end in rows of up to
  ``cutoff_len`` tokens (first fit, longest first). Position ids restart at each example and no
  attention mask is passed, which is how transformers recognises packed rows: it then builds a
  block-diagonal causal mask (SDPA, eager) or runs flash-attention's varlen kernel, so no token
  attends to another example.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from harness.config.data import Batching
from harness.data.encode import IGNORE_INDEX, Encoded

GROUP_CHUNK = 64
"""Micro-batches per length-sorted chunk: on MedQuAD this leaves about 1 % padding, and 64
micro-batches is still a small share of an epoch, so batches of long and short examples stay
mixed over it."""


def collate(examples: Sequence[Encoded], pad_id: int, *, packed: bool = False,
            row_tokens: int = 0) -> dict[str, torch.Tensor]:
    """The model's inputs for one micro-batch: right-padded rows with an attention mask, or
    (``packed``) rows of up to ``row_tokens`` tokens with per-example position ids."""
    if packed:
        return _packed(examples, pad_id, row_tokens)
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


def forward(model: Any, inputs: dict[str, torch.Tensor], device: Any) -> Any:
    """The model's outputs on a collated batch, as training and evaluation run it."""
    # no KV cache: training never reads one, and with a cache transformers does not see packed
    # rows as packed and lets their examples attend to each other
    return model(**{k: v.to(device) for k, v in inputs.items()}, use_cache=False)


def pack_rows(lengths: Sequence[int], row_tokens: int) -> list[list[int]]:
    """Indices of ``lengths`` grouped into rows of at most ``row_tokens`` (first fit
    decreasing; an example longer than a row gets a row of its own)."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        fit = next((r for r, free in enumerate(room) if free >= lengths[i]), None)
        if fit is None:
            rows.append([i])
            room.append(row_tokens - lengths[i])
        else:
            rows[fit].append(i)
            room[fit] -= lengths[i]
    return rows


def _packed(examples: Sequence[Encoded], pad_id: int, row_tokens: int) -> dict[str, torch.Tensor]:
    rows = pack_rows([len(e.input_ids) for e in examples], row_tokens)
    width = max(sum(len(examples[i].input_ids) for i in row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        at = 0
        for i in row:
            e = examples[i]
            n = len(e.input_ids)
            ids[r, at:at + n] = torch.tensor(e.input_ids)
            labels[r, at:at + n] = torch.tensor(e.labels)
            # alone, an example's first token is never a target; packed, it must not become
            # the target of the example before it
            labels[r, at] = IGNORE_INDEX
            positions[r, at:at + n] = torch.arange(n)
            at += n
        # the row's tail of padding restarts at 0 too: a sequence of its own, attended by none
        positions[r, at:] = torch.arange(width - at)
    return {"input_ids": ids, "position_ids": positions, "labels": labels}


def epoch_order(n: int, *, seed: int, epoch: int) -> list[int]:
    return torch.randperm(n, generator=_generator(seed, epoch)).tolist()


def _generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1000003 + epoch)


def micro_batches(examples: Sequence[Encoded], *, batch_size: int, seed: int, epoch: int,
                  batching: Batching = "padded") -> list[list[Encoded]]:
    """One epoch's micro-batches of ``batch_size`` examples (the last may hold fewer)."""
    order = epoch_order(len(examples), seed=seed, epoch=epoch)
    if batching == "grouped":
        return _grouped([examples[i] for i in order], batch_size, _generator(seed, -1 - epoch))
    return _cut([examples[i] for i in order], batch_size)


def _cut(picked: Sequence[Encoded], batch_size: int) -> list[list[Encoded]]:
    return [list(picked[i:i + batch_size]) for i in range(0, len(picked), batch_size)]


def _grouped(picked: Sequence[Encoded], batch_size: int,
             generator: torch.Generator) -> list[list[Encoded]]:
    out: list[list[Encoded]] = []
    chunk = batch_size * GROUP_CHUNK
    for start in range(0, len(picked), chunk):
        by_length = sorted(picked[start:start + chunk], key=lambda e: len(e.input_ids))
        batches = _cut(by_length, batch_size)
        out.extend(batches[i] for i in torch.randperm(len(batches), generator=generator))
    return out


def eval_batches(examples: Sequence[Encoded], batch_size: int) -> list[list[Encoded]]:
    """The eval split in micro-batches of similar length, longest first: the loss is a sum
    over tokens, so the order is free and can waste nothing on padding."""
    return _cut(sorted(examples, key=lambda e: -len(e.input_ids)), batch_size)


def batches_per_epoch(n_examples: int, batch_size: int) -> int:
    return -(-n_examples // batch_size)


def iterate(
    examples: Sequence[Encoded], *, batch_size: int, seed: int, start_epoch: int,
    skip: int, epochs: int, batching: Batching = "padded",
) -> Iterator[tuple[int, list[Encoded]]]:
    """(epoch, micro-batch) pairs from ``start_epoch`` on, skipping ``skip`` already seen."""
    for epoch in range(start_epoch, epochs):
        batches = micro_batches(examples, batch_size=batch_size, seed=seed, epoch=epoch,
                                batching=batching)
        for batch in batches[skip if epoch == start_epoch else 0:]:
            yield epoch, batch
