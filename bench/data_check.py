"""Benchmark: `harness data check` parse time over the MedQuAD collections.

Measures, side by side in one run and in alternating order, (a) a bare lxml parse of every XML
file (the floor: reading and parsing alone) and (b) the harness's full load (hardened parse,
records, filters, dedupe, fingerprint, split), plus the whole `data check` report. Prints a
Markdown table for bench/RESULTS.md. Usage: python bench/data_check.py [PATH] [--repeat N]

With --scale 10000,100000,1000000: the whole load (near-duplicates and contamination included)
over synthetic records built from the real sets (bench/synthetic_data.py), one fresh process a
size, with its wall time and peak memory, to show how it grows.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from harness.config import DataConfig
from harness.data.doctor import check
from harness.data.load import load_dataset

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "medquad"


def bare_parse(root: Path) -> int:
    files = sorted(root.rglob("*.xml"))
    for path in files:
        etree.fromstring(path.read_bytes())
    return len(files)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


LOAD = """
import resource, sys, time
from harness.config import DataConfig
from harness.data.load import load_dataset
start = time.perf_counter()
data = load_dataset(DataConfig(path=sys.argv[1]))
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
c = data.cleaning
print(seconds, peak, len(data.records), c.dropped, sum(c.contaminated.values()))
"""


def scale(sizes: list[int]) -> None:
    from synthetic_data import write

    print(f"{os.cpu_count()} CPUs, Python {platform.python_version()}; synthetic JSONL "
          "records from Toolformer and MedQuAD, one fresh process a size")
    print()
    print("| records | load s | s per 10k | peak MB | kept | near-dups left out | "
          "contaminated |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = write(Path(tmp) / f"records-{n}.jsonl", n)
            out = subprocess.run([sys.executable, "-c", LOAD, str(path)], check=True,
                                 capture_output=True, text=True).stdout.split()
            seconds, peak = float(out[0]), float(out[1])
            print(f"| {n:,} | {seconds:.1f} | {seconds / n * 1e4:.2f} | {peak:.0f} | "
                  f"{out[2]} | {out[3]} | {out[4]} |", flush=True)
            path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(DEFAULT))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scale", help="comma-separated record counts")
    args = parser.parse_args()
    if args.scale:
        scale([int(n) for n in args.scale.split(",")])
        return
    root = Path(args.path)
    config = DataConfig(path=str(root))
    n_files = bare_parse(root)  # warm the page cache once
    data = load_dataset(config)
    runs: dict[str, list[float]] = {"bare lxml parse": [], "harness load": [],
                                    "harness data check": []}
    for _ in range(args.repeat):
        runs["bare lxml parse"].append(timed(lambda: bare_parse(root)))
        runs["harness load"].append(timed(lambda: load_dataset(config)))
        runs["harness data check"].append(timed(lambda: check(config)))
    floor = statistics.median(runs["bare lxml parse"])
    print(f"MedQuAD at {root}: {n_files} XML files, {data.read} QA pairs, "
          f"{len(data.records)} usable; {os.cpu_count()} CPUs, {platform.processor() or '?'}, "
          f"Python {platform.python_version()}, median of {args.repeat}")
    print()
    print("| stage | median s | min s | ratio to bare parse |")
    print("| --- | ---: | ---: | ---: |")
    for name, times in runs.items():
        med = statistics.median(times)
        print(f"| {name} | {med:.2f} | {min(times):.2f} | {med / floor:.2f} |")


if __name__ == "__main__":
    main()
