"""Training records that overlap a record of an evaluation set in runs of N words (n-gram
decontamination, as GPT-3's paper did with 13 words and Tulu 3 with 8).

Real data shares phrases without leaking anything ("check with your doctor if you have any of
the following" runs through MedQuAD's answers), so one shared n-gram is not enough: the n-grams
a training record shares with one evaluation record must cover a share (`overlap`) of the
shorter of the two, and n-grams common to many evaluation records are the set's template text
and never count. The evaluation side is indexed once, by n-gram; each training record's
n-grams are looked up in it, and the report shows the longest run of words the pair shares.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.data.records import Problem, Record
from harness.data.shingles import distinct, ngram_hashes, word_hashes, words

SPAN_WORDS = 30
"""Words of an overlapping run the report shows."""


@dataclass(frozen=True)
class Source:
    """An evaluation record the index holds."""

    path: str
    index: int
    words: list[str]


@dataclass(frozen=True)
class Overlap:
    """A training record's first run of words shared with an evaluation record."""

    source: Source
    span: list[str]

    def describe(self, n: int) -> str:
        shown = " ".join(self.span[:SPAN_WORDS]) + (" ..." if len(self.span) > SPAN_WORDS else "")
        return (f"overlaps {self.source.path} record {self.source.index} in runs of {n}+ "
                f"words, the longest {len(self.span)}: \"{shown}\"")


class NgramIndex:
    """The n-grams of a set of evaluation records, but those common to many of them (which
    count on neither side of an overlap)."""

    def __init__(self, n: int, records: Iterable[Record], *, common: float,
                 overlap: float) -> None:
        self.n = n
        self.overlap = overlap
        self.sources: list[Source] = []
        postings: dict[int, list[int]] = {}
        for rec in records:
            ws = words(rec.plain_text)
            for h in set(ngram_hashes(word_hashes(ws), n).tolist()):
                postings.setdefault(h, []).append(len(self.sources))
            self.sources.append(Source(rec.path, rec.index, ws))
        limit = max(1.0, common * len(self.sources))
        # An n-gram in more than `limit` records is the set's template text (a tool's
        # description, a system prompt), not any one item's words.
        self._postings = {h: at for h, at in postings.items() if len(at) <= limit}
        self._common = set(postings) - set(self._postings)
        self._counted = [0] * len(self.sources)
        """Each evaluation record's n-grams that count (not common)."""
        for at in self._postings.values():
            for src in at:
                self._counted[src] += 1

    def __len__(self) -> int:
        return len(self._postings)

    def overlap_of(self, record: Record) -> Overlap | None:
        """The evaluation record sharing the most n-grams with ``record``, when they cover
        at least ``overlap`` of the shorter one's n-grams, with the longest shared run."""
        ws = words(record.plain_text)
        hashes = distinct(ngram_hashes(word_hashes(ws), self.n)).tolist()
        postings = self._postings
        shared: Counter[int] = Counter()
        for h in hashes:
            if h in postings:  # a dict lookup a value beats a search of a sorted array
                shared.update(postings[h])
        if not shared:
            return None
        src, count = shared.most_common(1)[0]
        ours = len(hashes) - sum(h in self._common for h in hashes)
        if count < self.overlap * min(ours, self._counted[src]):
            return None
        return Overlap(self.sources[src], _longest_run(ws, self.sources[src].words, self.n))


def _longest_run(ours: list[str], theirs: list[str], n: int) -> list[str]:
    """The longest run of words (n or more) the two texts share."""
    starts: dict[tuple[str, ...], list[int]] = {}
    for j in range(len(theirs) - n + 1):
        starts.setdefault(tuple(theirs[j:j + n]), []).append(j)
    best: list[str] = []
    for i in range(len(ours) - n + 1):
        for j in starts.get(tuple(ours[i:i + n]), ()):
            end = n
            while (i + end < len(ours) and j + end < len(theirs)
                   and ours[i + end] == theirs[j + end]):
                end += 1
            if end > len(best):
                best = ours[i:i + end]
    return best


def contaminated(records: Sequence[Record], index: NgramIndex, *,
                 against: str) -> list[tuple[int, Problem]]:
    """Positions of the records that overlap a record of ``index``, each with its reason
    (``against`` names the evaluation set in words)."""
    out: list[tuple[int, Problem]] = []
    for i, rec in enumerate(records):
        hit = index.overlap_of(rec)
        if hit is not None:
            named = "" if against == hit.source.path else f"{against}: "
            out.append((i, Problem("contaminated", rec.path, named + hit.describe(index.n),
                                   rec.index)))
    return out
