"""Answers generated in batches: left-padded prompts, the KV cache, each row ending at its EOS.

Prompts are taken longest first, so the prompts of one batch are of similar length and little of
it is padding; the answers come back in the prompts' own order. Greedy decoding gives exactly
the answers of one prompt at a time (tested); sampling draws from one generator seeded before
each batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from harness.config import SampleSettings

GENERATE_BATCH = 16
"""Prompts generated together by default: one batched `generate` call each."""
ORDER = "longest-first"
"""How prompts are put into batches (part of what a cached answer depends on)."""


@torch.no_grad()
def generate(model: Any, tokenizer: Any, texts: Sequence[str], *, max_new_tokens: int,
             chat: bool, device: Any, sampling: SampleSettings | None = None,
             batch_size: int = GENERATE_BATCH) -> list[str]:
    """One answer per prompt text (rendered already: ``chat`` texts carry their own special
    tokens), greedy unless ``sampling`` says to sample."""
    was_training = model.training
    model.eval()
    kwargs = _decoding(max_new_tokens, tokenizer, sampling)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    answers: dict[int, str] = {}
    for start in range(0, len(order), batch_size):
        picked = order[start:start + batch_size]
        encoded = [tokenizer(texts[i], add_special_tokens=not chat)["input_ids"] for i in picked]
        ids, mask = left_padded(encoded, tokenizer.pad_token_id)
        torch.manual_seed(sampling.seed if sampling else 0)
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                             **kwargs)
        for i, row in zip(picked, out[:, ids.shape[1]:].tolist(), strict=True):
            # a row that ended early is padded after its EOS: both are special tokens
            answers[i] = tokenizer.decode(row, skip_special_tokens=True).strip()
    model.train(was_training)
    return [answers[i] for i in range(len(texts))]


def _decoding(max_new_tokens: int, tokenizer: Any,
              sampling: SampleSettings | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "use_cache": True,
                              "pad_token_id": tokenizer.pad_token_id}
    if sampling is not None and sampling.do_sample:
        return kwargs | {"do_sample": True, "temperature": sampling.temperature,
                         "top_p": sampling.top_p}
    return kwargs | {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}


def left_padded(encoded: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows padded on the left to one width, and their attention mask."""
    width = max(len(e) for e in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, e in enumerate(encoded):
        ids[row, width - len(e):] = torch.tensor(e, dtype=torch.long)
        mask[row, width - len(e):] = 1
    return ids, mask
