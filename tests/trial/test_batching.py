"""Batch layouts: each epoch a seeded order of every example once; grouped batches waste little
on padding; a packed row trains each example exactly as if it were alone."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch

from harness.data.encode import IGNORE_INDEX, Encoded
from harness.trial.batching import (
    collate,
    eval_batches,
    forward,
    iterate,
    micro_batches,
    pack_rows,
)

MODES = ("grouped", "packed", "padded")


def examples(n: int, *, seed: int = 0, longest: int = 512) -> list[Encoded]:
    """Examples with a long-tailed length spread like instruction data (median ~190)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        length = min(longest, max(4, int(rng.lognormvariate(5.2, 0.7))))
        ids = [(i * 7 + j) % 300 + 5 for j in range(length)]
        prompt = length // 3
        out.append(Encoded(ids, [IGNORE_INDEX] * prompt + ids[prompt:], length))
    return out


def efficiency(batches: list[list[Encoded]], *, packed: bool) -> float:
    real = computed = 0
    for batch in batches:
        real += sum(len(e.input_ids) for e in batch)
        computed += collate(batch, 0, packed=packed, row_tokens=512)["input_ids"].numel()
    return real / computed


@pytest.mark.parametrize("mode", MODES)
def test_an_epoch_is_every_example_once_in_an_order_fixed_by_seed_and_epoch(mode: str) -> None:
    data = examples(1000)
    first = micro_batches(data, batch_size=8, seed=3, epoch=0, batching=mode)
    assert first == micro_batches(data, batch_size=8, seed=3, epoch=0, batching=mode)
    assert [len(b) for b in first[:-1]] == [8] * 124 and len(first) == 125
    assert sorted(id(e) for b in first for e in b) == sorted(id(e) for e in data)
    assert first != micro_batches(data, batch_size=8, seed=3, epoch=1, batching=mode)
    assert first != micro_batches(data, batch_size=8, seed=4, epoch=0, batching=mode)


def test_grouped_batches_hold_similar_lengths_in_a_shuffled_order() -> None:
    data = examples(4000)
    grouped = micro_batches(data, batch_size=8, seed=1, epoch=0, batching="grouped")
    padded = micro_batches(data, batch_size=8, seed=1, epoch=0, batching="padded")
    assert efficiency(grouped, packed=False) > 0.95
    assert efficiency(padded, packed=False) < 0.75
    longest = [max(len(e.input_ids) for e in b) for b in grouped[:64]]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)


def test_resuming_mid_epoch_yields_the_rest_of_the_same_order() -> None:
    data = examples(100)
    whole = list(iterate(data, batch_size=4, seed=5, start_epoch=0, skip=0, epochs=3,
                         batching="grouped"))
    rest = list(iterate(data, batch_size=4, seed=5, start_epoch=1, skip=7, epochs=3,
                        batching="grouped"))
    assert rest == whole[25 + 7:]


def test_packed_rows_fill_up_to_the_row_length_and_restart_positions() -> None:
    data = examples(8, seed=2, longest=100)
    inputs = collate(data, 0, packed=True, row_tokens=256)
    assert "attention_mask" not in inputs
    assert inputs["input_ids"].shape[0] < len(data)
    assert inputs["input_ids"].shape[1] <= 256
    real = sum(len(e.input_ids) for e in data)
    assert int((inputs["labels"] != IGNORE_INDEX).sum()) == sum(
        e.trainable_tokens - (e.labels[0] != IGNORE_INDEX) for e in data)
    starts = int((inputs["position_ids"] == 0).sum())
    assert starts >= len(data)  # one per example, plus one per padded row tail
    assert real <= inputs["input_ids"].numel()


def test_first_fit_keeps_every_row_within_its_length() -> None:
    lengths = [300, 200, 120, 90, 60, 50, 500, 10]
    rows = pack_rows(lengths, 512)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= 512 for row in rows)
    assert len(rows) == 3


def test_eval_batches_cover_the_split_longest_first() -> None:
    data = examples(50)
    batches = eval_batches(data, 8)
    assert sum(len(b) for b in batches) == 50
    longest = [max(len(e.input_ids) for e in b) for b in batches]
    assert longest == sorted(longest, reverse=True)


def lora_model(model_dir: Path) -> Any:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                            init_lora_weights=False))
    return model.eval()


def example_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed next-token loss of one example's logits against its labels."""
    return torch.nn.functional.cross_entropy(logits[:-1], labels[1:], ignore_index=IGNORE_INDEX,
                                             reduction="sum")


@torch.no_grad()
def test_a_packed_row_gives_each_example_its_loss_alone_and_attends_within_it(
        tiny_model_dir: Path) -> None:
    model = lora_model(tiny_model_dir)
    data = examples(3, seed=4, longest=60)
    inputs = collate(data, 0, packed=True, row_tokens=512)
    assert inputs["input_ids"].shape[0] == 1
    logits = forward(model, inputs, "cpu").logits[0]
    order = pack_rows([len(e.input_ids) for e in data], 512)[0]
    at = 0
    for i in order:
        e, n = data[i], len(data[i].input_ids)
        alone = model(input_ids=torch.tensor([e.input_ids])).logits[0]
        labels = torch.tensor(e.labels)
        torch.testing.assert_close(example_loss(logits[at:at + n], labels),
                                   example_loss(alone, labels), rtol=1e-4, atol=0)
        at += n

    # change every token of the first example: no other example's logits may move
    first = len(data[order[0]].input_ids)
    changed = inputs["input_ids"].clone()
    changed[0, :first] = (changed[0, :first] + 1) % 300 + 5
    moved = forward(model, {**inputs, "input_ids": changed}, "cpu").logits[0]
    torch.testing.assert_close(moved[first:], logits[first:], rtol=0, atol=1e-6)
    assert not torch.allclose(moved[:first], logits[:first])


@torch.no_grad()
def test_a_packed_micro_batch_has_the_padded_micro_batch_loss(tiny_model_dir: Path) -> None:
    model = lora_model(tiny_model_dir)
    data = examples(6, seed=5, longest=120)
    padded = forward(model, collate(data, 0), "cpu").loss
    packed = forward(model, collate(data, 0, packed=True, row_tokens=128), "cpu").loss
    torch.testing.assert_close(packed, padded, rtol=1e-4, atol=0)
