"""Records as runs of words, the common ground of near-duplicate and contamination checks.

Both compare what a record says, not how a format dresses it: the words of its own texts
(`Record.plain_text`), Unicode-normalised and case-folded, punctuation and spacing dropped. So an
Alpaca record, a chat conversation and a MedQuAD pair saying the same words compare equal.
Word and n-gram hashes are stable across processes and machines (not Python's salted `hash`), so
the same data gives the same clusters and the same matches everywhere.
"""

from __future__ import annotations

import re
import zlib

import numpy as np

from harness.data.records import normalise

_WORD = re.compile(r"\w+")
_MULTIPLIER = np.uint64(0x100000001B3)  # the 64-bit FNV prime: odd, so rolling never collapses


def words(text: str) -> list[str]:
    """The words (runs of letters, digits and underscores) of ``text``, normalised and
    case-folded."""
    return _WORD.findall(normalise(text).casefold())


def word_hashes(ws: list[str]) -> np.ndarray:
    """One stable 64-bit hash per word: CRC-32 and Adler-32 of its UTF-8 side by side, both
    computed in C over the whole list (a Python call a word was most of the cost)."""
    encoded = list(map(str.encode, ws))
    low = np.fromiter(map(zlib.crc32, encoded), dtype=np.uint64, count=len(ws))
    high = np.fromiter(map(zlib.adler32, encoded), dtype=np.uint64, count=len(ws))
    return (high << np.uint64(32)) | low


def ngram_hashes(hashes: np.ndarray, n: int) -> np.ndarray:
    """A 64-bit hash of each run of ``n`` consecutive words (position i: words i..i+n-1).
    A text shorter than ``n`` words has none."""
    count = len(hashes) - n + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    acc: np.ndarray = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):  # wrapping multiplication is the point
        for k in range(n):
            acc = acc * _MULTIPLIER + hashes[k:k + count]
    return acc


def shingles(text: str, n: int) -> np.ndarray:
    """The distinct n-word shingles of ``text`` as 32-bit values (MinHash's input); a text
    shorter than ``n`` words is one shingle of all its words, an empty one none."""
    hashes = word_hashes(words(text))
    hashes = ngram_hashes(hashes, min(n, len(hashes)) or n)
    return distinct(hashes & np.uint64(0xFFFFFFFF))


def distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted (as `np.unique`, about three times faster on the few
    hundred values of one record)."""
    values = np.sort(values)
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values
