"""Trials per hour of the demo space at one, two and four trials per GPU (`--per-gpu`), each
setting a fresh study on the first GPU, run one after another. Every setting trains the same
trials: the random sampler (seeded per trial number) and no pruner, so neither the order in which
trials end nor their peers change the work. The rate counts complete trials.

Usage: python bench/trials_per_gpu.py [--trials N] [--per-gpu 1,2,4]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
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
    demo = yaml.safe_load((ROOT / "search_spaces" / "demo.yaml").read_text())
    demo["study"].update(sampler="random", pruner="none")
    demo["data"]["path"] = str(ROOT / demo["data"]["path"])  # the copy lives elsewhere
    for per_gpu in map(int, args.per_gpu.split(",")):
        work = Path(tempfile.mkdtemp(prefix=f"per-gpu-{per_gpu}-"))
        space = work / "demo.yaml"
        space.write_text(yaml.safe_dump({**demo, "study": {
            **demo["study"], "output_dir": str(work / "studies")}}))
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "harness", "sweep", str(space), "--gpus", "0",
             "--per-gpu", str(per_gpu), "--trials", str(args.trials), "--no-promote",
             "--study", f"{work.name}",
             "--storage", str(work / "optuna.journal"),
             "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}"],
            cwd=ROOT, capture_output=True, text=True)
        seconds = time.monotonic() - started
        study = load_study(work.name, open_storage(str(work / "optuna.journal")))
        complete = sum(t.state.name == "COMPLETE" for t in study.trials)
        if done.returncode != 0 or complete < args.trials:
            print(done.stderr[-3000:], file=sys.stderr)
        print(f"| {per_gpu} | {args.trials} | {seconds:.0f} | "
              f"{complete / seconds * 3600:.0f} | {complete} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
