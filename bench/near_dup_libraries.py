"""Benchmark: datasketch (what the harness builds on) against rensa (a Rust MinHash) for
near-duplicate clusters, on the same records, shingles, threshold and signature length.

Times each library's whole path from record text to clustered records, side by side in one
run, and how far their flagged records agree. Usage:
python bench/near_dup_libraries.py [--threshold 0.8] [--copies 4]
(--copies N stacks N lightly altered copies of the Toolformer set, for a larger corpus)
"""

from __future__ import annotations

import argparse
import json
import random
import time

from common import TOOLFORMER
from rensa import RMinHash, RMinHashLSH

from harness.data.neardup import NGRAM, NUM_PERM, find_clusters
from harness.data.shingles import words

SOURCE = TOOLFORMER


def corpus(copies: int) -> list[str]:
    rows = json.loads(SOURCE.read_text())
    texts = ["\n".join(v for v in r.values() if isinstance(v, str)) for r in rows]
    rng = random.Random(0)
    out = list(texts)
    for k in range(1, copies):  # each copy changes one word in five: a new, realistic corpus
        for t in texts:
            ws = t.split()
            out.append(" ".join(f"{w}{k}" if rng.random() < 0.2 else w for w in ws))
    return out


def with_rensa(texts: list[str], threshold: float) -> set[int]:
    lsh = RMinHashLSH(threshold, NUM_PERM, 16)
    parent = list(range(len(texts)))
    sketches = []
    for i, text in enumerate(texts):
        ws = words(text)
        grams = [" ".join(ws[j:j + NGRAM]) for j in range(max(1, len(ws) - NGRAM + 1))]
        m = RMinHash(NUM_PERM, 1)
        m.update(grams)
        sketches.append(m)
        for j in lsh.query(m):
            if m.jaccard(sketches[j]) >= threshold:
                a, b = _root(parent, i), _root(parent, j)
                parent[max(a, b)] = min(a, b)
        lsh.insert(i, m)
    return _in_clusters(parent)


def _root(parent: list[int], i: int) -> int:
    while parent[i] != i:
        i = parent[i]
    return i


def _in_clusters(parent: list[int]) -> set[int]:
    roots: dict[int, list[int]] = {}
    for i in range(len(parent)):
        roots.setdefault(_root(parent, i), []).append(i)
    return {i for members in roots.values() if len(members) > 1 for i in members}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--copies", type=int, default=4)
    args = parser.parse_args()
    texts = corpus(args.copies)
    start = time.perf_counter()
    ours = {i for members in find_clusters(texts, threshold=args.threshold).members
            for i in members}
    datasketch_s = time.perf_counter() - start
    start = time.perf_counter()
    theirs = with_rensa(texts, args.threshold)
    rensa_s = time.perf_counter() - start
    both = len(ours & theirs)
    print(f"{len(texts)} records, threshold {args.threshold}, {NUM_PERM} permutations, "
          f"{NGRAM}-word shingles")
    print()
    print("| library | seconds | records in clusters |")
    print("| --- | ---: | ---: |")
    print(f"| datasketch {__import__('datasketch').__version__} | {datasketch_s:.1f} | "
          f"{len(ours)} |")
    print(f"| rensa | {rensa_s:.1f} | {len(theirs)} |")
    print(f"\nflagged by both: {both}; agreement (Jaccard of the flagged sets): "
          f"{both / max(1, len(ours | theirs)):.3f}")


if __name__ == "__main__":
    main()
