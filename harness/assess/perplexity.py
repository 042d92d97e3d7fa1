"""Perplexity of a long text by a sliding window, as text-generation-webui's Perplexity evaluation
and Hugging Face's guide to the perplexity of fixed-length models compute it.

The model reads windows of ``window`` tokens whose starts are ``stride`` tokens apart; each
window scores only the tokens no earlier window scored, each seen with up to ``window - 1``
tokens before it. A stride as long as the window scores disjoint blocks (fast, less context); a
short stride gives every token nearly a full window of context. A token that starts a window
and was not scored before (the text's first, and with a stride equal to the window each
window's first) has no context there and is not scored. Unlike the guide's loop, which weights
each window's mean loss by its target count and so slightly miscounts the first window, this
sums every scored token's negative log-likelihood exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def windows(length: int, *, window: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first scored position) of each window over ``length`` tokens."""
    if window < 2 or not 1 <= stride <= window:
        raise ValueError(f"window {window} and stride {stride}: need window >= 2 and "
                         "1 <= stride <= window")
    out: list[tuple[int, int, int]] = []
    scored_to = 1  # the first token has nothing before it
    begin = 0
    while scored_to < length:
        end = min(begin + window, length)
        out.append((begin, end, scored_to))
        scored_to = end
        begin += stride
    return out


@torch.no_grad()
def sliding_losses(model: Any, ids: Sequence[int], *, window: int, stride: int,
                   device: Any) -> list[tuple[float, int]]:
    """Each window's (summed negative log-likelihood, tokens scored) over ``ids``: every token
    the windows score, each once."""
    out: list[tuple[float, int]] = []
    was_training = model.training
    model.eval()
    tokens = torch.tensor(list(ids), dtype=torch.long)
    for begin, end, first in windows(len(tokens), window=window, stride=stride):
        piece = tokens[begin:end].unsqueeze(0).to(device)
        logits = model(input_ids=piece, use_cache=False).logits[0, :-1].float()
        targets = piece[0, 1:]
        nll = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
        # logits at position p predict token p + 1; a window's first token has no context
        scored = nll[max(first, begin + 1) - begin - 1:]
        out.append((float(scored.sum()), int(scored.numel())))
    model.train(was_training)
    return out
