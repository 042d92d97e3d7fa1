"""`harness data check`: the pre-flight report on a dataset, before any GPU time is spent."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from harness.config import DataConfig
from harness.data.encode import IGNORE_INDEX, Encoded, encode_all, token_stats
from harness.data.load import Dataset, load_dataset
from harness.data.ready import split_problems
from harness.data.records import Record, Segment
from harness.data.render import ChatRenderer, render


def check(config: DataConfig, *, model: str | None = None, examples: int = 3) -> dict[str, Any]:
    """Everything the report shows, as one JSON-ready dict."""
    tokenizer = None
    if model:
        from harness.models import load_tokenizer

        tokenizer = load_tokenizer(model)
    data = load_dataset(config, tokenizer=tokenizer)
    renderer = ChatRenderer(tokenizer, system_prompt=config.system_prompt)
    report = _summary(data, config)
    report["rendering"] = _rendering(data, config, renderer)
    records = data.split.train + data.split.eval + data.split.test
    trainable = {"train": len(data.split.train), "evals": len(data.split.eval)}
    if tokenizer is not None:
        (train, dropped_train), (evals, dropped_eval), (tests, dropped_test) = (
            encode_all(side, tokenizer, renderer, cutoff_len=config.cutoff_len,
                       train_on=config.train_on)
            for side in (data.split.train, data.split.eval, data.split.test))
        encoded = train + evals + tests
        data.problems += dropped_train + dropped_eval + dropped_test
        trainable = {"train": len(train), "evals": len(evals)}
        report.update(usable=len(encoded), skipped=data.skipped())
        report["tokens"] = token_stats([e for _, e in encoded], config.cutoff_len)
        shown = [(r, _token_view(e, tokenizer)) for r, e in encoded[:examples]]
    else:
        shown = [(r, _text_view(render(r, renderer), config.train_on))
                 for r in records[:examples]]
    report["examples"] = [_example(r, view) for r, view in shown]
    report["problems"] = [p.as_dict() for p in data.problems]
    training = split_problems(data, config, renderer=renderer, **trainable)
    report["verdict"] = _verdict(report, config, [what for what, _ in training])
    return report


def _summary(data: Dataset, config: DataConfig) -> dict[str, Any]:
    skipped = data.skipped()
    report: dict[str, Any] = {
        "path": data.path,
        "format": data.format,
        "files": len(data.files),
        "records": data.read,
        "usable": len(data.records),
        "skipped": skipped,
        "defects": len(data.defects),
        "duplicates": skipped.get("duplicate", 0),
        "refusals": skipped.get("refusal", 0),
        "fingerprint": data.fingerprint,
        "split": {"train": len(data.split.train), "eval": len(data.split.eval),
                  "test": len(data.split.test), "eval_fraction": config.eval_fraction,
                  "test_fraction": config.test_fraction, "seed": config.seed},
        "notes": list(data.notes),
        "cleaning": data.cleaning.report(),
    }
    if data.format == "medquad":
        report["sources"] = dict(sorted(Counter(r.meta["source"] for r in data.records).items()))
        report["qtypes"] = dict(Counter(r.meta["qtype"] for r in data.records).most_common())
    return report


def _rendering(data: Dataset, config: DataConfig, renderer: ChatRenderer) -> str:
    if data.format == "alpaca" or (data.format == "medquad" and config.format_file):
        return f"format file {config.format_file or 'alpaca'}"
    if data.format == "rawtext":
        return "raw text chunks"
    return renderer.name


def _text_view(segments: Sequence[Segment], train_on: str) -> list[dict[str, Any]]:
    return [{"text": s.text, "trained": s.trainable or train_on == "all"} for s in segments]


def _token_view(enc: Encoded, tokenizer: Any) -> list[dict[str, Any]]:
    """The example exactly as the model gets it: decoded runs of masked and trained tokens."""
    runs: list[dict[str, Any]] = []
    for tok, label in zip(enc.input_ids, enc.labels, strict=True):
        trained = label != IGNORE_INDEX
        if runs and runs[-1]["trained"] == trained:
            runs[-1]["ids"].append(tok)
        else:
            runs.append({"trained": trained, "ids": [tok]})
    return [{"text": tokenizer.decode(r["ids"]), "trained": r["trained"]} for r in runs]


EXAMPLE_CHARS = 2000
"""Characters of each example the report shows; the rest is counted, not printed."""


def _example(record: Record, view: list[dict[str, Any]]) -> dict[str, Any]:
    return {"file": record.path, "record": record.index, "segments": _bounded(view)}


def _bounded(view: list[dict[str, Any]], limit: int = EXAMPLE_CHARS) -> list[dict[str, Any]]:
    """The first ``limit`` characters of an example's segments, and how many more there are."""
    shown: list[dict[str, Any]] = []
    left = limit
    for seg in view:
        if left <= 0:
            break
        shown.append({**seg, "text": seg["text"][:left]})
        left -= len(seg["text"])
    hidden = sum(len(seg["text"]) for seg in view) - sum(len(seg["text"]) for seg in shown)
    if hidden > 0:
        shown.append({"text": f" [... {hidden:,} more characters]", "trained": False})
    return shown


def _verdict(report: dict[str, Any], config: DataConfig,
             training: list[str]) -> dict[str, Any]:
    """Usable when a trial could train on the data as configured: the same checks a sweep
    runs before its first trial (`harness.data.ready`), plus defects under on_invalid error."""
    reasons = list(training)
    if report["defects"] and config.on_invalid == "error":
        reasons.append(f"{report['defects']} defective record(s) or file(s) (fix them, or set "
                       "on_invalid: skip)")
    return {"usable": not reasons, "reasons": reasons}
