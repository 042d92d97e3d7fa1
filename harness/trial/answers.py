"""Answers scored: a model's greedy answers to the prompts of a split, with each task metric per
example. Trials score the eval split at each epoch end and the test split once (the base
model's answers cached per study); `harness eval` scores any model on any data the same way."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.cache import read_json, write_json
from harness.config import EvaluationSettings
from harness.data.records import Record
from harness.data.render import ChatRenderer
from harness.metrics.answers import Metric
from harness.trial.generation import ORDER, generate
from harness.trial.prompts import Prompt, sample_prompts


@dataclass
class Answered:
    """One model's answers to a set of prompts and their scores."""

    answers: list[str]
    """The answer to each prompt, in the prompts' order."""
    scores: dict[str, list[float]] = field(default_factory=dict)
    """Metric name -> one score per answer (nan: that example cannot be scored by it)."""
    seconds: float = 0.0
    """How long generating took."""

    def means(self) -> dict[str, float]:
        """Each metric's mean over the examples it scores (nan when it scores none)."""
        return {name: _mean(values) for name, values in self.scores.items()}


def means_of(answered: Answered | None) -> dict[str, float] | None:
    """The metric means of ``answered``; None when nothing was answered."""
    return None if answered is None else answered.means()


def _mean(values: Sequence[float]) -> float:
    scored = [v for v in values if math.isfinite(v)]
    return sum(scored) / len(scored) if scored else math.nan


def answer_prompts(records: Sequence[Record], renderer: ChatRenderer, *, cap: int,
                   special: Sequence[str]) -> list[Prompt]:
    """The prompts the answer metrics ask: every record with a reference answer, up to ``cap``
    (0: all), spread over the source documents."""
    return sample_prompts(records, renderer, cap or len(records), special=special)


def score(answers: Sequence[str], prompts: Sequence[Prompt],
          metrics: Sequence[Metric]) -> dict[str, list[float]]:
    """Each metric's score of each answer against its prompt's reference."""
    references = [p.reference for p in prompts]
    return {m.name: m.score(list(answers), references) for m in metrics}


def answer(model: Any, tokenizer: Any, prompts: Sequence[Prompt], *,
           settings: EvaluationSettings, chat: bool, device: Any) -> Answered:
    """``model``'s greedy answers to ``prompts`` (unscored)."""
    began = time.monotonic()
    texts = generate(model, tokenizer, [p.text for p in prompts],
                     max_new_tokens=settings.max_new_tokens, chat=chat, device=device,
                     batch_size=settings.generate_batch)
    return Answered(texts, seconds=time.monotonic() - began)


def decoding_key(settings: EvaluationSettings, *, prompts: Sequence[Prompt],
                 chat: bool) -> dict[str, Any]:
    """All a model's greedy answers depend on besides the model itself."""
    return {"prompts": [p.text for p in prompts], "chat": chat,
            "max_new_tokens": settings.max_new_tokens, "batch": settings.generate_batch,
            "order": ORDER}


def read_cached_answers(path: Path, count: int) -> list[str] | None:
    """A model's answers cached at ``path`` (the base model's, kept per study), when they are
    ``count`` strings; None otherwise (absent, torn, or for other prompts: not trusted)."""
    stored = read_json(path)
    outputs = stored.get("outputs") if isinstance(stored, dict) else None
    if isinstance(outputs, list) and len(outputs) == count and all(
            isinstance(o, str) for o in outputs):
        return outputs
    return None


def cache_answers(path: Path, answers: list[str]) -> None:
    write_json(path, {"outputs": answers})
