"""Raw text: a .txt file or a directory of them, cut into training sequences by tokens.

Text is first split at the hard-cut string (a part never spans one). Each part is cut every
``cutoff_len`` tokens, backing off to the last newline when one lies within ``newline_window``
tokens of the cut, and consecutive chunks share ``overlap_len`` tokens. Chunks are slices of the
original text (by the tokenizer's character offsets), so nothing is lost to decoding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.records import Problem, Record, Segment
from harness.data.textfile import read_text

Offsets = list[tuple[int, int]]
TokenOffsets = Callable[[str], Offsets]
"""A function giving the character span of every token of a text."""

_WORD = re.compile(r"\s+|\S+\s*")


def word_offsets(text: str) -> Offsets:
    """Stand-in tokenizer (a word with its trailing space) for when no model is given."""
    return [m.span() for m in _WORD.finditer(text)]


def tokenizer_offsets(tokenizer: Any) -> TokenOffsets:
    """Character spans of a Hugging Face fast tokenizer's tokens, special tokens left out."""

    def offsets(text: str) -> Offsets:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [(s, e) for s, e in enc["offset_mapping"] if e > s]

    return offsets


@dataclass(frozen=True)
class Chunking:
    cutoff_len: int
    overlap_len: int = 0
    hard_cut: str = "\n\n\n"
    newline_window: int = 16
    min_chunk_tokens: int = 8


def load_rawtext(
    path: Path, chunking: Chunking, offsets: TokenOffsets
) -> tuple[list[Record], list[Problem]]:
    text = read_text(path).replace("\r\n", "\n")
    parts = text.split(chunking.hard_cut) if chunking.hard_cut else [text]
    records: list[Record] = []
    problems: list[Problem] = []
    for part_no, part in enumerate(parts):
        if not part.strip():
            continue
        for chunk in chunk_text(part, chunking, offsets):
            index = len(records) + len(problems)
            if chunk.tokens < chunking.min_chunk_tokens:
                problems.append(Problem("short_chunk", str(path), f"part {part_no}: a chunk of "
                                        f"{chunk.tokens} tokens, under min_chunk_tokens", index))
                continue
            records.append(Record(path=str(path), index=index, group=f"{path}#part{part_no}",
                                  segments=(Segment(chunk.text, True),),
                                  meta={"part": str(part_no)}, ends_text=False))
    return records, problems


@dataclass(frozen=True)
class Chunk:
    text: str
    tokens: int


def chunk_text(text: str, chunking: Chunking, offsets: TokenOffsets) -> Iterator[Chunk]:
    spans = offsets(text)
    n, start = len(spans), 0
    while start < n:
        end = min(start + chunking.cutoff_len, n)
        if end < n:
            end = _newline_cut(text, spans, start, end, chunking)
        piece = text[spans[start][0] : spans[end - 1][1]]
        if piece.strip():
            yield Chunk(piece, end - start)
        if end == n:
            return
        start = max(end - chunking.overlap_len, start + 1)


def _newline_cut(text: str, spans: Offsets, start: int, end: int, chunking: Chunking) -> int:
    """The cut moved back to just after the last newline-bearing token within the window."""
    lowest = max(end - chunking.newline_window, start + chunking.overlap_len + 1)
    for j in range(end - 1, lowest - 1, -1):
        s, e = spans[j]
        if "\n" in text[s:e]:
            return j + 1
    return end
