"""The one record type every format becomes, and what is done to records regardless of format.

A record is either pre-rendered text (``segments``, each trainable or not) or a conversation
(``messages``) that the tokenizer's chat template renders later. Filters (duplicates, refusal
boilerplate), the grouped train/eval split and the dataset fingerprint all work on this type.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

ROLES = ("system", "user", "assistant")

# Reasons a record is left out. Filters are expected; defects are errors in the data itself.
FILTER_REASONS = (
    "duplicate",
    "near_duplicate",
    "contaminated",
    "refusal",
    "empty_answer",
    "empty_document",
    "empty_response",
    "filtered_source",
    "filtered_qtype",
    "no_trainable_tokens",
    "ignored_file",
    "empty_file",
    "not_a_file",
    "broken_link",
    "short_chunk",
)


@dataclass(frozen=True)
class Segment:
    """A run of text; ``trainable`` runs are the ones the loss is computed on."""

    text: str
    trainable: bool


@dataclass(frozen=True)
class Message:
    """One turn of a conversation, role one of ``ROLES``."""

    role: str
    content: str


@dataclass(frozen=True)
class Record:
    """One training example and where it came from."""

    path: str
    """The file it was read from."""
    index: int
    """Its position in that file: array index, line's record number, QA pair or chunk number."""
    group: str
    """The source document. Records of one group never straddle the train/eval split."""
    segments: tuple[Segment, ...] = ()
    messages: tuple[Message, ...] = ()
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    """Descriptive fields (source, qtype, focus, url, ...) that do not reach the model."""
    ends_text: bool = True
    """Whether the example is complete, so an end-of-sequence token follows it (not so for a
    chunk of raw text)."""
    content: tuple[str, ...] = field(default=(), compare=False, hash=False)
    """The data's own texts (field values) where ``segments`` also hold a format file's
    template text; empty when the segments or messages are the data's text already."""

    def __post_init__(self) -> None:
        if bool(self.segments) == bool(self.messages):
            raise ValueError("a Record holds either segments or messages, exactly one of them")

    @property
    def response_text(self) -> str:
        """The text the model learns to produce."""
        if self.messages:
            return "\n".join(m.content for m in self.messages if m.role == "assistant")
        return "".join(s.text for s in self.segments if s.trainable)

    @property
    def plain_text(self) -> str:
        """The record's own words, prompt and response, without template text: what
        near-duplicate and contamination checks compare, whatever the format."""
        if self.content:
            return "\n".join(self.content)
        if self.messages:
            return "\n".join(m.content for m in self.messages)
        return "".join(s.text for s in self.segments)

    @property
    def has_prompt(self) -> bool:
        """Whether something is asked before the answer (raw text asks nothing): the answer
        metrics generate from that prompt."""
        if self.messages:
            return self.messages[0].role != "assistant"
        return not self.segments[0].trainable

    @cached_property
    def content_key(self) -> str:
        """Canonical, normalised JSON of the content: equal for exact duplicates."""
        if self.messages:
            body: list = [["m", m.role, normalise(m.content)] for m in self.messages]
        else:
            body = [["s", int(s.trainable), normalise(s.text)] for s in self.segments]
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Problem:
    """A record or file that was left out, and why."""

    reason: str
    path: str
    detail: str
    record: int | None = None

    @property
    def is_defect(self) -> bool:
        """True when the data itself is wrong (as opposed to filtered on purpose)."""
        return self.reason not in FILTER_REASONS

    def describe(self) -> str:
        where = self.path if self.record is None else f"{self.path}: record {self.record}"
        return f"{where}: {self.detail}"

    def as_dict(self) -> dict[str, object]:
        return {"reason": self.reason, "file": self.path, "record": self.record,
                "detail": self.detail}


_TRAILING_SPACE = re.compile(r"[ \t]+\n")


def normalise(text: str) -> str:
    """Unicode NFC, Unix newlines, no trailing spaces on lines, stripped ends."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    if " \n" in text or "\t\n" in text:
        text = _TRAILING_SPACE.sub("\n", text)
    return text.strip()


def drop_duplicates(records: Iterable[Record]) -> tuple[list[Record], list[Problem]]:
    """Keep the first of each set of records with equal normalised content."""
    seen: dict[str, Record] = {}
    kept: list[Record] = []
    dropped: list[Problem] = []
    for rec in records:
        key = rec.content_key
        first = seen.get(key)
        if first is None:
            seen[key] = rec
            kept.append(rec)
        else:
            detail = f"exact duplicate of {first.path} record {first.index}"
            dropped.append(Problem("duplicate", rec.path, detail, rec.index))
    return kept, dropped


def drop_refusals(
    records: Iterable[Record], phrases: Sequence[str]
) -> tuple[list[Record], list[Problem]]:
    """Leave out records whose response contains refusal boilerplate (case-insensitive)."""
    lowered = [p.lower() for p in phrases if p.strip()]
    kept: list[Record] = []
    dropped: list[Problem] = []
    for rec in records:
        response = rec.response_text.lower()
        hit = next((p for p in lowered if p in response), None)
        if hit is None:
            kept.append(rec)
        else:
            dropped.append(Problem("refusal", rec.path, f"response contains {hit!r}", rec.index))
    return kept, dropped


def fingerprint(records: Iterable[Record], *, settings: str = "") -> str:
    """SHA-256 of the normalised records, in order, and of the ``settings`` that chose them:
    the dataset's identity for lineage."""
    digest = hashlib.sha256(b"harness-records-v1\n")
    if settings:
        digest.update(f"settings {settings}\n".encode())
    for rec in records:
        digest.update(rec.content_key.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass(frozen=True)
class Split:
    train: list[Record]
    eval: list[Record]
    test: list[Record] = field(default_factory=list)
    """Held out from everything a sweep decides by: only the final figures are measured on it."""
    note: str = ""
    """Why the eval (or test) side came out empty or short, when it did."""


def split_records(records: Sequence[Record], *, eval_fraction: float, seed: int,
                  test_fraction: float = 0.0, joined: Mapping[str, str] | None = None) -> Split:
    """Deterministic train/eval/test split by seed that keeps every group on one side.

    Groups are visited in an order fixed by hashing (seed, group); a group joins eval while it
    fits under eval's target size, then test while it fits under test's. Adding records to one
    group never moves another group, and adding a test split never changes the eval split.
    ``joined`` maps a group to the group it is split with (groups that share a near-duplicate
    cluster); groups it does not name are split alone.
    """
    joined = joined or {}

    def group(rec: Record) -> str:
        return joined.get(rec.group, rec.group)

    if eval_fraction <= 0 or not records:
        unused = ("data.test_fraction is ignored: with data.eval_fraction 0 nothing is held out"
                  if test_fraction > 0 and records else "")
        return Split(list(records), [], note=unused)
    sizes: dict[str, int] = {}
    for rec in records:
        sizes[group(rec)] = sizes.get(group(rec), 0) + 1
    if len(sizes) < 2:
        note = ("all records come from one source document, so none can be held out for "
                "evaluation; add documents (or, for raw text, a hard-cut string between parts)")
        return Split(list(records), [], note=note)
    order = sorted(sizes, key=lambda g: hashlib.sha256(f"{seed}\0{g}".encode()).hexdigest())
    held, note = _hold_out(order, sizes, target=max(1, round(eval_fraction * len(records))))
    test: set[str] = set()
    if test_fraction > 0:
        rest = [g for g in order if g not in held]
        test = _fill(rest[:-1], sizes, target=max(1, round(test_fraction * len(records))))
        if not test:
            note = " ".join(filter(None, [note, (
                "no test split: no source document left after the eval split fits under "
                "data.test_fraction; final figures are the eval split's")]))
    out = held | test
    return Split([r for r in records if group(r) not in out],
                 [r for r in records if group(r) in held],
                 [r for r in records if group(r) in test], note)


def _hold_out(order: list[str], sizes: dict[str, int], *, target: int) -> tuple[set[str], str]:
    """The eval groups, and a note when none fitted and the smallest was taken instead."""
    chosen = _fill(order, sizes, target=target)
    if chosen:
        return chosen, ""
    smallest = min(order, key=lambda g: sizes[g])
    return {smallest}, (f"every source document holds more than the {target} eval records "
                        f"asked for; held out the smallest ({sizes[smallest]} records)")


def _fill(order: list[str], sizes: dict[str, int], *, target: int) -> set[str]:
    """Groups taken in ``order`` while they fit under ``target`` records."""
    chosen: set[str] = set()
    taken = 0
    for group in order:
        if taken + sizes[group] <= target:
            chosen.add(group)
            taken += sizes[group]
    return chosen
