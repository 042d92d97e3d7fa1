"""Trials per hour of the demo space at one, two and four trials per GPU (`--per-gpu`), each
setting a fresh study on the first GPU, run one after another.

Usage: python bench/trials_per_gpu.py [--trials N] [--per-gpu 1,2,4]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT

from harness.memory.device import gpu_memory_mb
from harness.study.storage import load_study, open_storage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--per-gpu", default="1,2,4")
    args = parser.parse_args()
    if not gpu_memory_mb():
        print("no GPU here (nvidia-smi lists none): nothing to measure")
        return 0
    print("| trials per GPU | trials | seconds | trials per hour | complete |\n"
          "| ---: | ---: | ---: | ---: | ---: |")
    for per_gpu in map(int, args.per_gpu.split(",")):
        work = Path(tempfile.mkdtemp(prefix=f"per-gpu-{per_gpu}-"))
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "harness", "sweep", "search_spaces/demo.yaml", "--gpus", "0",
             "--per-gpu", str(per_gpu), "--trials", str(args.trials), "--no-promote",
             "--study", f"{work.name}",
             "--storage", str(work / "optuna.journal"),
             "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}"],
            cwd=ROOT, capture_output=True, text=True)
        seconds = time.monotonic() - started
        if done.returncode not in (0, 1):
            print(done.stderr[-3000:])
        study = load_study(work.name, open_storage(str(work / "optuna.journal")))
        complete = sum(t.state.name == "COMPLETE" for t in study.trials)
        print(f"| {per_gpu} | {args.trials} | {seconds:.0f} | "
              f"{args.trials / seconds * 3600:.0f} | {complete} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
