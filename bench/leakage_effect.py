"""Benchmark: how much near-duplicates of training data flatter a test figure.

Splits the Toolformer set by record, as the harness did before it looked for near-duplicates,
trains one adapter (`harness train`, the embedded model) on a seeded sample of the training
side, and scores it and the base model (`harness eval`) on the test split whole, on the test
split with the near-duplicates of training records removed, and on those near-duplicates
alone. Usage: python bench/leakage_effect.py [--train 1200] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

import yaml
from common import TOOLFORMER

from harness.config import DataConfig
from harness.data.load import load_dataset
from harness.data.neardup import find_clusters

SOURCE = TOOLFORMER
THRESHOLD = 0.8


def write_splits(out: Path, train_size: int) -> dict[str, int]:
    data = load_dataset(DataConfig(path=str(SOURCE), near_dup="off", eval_fraction=0.1,
                                   test_fraction=0.1, on_invalid="skip"))
    train = random.Random(0).sample(data.split.train + data.split.eval,
                                    min(train_size, len(data.split.train)))
    test = data.split.test
    clusters = find_clusters([r.plain_text for r in train + test], threshold=THRESHOLD)
    leaky = {i - len(train) for members in clusters.members if min(members) < len(train)
             for i in members if i >= len(train)}
    rows = json.loads(SOURCE.read_text())
    sides = {"train": train, "test-all": test,
             "test-clean": [r for i, r in enumerate(test) if i not in leaky],
             "test-leaky": [r for i, r in enumerate(test) if i in leaky]}
    for name, records in sides.items():
        (out / f"{name}.json").write_text(json.dumps([rows[r.index] for r in records]))
    return {name: len(records) for name, records in sides.items()}


def train(out: Path) -> Path:
    config = {"model": "smollm2-135m-instruct",
              "data": {"path": str(out / "train.json"), "near_dup": "off", "cutoff_len": 128,
                       "eval_fraction": 0.05, "test_fraction": 0.0, "on_invalid": "skip"},
              "quantization": {"mode": "none"},
              "lora": {"r": 8, "alpha": 16, "target_modules": "all-linear"},
              "training": {"epochs": 1, "micro_batch_size": 8, "learning_rate": 5e-4,
                           "eval_steps": 1000, "save_steps": 1000, "seed": 42},
              "samples": {"count": 0}, "retention": {"enabled": False},
              "tracking": {"uri": f"sqlite:///{(out / 'mlflow.db').resolve()}",
                           "experiment": "leakage"},
              "output_dir": str(out / "adapter-run")}
    (out / "train.yaml").write_text(yaml.safe_dump(config))
    subprocess.run([sys.executable, "-m", "harness", "train", str(out / "train.yaml")],
                   check=True)
    return out / "adapter-run" / "adapter"


def losses(adapter: Path, data: Path) -> tuple[float, float, dict[str, float]]:
    got = subprocess.run([sys.executable, "-m", "harness", "eval", "base", str(adapter),
                          "--data", str(data), "--cutoff-len", "128",
                          "--max-examples", "0", "--max-answers", "1", "--max-new-tokens", "1",
                          "--metric", "exact_match", "--no-log", "--json"],
                         check=True, capture_output=True, text=True).stdout
    base, tuned = json.loads(got)["models"]
    return (base["figures"]["loss"]["mean"], tuned["figures"]["loss"]["mean"],
            tuned["versus_first"]["loss"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=1200)
    parser.add_argument("--out", default="leakage-bench")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = write_splits(out, args.train)
    adapter = train(out)
    print(f"\nToolformer split by record; adapter trained on {sizes['train']} records; "
          f"near-duplicates at estimated similarity {THRESHOLD}")
    print()
    print("| test records | n | base loss | adapter loss | adapter - base (95 % interval) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in ("test-all", "test-clean", "test-leaky"):
        base, tuned, diff = losses(adapter, out / f"{name}.json")
        print(f"| {name} | {sizes[name]} | {base:.4f} | {tuned:.4f} | {diff['mean']:+.4f} "
              f"({diff['low']:+.4f} to {diff['high']:+.4f}) |", flush=True)


if __name__ == "__main__":
    main()
