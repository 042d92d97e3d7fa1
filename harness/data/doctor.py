"""`harness data check`: the pre-flight report on a dataset, before any GPU time is spent."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from harness.config import DataConfig
from harness.data.encode import IGNORE_INDEX, Encoded, encode_all
from harness.data.load import Dataset, load_dataset
from harness.data.records import Record, Segment
from harness.data.render import ChatRenderer, render


def check(config: DataConfig, *, model: str | None = None, examples: int = 3) -> dict[str, Any]:
    """Everything the report shows, as one JSON-ready dict."""
    tokenizer = None
    if model:
        from harness.models import load_tokenizer

        tokenizer = load_tokenizer(model)
    data = load_dataset(config, tokenizer=tokenizer)
    renderer = ChatRenderer(tokenizer)
    report = _summary(data, config)
    report["rendering"] = _rendering(data, config, renderer)
    records = data.split.train + data.split.eval
    if tokenizer is not None:
        encoded, dropped = encode_all(records, tokenizer, renderer,
                                      cutoff_len=config.cutoff_len, train_on=config.train_on)
        data.problems += dropped
        report.update(usable=len(encoded), skipped=data.skipped())
        report["tokens"] = token_stats([e for _, e in encoded], config.cutoff_len)
        shown = [(r, _token_view(e, tokenizer)) for r, e in encoded[:examples]]
    else:
        shown = [(r, _text_view(render(r, renderer), config.train_on))
                 for r in records[:examples]]
    report["examples"] = [_example(r, view) for r, view in shown]
    report["problems"] = [p.as_dict() for p in data.problems]
    report["verdict"] = _verdict(report, config)
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
                  "eval_fraction": config.eval_fraction, "seed": config.seed},
        "notes": list(data.notes),
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


def token_stats(encoded: Sequence[Encoded], cutoff_len: int) -> dict[str, Any]:
    """Length distribution (before truncation) against the cutoff."""
    if not encoded:
        return {"cutoff_len": cutoff_len, "count": 0}
    lengths = sorted(e.length for e in encoded)

    def pct(q: float) -> int:
        return lengths[min(len(lengths) - 1, round(q * (len(lengths) - 1)))]

    return {
        "cutoff_len": cutoff_len,
        "count": len(lengths),
        "min": lengths[0],
        "mean": round(statistics.fmean(lengths), 1),
        "p50": pct(0.5),
        "p90": pct(0.9),
        "p99": pct(0.99),
        "max": lengths[-1],
        "truncated": sum(e.truncated for e in encoded),
        "trainable_tokens": sum(e.trainable_tokens for e in encoded),
    }


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


def _example(record: Record, view: list[dict[str, Any]]) -> dict[str, Any]:
    return {"file": record.path, "record": record.index, "segments": view}


def _verdict(report: dict[str, Any], config: DataConfig) -> dict[str, Any]:
    reasons = []
    if report["usable"] == 0:
        reasons.append("no usable records")
    if report["defects"] and config.on_invalid == "error":
        reasons.append(f"{report['defects']} defective record(s) or file(s) (fix them, or set "
                       "on_invalid: skip)")
    return {"usable": not reasons, "reasons": reasons}
