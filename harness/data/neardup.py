"""Near-duplicate records: MinHash signatures and locality-sensitive hashing (datasketch),
clusters as connected components, and one record kept per cluster.

Records are streamed: each one's shingles are made and signed, and only the most recent
records' shingles are kept, so memory holds the LSH index, never every shingle set. A record is
queried against those indexed before it; a candidate joins its cluster when their exact Jaccard
similarity (shingles made again where they are no longer kept) reaches the threshold: LSH lets
pairs below it through by design of its banding, and so does the signatures' estimate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from datasketch import MinHash, MinHashLSH

from harness.data.records import Problem, Record
from harness.data.shingles import shingles

NGRAM = 3
"""Words per shingle. On the Toolformer set, 3-word shingles over the whole record found
the near-duplicates its authors removed with far higher agreement than 5 (bench/RESULTS.md,
issue 31); short instruction records have too few 5-word runs to compare."""
NUM_PERM = 128
"""Signature length: with the LSH's banding for 0.8, a pair at 0.8 is a candidate with
probability above 0.9 (datasketch weighs misses and false candidates equally)."""
_PERMUTATIONS = MinHash(num_perm=NUM_PERM, seed=1).permutations


def _band_key(band: bytes) -> bytes:
    # 8 bytes per band and record in the index instead of the band's 8 * r bytes.
    return hashlib.blake2b(band, digest_size=8).digest()


CACHED = 20_000
"""Records whose shingles are kept for confirming candidates (about 50 MB at most): the
records just read, which are most of the candidates the index returns."""


@dataclass
class Clusters:
    """The near-duplicate clusters among some texts, by their positions."""

    threshold: float
    texts: Sequence[str] = field(repr=False)
    ngram: int = NGRAM
    members: list[list[int]] = field(default_factory=list)
    """Clusters of two or more records, each sorted, in order of their first member."""
    cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    """Recent records' shingles."""

    def shingles_of(self, i: int) -> np.ndarray:
        got = self.cache.get(i)
        if got is None:
            if len(self.cache) >= CACHED:
                self.cache.clear()
            got = self.cache[i] = shingles(self.texts[i], self.ngram)
        return got

    def similarity(self, i: int, j: int) -> float:
        """The Jaccard similarity of texts i and j over their shingles, computed exactly:
        signatures only find the candidates. (Confirming by the estimate let pairs through
        whose true similarity was 0.72 to 0.78: among the pairs a 0.8 estimate selects, the
        estimate runs high.)"""
        a, b = self.shingles_of(i), self.shingles_of(j)
        if not len(a) or not len(b):
            return 0.0
        both = len(np.intersect1d(a, b, assume_unique=True))
        return both / (len(a) + len(b) - both)


def find_clusters(texts: Sequence[str], *, threshold: float, ngram: int = NGRAM) -> Clusters:
    """Cluster ``texts`` whose Jaccard similarity over word ``ngram`` shingles reaches
    ``threshold``, linking transitively. Texts without words join no cluster."""
    clusters = Clusters(threshold, texts, ngram)
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM, hashfunc=_band_key)
    parent = list(range(len(texts)))
    for i in range(len(texts)):
        values = clusters.shingles_of(i)
        if not len(values):
            continue
        # the values are hashes already: int() passes them through, at C speed
        sketch = MinHash(num_perm=NUM_PERM, hashfunc=int, permutations=_PERMUTATIONS,
                         scheme="affine32")
        sketch.update_batch(values.tolist())
        for j in lsh.query(sketch):
            a, b = _root(parent, i), _root(parent, j)
            if a != b and clusters.similarity(i, j) >= threshold:
                parent[max(a, b)] = min(a, b)
        lsh.insert(i, sketch, check_duplication=False)
    clusters.members = _components(parent)
    return clusters


def _root(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _components(parent: list[int]) -> list[list[int]]:
    groups: dict[int, list[int]] = {}
    for i in range(len(parent)):
        groups.setdefault(_root(parent, i), []).append(i)
    return [members for members in groups.values() if len(members) > 1]


def seeded_order(records: Sequence[Record], members: Sequence[int], *, seed: int) -> list[int]:
    """``members`` in an order fixed by a seeded hash of their content: it does not depend on
    file order or on records outside ``members``."""
    return sorted(members, key=lambda i: hashlib.sha256(
        f"{seed}\0{records[i].content_key}".encode()).hexdigest())


def stars(records: Sequence[Record], clusters: Clusters, *, seed: int) -> list[list[int]]:
    """Each cluster thinned to records no two of which are near-duplicates: visited in seeded
    order, a record is kept unless it is a near-duplicate of one already kept, and then joins
    that one's star. A cluster linked as a chain (A like B, B like C, A unlike C) keeps A and
    C, which one-per-cluster would not. Stars of two or more, kept record first."""
    out: list[list[int]] = []
    for members in clusters.members:
        kept: list[list[int]] = []
        for i in seeded_order(records, members, seed=seed):
            alike = [clusters.similarity(i, star[0]) for star in kept]
            best = max(range(len(alike)), key=alike.__getitem__, default=None)
            if best is not None and alike[best] >= clusters.threshold:
                kept[best].append(i)
            else:
                kept.append([i])
        out += [star for star in kept if len(star) > 1]
    return out


def drop_near_duplicates(records: Sequence[Record], clusters: Clusters, *,
                         seed: int) -> tuple[list[Record], list[Problem], list[list[int]]]:
    """``records`` without the near-duplicates of each star's kept record, each left out with
    its reason; and the stars."""
    dropped: dict[int, Problem] = {}
    found = stars(records, clusters, seed=seed)
    for star in found:
        first = records[star[0]]
        for i in star[1:]:
            rec = records[i]
            dropped[i] = Problem("near_duplicate", rec.path, (
                f"near-duplicate of {first.path} record {first.index} (similarity "
                f"{clusters.similarity(i, star[0]):.2f})"), rec.index)
    kept_records = [r for i, r in enumerate(records) if i not in dropped]
    return kept_records, [dropped[i] for i in sorted(dropped)], found
