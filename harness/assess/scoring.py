"""One model scored on the evaluation data: each record's loss on its response (or, for raw text,
each window's), and its greedy answers with every task metric. Results are keyed by record
(file#index), so that models with different tokenizers are still compared example by example."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.assess.data import EvalData
from harness.assess.subjects import Subject
from harness.metrics.answers import Metric

WINDOW, STRIDE = 512, 256
"""Raw text's sliding window by default: each token scored with 256 to 511 tokens before it."""


@dataclass
class Scored:
    """What one model did on the data."""

    subject: Subject
    losses: dict[str, tuple[float, int]] = field(default_factory=dict)
    """Record (or text window) -> (summed negative log-likelihood, tokens scored)."""
    answers: dict[str, str] = field(default_factory=dict)
    """Record -> the model's greedy answer."""
    asked: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Record -> (what was asked, the reference answer)."""
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    """Metric -> record -> its score (nan: not scorable)."""
    seconds: float = 0.0
    """Scoring time, loading the model included."""


def score_subject(subject: Subject, data: EvalData, metrics: list[Metric], *,
                  window: int = WINDOW, stride: int = STRIDE) -> Scored:
    """Load ``subject`` and score it on ``data``: losses, and answers when there are metrics
    and the data asks something (raw text does not)."""
    began = time.monotonic()
    model, tokenizer = load_subject(subject)
    scored = Scored(subject)
    if data.is_raw:
        scored.losses = _window_losses(model, tokenizer, data, window=window, stride=stride)
    else:
        kept = _record_losses(scored, model, tokenizer, data)
        if metrics:
            _answer(scored, model, tokenizer, data, metrics, records=kept)
    scored.seconds = time.monotonic() - began
    return scored


def load_subject(subject: Subject) -> tuple[Any, Any]:
    """The model (base, base + adapter, or merged) in eval mode, and its tokenizer."""
    from harness.models import load_model, training_tokenizer

    model = load_model(subject.base_model, subject.quantization)
    if subject.kind == "adapter":
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(subject.path))
    return model.eval(), training_tokenizer(subject.base_model)


def _record_losses(scored: Scored, model: Any, tokenizer: Any, data: EvalData) -> list[Any]:
    """Each record's loss into ``scored``; the records scored (those with a response token
    within the cutoff, as a trial keeps them)."""
    from harness.data.encode import encode_all
    from harness.data.render import ChatRenderer
    from harness.trial.evaluation import example_losses

    renderer = ChatRenderer(tokenizer, system_prompt=data.config.system_prompt)
    kept, _ = encode_all(data.records, tokenizer, renderer, cutoff_len=data.config.cutoff_len,
                         train_on=data.config.train_on)
    losses = example_losses(model, [e for _, e in kept], batch_size=data.batch_size,
                            pad_id=tokenizer.pad_token_id, device=model.device)
    scored.losses = {f"{r.path}#{r.index}": loss
                     for (r, _), loss in zip(kept, losses, strict=True)}
    return [r for r, _ in kept]


def _window_losses(model: Any, tokenizer: Any, data: EvalData, *, window: int,
                   stride: int) -> dict[str, tuple[float, int]]:
    from harness.assess.perplexity import sliding_losses
    from harness.data.textfile import read_text

    out: dict[str, tuple[float, int]] = {}
    for path in data.raw_files:
        ids = tokenizer(read_text(Path(path)))["input_ids"]
        losses = sliding_losses(model, ids, window=window, stride=stride, device=model.device)
        out.update({f"{path}@{i}": pair for i, pair in enumerate(losses)})
    return out


def _answer(scored: Scored, model: Any, tokenizer: Any, data: EvalData,
            metrics: list[Metric], *, records: list[Any]) -> None:
    from harness.data.render import ChatRenderer
    from harness.trial.answers import answer, answer_prompts, score

    renderer = ChatRenderer(tokenizer, system_prompt=data.config.system_prompt)
    prompts = answer_prompts(records, renderer, cap=data.settings.max_answer_examples,
                             special=tokenizer.all_special_tokens)
    chat = bool(data.records and data.records[0].messages)
    got = answer(model, tokenizer, prompts, settings=data.settings, chat=chat,
                 device=model.device)
    per_metric = score(got.answers, prompts, metrics)
    scored.answers = {p.origin: a for p, a in zip(prompts, got.answers, strict=True)}
    scored.asked = {p.origin: (p.question, p.reference) for p in prompts}
    scored.scores = {name: {p.origin: v for p, v in zip(prompts, values, strict=True)}
                     for name, values in per_metric.items()}
