"""Benchmark: `harness data check` parse time over the MedQuAD collections.

Measures, side by side in one run and in alternating order, (a) a bare lxml parse of every XML
file (the floor: reading and parsing alone) and (b) the harness's full load (hardened parse,
records, filters, dedupe, fingerprint, split), plus the whole `data check` report. Prints a
Markdown table for bench/RESULTS.md. Usage: python bench/data_check.py [PATH] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(DEFAULT))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
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
