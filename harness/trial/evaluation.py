"""Evaluation loss and perplexity on the eval split, and the base model's, cached."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from harness.data.encode import IGNORE_INDEX, Encoded
from harness.trial.batching import collate, micro_batches


@torch.no_grad()
def eval_sums(model: Any, examples: Sequence[Encoded], *, batch_size: int, pad_id: int,
              device: Any, shard: tuple[int, int] = (0, 1)) -> tuple[float, int]:
    """Summed negative log-likelihood and trained-token count over this process's share
    (``shard`` = rank, processes) of the eval batches."""
    rank, processes = shard
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    batches = micro_batches(examples, batch_size=batch_size, seed=0, epoch=0, shuffle=False)
    for batch in batches[rank::processes]:
        tensors = {k: v.to(device) for k, v in collate(batch, pad_id).items()}
        n = int((tensors["labels"][:, 1:] != IGNORE_INDEX).sum())
        if n == 0:
            continue
        loss = model(**tensors).loss
        total += float(loss) * n
        tokens += n
    model.train(was_training)
    return total, tokens


def eval_loss(model: Any, examples: Sequence[Encoded], *, batch_size: int, pad_id: int,
              device: Any) -> float:
    """Mean negative log-likelihood per trained token (token-weighted over the whole split)."""
    total, tokens = eval_sums(model, examples, batch_size=batch_size, pad_id=pad_id,
                              device=device)
    return mean_loss(total, tokens)


def mean_loss(total: float, tokens: float) -> float:
    return total / tokens if tokens else float("nan")


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 50 else float("inf")


def base_cache_path(home: Path, *, model: str, quantization: dict[str, Any],
                    eval_fingerprint: str, cutoff_len: int, train_on: str) -> Path:
    key = json.dumps({"model": model, "quantization": quantization, "eval": eval_fingerprint,
                      "cutoff_len": cutoff_len, "train_on": train_on}, sort_keys=True)
    return home / "base_eval" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def read_base_loss(path: Path) -> float | None:
    """The base model's eval loss cached at ``path``, or None."""
    try:
        return float(json.loads(path.read_text())["eval_loss"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_base_loss(path: Path, loss: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")  # concurrent trials write apart
    tmp.write_text(json.dumps({"eval_loss": loss}))
    tmp.replace(path)
