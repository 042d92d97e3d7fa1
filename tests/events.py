"""Trial events as a child would write them, with plausible values for the fields a test does
not care about."""

from __future__ import annotations

import math
from typing import Any

from harness.protocol import (
    Eval,
    Failed,
    Failure,
    Finished,
    HeldOutTest,
    Retention,
    Selected,
    Started,
    Step,
)


def started(total_steps: int = 12, **fields: Any) -> Started:
    given: dict[str, Any] = {
        "pid": 1, "total_steps": total_steps, "train_examples": 40, "eval_examples": 8,
        "test_examples": 8, "fingerprint": "f" * 64, "eval_fingerprint": "e" * 64,
        "test_fingerprint": "t" * 64, "profile": {}, "device": "cpu", "processes": 1,
        "trainable_parameters": 1000, **fields}
    return Started(**given)


def stepped(step: int, loss: float, **fields: Any) -> Step:
    given: dict[str, Any] = {"total_steps": 12, "learning_rate": 1e-4, "grad_norm": 1.0,
                             "tokens": 256, "padding_efficiency": 1.0,
                             "tokens_per_second": 100.0, "epoch": step / 4, **fields}
    return Step(step=step, loss=loss, **given)


def evaluated(step: int, loss: float, **fields: Any) -> Eval:
    given: dict[str, Any] = {"perplexity": math.exp(loss), "perplexity_ratio_to_base": 1.0,
                             **fields}
    return Eval(step=step, loss=loss, **given)


def selected(step: int, loss: float, epoch: float = 1.0, **fields: Any) -> Selected:
    given: dict[str, Any] = {"perplexity": math.exp(loss), "last_step": 12, **fields}
    return Selected(step=step, loss=loss, epoch=epoch, **given)


def on_test(loss: float, base_loss: float = 2.5, **fields: Any) -> HeldOutTest:
    given: dict[str, Any] = {"step": 12, "perplexity": math.exp(loss),
                             "base_perplexity": math.exp(base_loss),
                             "change": loss / base_loss - 1, **fields}
    return HeldOutTest(loss=loss, base_loss=base_loss, **given)


def retained(loss: float, change: float, **fields: Any) -> Retention:
    base = loss / (1 + change)
    given: dict[str, Any] = {"step": 12, "perplexity": math.exp(loss), "base_loss": base,
                             "base_perplexity": math.exp(base), **fields}
    return Retention(loss=loss, change=change, **given)


def finished(peak_memory_mb: float = 512.0, **fields: Any) -> Finished:
    return Finished(adapter_dir=fields.pop("adapter_dir", "adapter"),
                    peak_memory_mb=peak_memory_mb, **fields)


def failed(reason: Failure, message: str = "", **fields: Any) -> Failed:
    return Failed(reason=reason, message=message, **fields)
