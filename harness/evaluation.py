"""Evaluation loss and perplexity on the eval split, and the base model's, cached."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from harness.batching import collate, micro_batches
from harness.data.encode import IGNORE_INDEX, Encoded


@torch.no_grad()
def eval_loss(model: Any, examples: Sequence[Encoded], *, batch_size: int, pad_id: int,
              device: Any) -> float:
    """Mean negative log-likelihood per trained token (token-weighted over the whole split)."""
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    for batch in micro_batches(examples, batch_size=batch_size, seed=0, epoch=0, shuffle=False):
        tensors = {k: v.to(device) for k, v in collate(batch, pad_id).items()}
        n = int((tensors["labels"][:, 1:] != IGNORE_INDEX).sum())
        if n == 0:
            continue
        loss = model(**tensors).loss
        total += float(loss) * n
        tokens += n
    model.train(was_training)
    return total / tokens if tokens else float("nan")


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 50 else float("inf")


def base_cache_path(home: Path, *, model: str, quantization: dict[str, Any],
                    eval_fingerprint: str, cutoff_len: int, train_on: str) -> Path:
    key = json.dumps({"model": model, "quantization": quantization, "eval": eval_fingerprint,
                      "cutoff_len": cutoff_len, "train_on": train_on}, sort_keys=True)
    return home / "base_eval" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def cached_base_loss(path: Path, compute: Callable[[], float]) -> tuple[float, bool]:
    """The base model's eval loss from ``path``, or computed once and written there."""
    if path.is_file():
        try:
            return float(json.loads(path.read_text())["eval_loss"]), True
        except (ValueError, KeyError):
            pass
    loss = float(compute())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"eval_loss": loss}))
    tmp.replace(path)
    return loss, False
