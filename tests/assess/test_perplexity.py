"""Sliding-window perplexity: every token scored once, with the context its window gives it,
equal to a token-by-token computation on a tiny model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from harness.assess.perplexity import sliding_losses, windows


def test_windows_score_every_token_once_after_the_first() -> None:
    spans = windows(23, window=8, stride=3)
    scored = [p for _, end, first in spans for p in range(first, end)]
    assert scored == list(range(1, 23))
    assert spans[:3] == [(0, 8, 1), (3, 11, 8), (6, 14, 11)]
    # a stride as long as the window: disjoint blocks, each block's first token unscored
    assert windows(10, window=4, stride=4) == [(0, 4, 1), (4, 8, 4), (8, 10, 8)]
    assert windows(5, window=16, stride=4) == [(0, 5, 1)]  # one pass over a short text
    with pytest.raises(ValueError, match="stride"):
        windows(10, window=4, stride=5)


@torch.no_grad()
def by_hand(model: Any, ids: list[int], *, window: int, stride: int) -> tuple[float, int]:
    """Each scored token's negative log-likelihood from its own forward pass over exactly the
    context its window gives it: ids[begin:t]."""
    total, count = 0.0, 0
    for begin, end, first in windows(len(ids), window=window, stride=stride):
        for t in range(max(first, begin + 1), end):
            logits = model(input_ids=torch.tensor([ids[begin:t]])).logits[0, -1]
            total -= float(torch.log_softmax(logits.float(), -1)[ids[t]])
            count += 1
    return total, count


@pytest.mark.parametrize(("window", "stride"), [(8, 3), (8, 8), (64, 16)])
def test_the_sliding_window_equals_the_hand_computation(tiny_model_dir: Path, window: int,
                                                        stride: int) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    ids = torch.randint(3, 200, (29,), generator=torch.Generator().manual_seed(0)).tolist()
    got = sliding_losses(model, ids, window=window, stride=stride, device="cpu")
    expected_nll, expected_tokens = by_hand(model, ids, window=window, stride=stride)
    assert sum(n for _, n in got) == expected_tokens
    assert sum(s for s, _ in got) == pytest.approx(expected_nll, rel=1e-5)
    if stride < window:
        assert expected_tokens == len(ids) - 1
