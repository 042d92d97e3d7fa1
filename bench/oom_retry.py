"""An out-of-memory trial retried in half-size forward passes, through a real sweep.

On a GPU the trial is held to less memory than its micro-batch needs but more than half of it
(`HARNESS_GPU_MEMORY_GB`, from the estimate), so it meets a real CUDA out-of-memory and the
retry must fit. Without one (``--dry-run``) the out-of-memory is injected (`oom@2>1`) into a
trial of the tiny Llama. Either way: the trial must complete, tagged as retried, and the steps
both attempts trained must agree.

Usage: python bench/oom_retry.py [--dry-run] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from common import ROOT
from memory_estimate import raw_text
from random_llama import build, build_tiny_model

from harness.launch.retry import halved
from harness.memory.estimate import estimate
from harness.memory.shape import model_shape
from harness.space.load import load_space

SPACE = """model: {model}
data: {{path: {text}, format: rawtext, cutoff_len: {cutoff}, eval_fraction: 0.02,
        test_fraction: 0.02, near_dup: off}}
training: {{max_steps: 4, micro_batch_size: {micro}, eval_steps: 2, learning_rate: 1.0e-4}}
samples: {{count: 1, max_new_tokens: 4}}
retention: {{enabled: false}}
study: {{name: oom-retry, trials: 1, sampler: random, pruner: none, memory_limit_gb: 1000,
         output_dir: {out}}}
registry: {{model_name: oom-retry}}
search:
  lora.r: [8]
"""


def step_losses(path: Path) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in map(json.loads, path.read_text().splitlines())
            if e["event"] == "step"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny Llama, injected OOM")
    parser.add_argument("--model", help="a model directory (default: a random 1B Llama)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="oom-retry-"))
    gpu = torch.cuda.is_available() and not args.dry_run
    if gpu:
        model, micro, cutoff = args.model or str(build(work / "llama-1b", size="1b")), 16, 1024
    else:
        model, micro, cutoff = str(build_tiny_model(work / "tiny")), 2, 64
    space = work / "space.yaml"
    space.write_text(SPACE.format(model=model, text=raw_text(work / "corpus.txt"),
                                  cutoff=cutoff, micro=micro, out=work / "studies"))
    env = {**os.environ}
    if gpu:
        config = load_space(str(space)).train_config({"lora.r": 8}, output_dir="x")
        shape = model_shape(model)
        full = estimate(config, shape, device="cuda")
        smaller = halved(config)
        assert smaller is not None
        half = estimate(smaller, shape, device="cuda")
        cap = (full.tensors_mb + half.tensors_mb) / 2 / 1024
        env["HARNESS_GPU_MEMORY_GB"] = f"{cap:.2f}"
        print(f"estimate {full.tensors_mb:,.0f} MB whole, {half.tensors_mb:,.0f} MB in halves; "
              f"the trial is held to {cap:.2f} GB")
    else:
        env["HARNESS_FAULT"] = "oom@2>1"
    done = subprocess.run([sys.executable, "-m", "harness", "sweep", str(space), "--storage",
                           str(work / "optuna.journal"), "--tracking-uri",
                           f"sqlite:///{work / 'mlflow.db'}", "--no-promote"], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    trial = work / "studies" / "oom-retry" / "trial-0000"
    retried = [line for line in done.stderr.splitlines() if "retried" in line]
    print("\n".join(retried) or done.stderr[-3000:])
    first, second = step_losses(trial / "events.1.jsonl"), step_losses(trial / "events.jsonl")
    # no step before the first out-of-memory (a real one strikes in step 1): nothing to compare
    same = bool(first) and all(abs(second[s] - first[s]) <= 1e-3 * abs(first[s])
                               for s in first)
    print(f"first attempt steps {sorted(first)}, retry steps {sorted(second)}; "
          f"losses of the steps both trained agree: "
          f"{same if first else 'none to compare'}; sweep exit {done.returncode}")
    agreed = same or (gpu and not first)
    return 0 if retried and agreed and done.returncode == 0 and len(second) == 4 else 1


if __name__ == "__main__":
    sys.exit(main())
