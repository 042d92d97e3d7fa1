from __future__ import annotations

from pathlib import Path

import pytest

from harness.data.rawtext import (
    Chunking,
    chunk_text,
    load_rawtext,
    tokenizer_offsets,
    word_offsets,
)

TEXT = "\n".join(f"Line {i} has some words in it." for i in range(60))


def test_chunks_respect_cutoff_and_overlap_exactly() -> None:
    chunking = Chunking(cutoff_len=20, overlap_len=5, newline_window=0, min_chunk_tokens=1)
    spans = word_offsets(TEXT)
    chunks = list(chunk_text(TEXT, chunking, word_offsets))
    assert all(c.tokens <= 20 for c in chunks)
    starts = [0]
    for c in chunks[:-1]:
        starts.append(starts[-1] + c.tokens - 5)
    for start, chunk in zip(starts, chunks, strict=True):
        assert chunk.text == TEXT[spans[start][0]: spans[start + chunk.tokens - 1][1]]
    assert chunks[-1].text.endswith("Line 59 has some words in it.")


def test_cuts_prefer_a_newline_within_the_window() -> None:
    chunking = Chunking(cutoff_len=16, newline_window=8, min_chunk_tokens=1)
    chunks = list(chunk_text(TEXT, chunking, word_offsets))
    assert all(c.text.endswith("\n") for c in chunks[:-1])
    assert "".join(c.text for c in chunks) == TEXT


def test_without_a_newline_nearby_the_cut_is_exact() -> None:
    words = " ".join(f"w{i}" for i in range(100))
    chunks = list(chunk_text(words, Chunking(cutoff_len=30, newline_window=8), word_offsets))
    assert [c.tokens for c in chunks] == [30, 30, 30, 10]


def test_hard_cut_ends_parts_and_groups_them(tmp_path: Path) -> None:
    path = tmp_path / "book.txt"
    path.write_text("Part one text here.\n\n\nPart two text there.\r\n", encoding="utf-8")
    records, problems = load_rawtext(path, Chunking(cutoff_len=32, min_chunk_tokens=1),
                                     word_offsets)
    assert [r.segments[0].text for r in records] == ["Part one text here.",
                                                     "Part two text there.\n"]
    assert records[0].group != records[1].group
    assert not any(r.ends_text for r in records) and problems == []


def test_short_leftovers_are_counted_not_lost_silently(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text(" ".join(f"w{i}" for i in range(22)), encoding="utf-8")
    records, problems = load_rawtext(path, Chunking(cutoff_len=10, newline_window=0,
                                                    min_chunk_tokens=5), word_offsets)
    assert len(records) == 2
    assert [(p.reason, p.record) for p in problems] == [("short_chunk", 2)]


def test_real_tokenizer_offsets_cut_by_tokens(tiny_tokenizer) -> None:
    offsets = tokenizer_offsets(tiny_tokenizer)
    chunks = list(chunk_text(TEXT, Chunking(cutoff_len=24, overlap_len=4), offsets))
    for c in chunks:
        assert c.tokens <= 24
        assert len(tiny_tokenizer(c.text, add_special_tokens=False)["input_ids"]) <= 26
    assert chunks[0].text.startswith("Line 0") and chunks[-1].text.endswith("in it.")


@pytest.mark.parametrize("overlap", [0, 3, 9])
def test_progress_is_guaranteed(overlap: int) -> None:
    text = "\n".join("x" for _ in range(50))
    chunks = list(chunk_text(text, Chunking(cutoff_len=10, overlap_len=overlap,
                                            newline_window=9, min_chunk_tokens=1), word_offsets))
    assert chunks and len(chunks) < 60
