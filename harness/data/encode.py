"""Text segments to token ids and labels: prompt tokens masked (label -100) unless training on
the whole text, an end-of-sequence token after complete examples, truncation at ``cutoff_len``."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.data.records import Problem, Record, Segment
from harness.data.render import ChatRenderer, render

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    length: int
    """Tokens before truncation."""

    @property
    def truncated(self) -> bool:
        return self.length > len(self.input_ids)

    @property
    def trainable_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


def encode_segments(
    segments: Sequence[Segment],
    tokenizer: Any,
    *,
    cutoff_len: int,
    train_on: str,
    special_tokens: bool,
    add_eos: bool,
) -> Encoded:
    """Tokenize the joined text once; a token is trainable if it overlaps a trainable segment."""
    text = "".join(s.text for s in segments)
    spans, pos = [], 0
    for s in segments:
        if s.trainable or train_on == "all":
            spans.append((pos, pos + len(s.text)))
        pos += len(s.text)
    enc = tokenizer(text, add_special_tokens=special_tokens, return_offsets_mapping=True)
    ids: list[int] = list(enc["input_ids"])
    labels = [
        tok if e > s and any(s < b and e > a for a, b in spans) else IGNORE_INDEX
        for tok, (s, e) in zip(ids, enc["offset_mapping"], strict=True)
    ]
    eos = tokenizer.eos_token_id
    if add_eos and eos is not None and (not ids or ids[-1] != eos):
        ids.append(eos)
        labels.append(eos if spans and spans[-1][1] == len(text) else IGNORE_INDEX)
    length = len(ids)
    return Encoded(ids[:cutoff_len], labels[:cutoff_len], length)


def encode_record(
    record: Record,
    tokenizer: Any,
    renderer: ChatRenderer,
    *,
    cutoff_len: int,
    train_on: str,
) -> Encoded:
    # A chat template writes its own special tokens; plain text gets the tokenizer's (BOS).
    chat = bool(record.messages)
    return encode_segments(render(record, renderer), tokenizer, cutoff_len=cutoff_len,
                           train_on=train_on, special_tokens=not chat,
                           add_eos=record.ends_text and not chat)


def encode_all(
    records: Sequence[Record],
    tokenizer: Any,
    renderer: ChatRenderer,
    *,
    cutoff_len: int,
    train_on: str,
) -> tuple[list[tuple[Record, Encoded]], list[Problem]]:
    """Encode every record; one left with no trainable token (prompt past the cutoff) is dropped."""
    kept: list[tuple[Record, Encoded]] = []
    dropped: list[Problem] = []
    for rec in records:
        enc = encode_record(rec, tokenizer, renderer, cutoff_len=cutoff_len, train_on=train_on)
        if enc.trainable_tokens == 0:
            dropped.append(Problem("no_trainable_tokens", rec.path, f"the prompt fills all "
                                   f"{cutoff_len} tokens of cutoff_len, leaving no response "
                                   "token to learn from; raise cutoff_len", rec.index))
        else:
            kept.append((rec, enc))
    return kept, dropped


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
