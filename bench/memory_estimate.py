"""The memory estimate against the measured peak, over a matrix of trial configs.

Each config runs as a real trial (two optimizer steps, then the trial's evals, samples and
adapter) in its own process; its measured peak is the trial's `memory/peak_mb` (resident memory
on the CPU, the allocator's peak on CUDA). The estimate is made from the model's config alone,
as `harness sweep --no-run` makes it. The data is raw text, so every training example is a full
`cutoff_len` tokens long: the estimate sizes the worst micro-batch, and this data has only those.

On a GPU the measured peak is the CUDA allocator's (`torch.cuda.max_memory_allocated`), so it is
set against the estimate's tensors alone (`Estimate.tensors_mb`: without the CUDA context and
the allocator's slack, which the total adds for placement).

Usage: python bench/memory_estimate.py [--quick] [--only LABEL,...] [--measured FILE]
                                       [--save FILE] [--fit] [--model DIR]
``--measured`` reads the peaks of an earlier run (its JSON lines; this machine's are in
bench/memory_peaks_cpu.jsonl) instead of training again;
``--fit`` fits the CPU's figures (`harness.memory.estimate.CpuFit`: the process, the heap's
slack, bitsandbytes' float32 copies) to the measured peaks, least squares on the relative error,
and shows the matrix again with them; ``--model`` runs the first config on that model alone
(the CPU dry run of bench/gpu.sh).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import ROOT, harness_trial
from random_llama import build

from harness.config import TrainConfig, from_mapping
from harness.memory.estimate import CPU_FIT, CpuFit, estimate
from harness.memory.shape import ModelShape, model_shape
from harness.protocol import Finished

TOOLFORMER = ROOT.parent / "shared" / "data" / "gpteacher-toolformer" / \
    "toolformer-dedupe-only-dataset.json"

# (label, model, settings): the model is "embedded" (SmolLM2-135M) or a random Llama size
MATRIX: list[tuple[str, str, dict[str, Any]]] = [
    ("135m fp32 r8 4x128", "embedded", {}),
    ("135m fp32 r64 4x128", "embedded", {"lora.r": 64}),
    ("135m fp32 r8 8x256", "embedded", {"training.micro_batch_size": 8, "data.cutoff_len": 256}),
    ("135m fp32 r8 2x512", "embedded", {"training.micro_batch_size": 2, "data.cutoff_len": 512}),
    ("135m fp32 r8 8x256 ckpt", "embedded", {"training.micro_batch_size": 8,
                                             "data.cutoff_len": 256,
                                             "training.gradient_checkpointing": True}),
    ("135m fp32 r8 8x256 packed", "embedded", {"training.micro_batch_size": 8,
                                               "data.cutoff_len": 256, "data.batching": "packed"}),
    ("135m 4bit r16 4x256", "embedded", {"quantization.mode": "4bit", "lora.r": 16,
                                         "data.cutoff_len": 256}),
    ("135m 8bit r16 4x256", "embedded", {"quantization.mode": "8bit", "lora.r": 16,
                                         "data.cutoff_len": 256}),
    ("135m fp32 r8 4x256 dora", "embedded", {"lora.dora": True, "data.cutoff_len": 256}),
    ("135m fp32 r8 4x256 attn", "embedded", {"lora.target_modules": ["q_proj", "k_proj",
                                                                     "v_proj", "o_proj"],
                                             "data.cutoff_len": 256, "lora.dropout": 0.0}),
    ("400m fp32 r16 4x256", "400m", {"lora.r": 16, "data.cutoff_len": 256}),
    ("400m 4bit r16 4x256", "400m", {"quantization.mode": "4bit", "lora.r": 16,
                                     "data.cutoff_len": 256}),
    ("400m 8bit r32 2x512 ckpt", "400m", {"quantization.mode": "8bit", "lora.r": 32,
                                          "training.micro_batch_size": 2, "data.cutoff_len": 512,
                                          "training.gradient_checkpointing": True}),
    ("1b 4bit r16 2x256", "1b", {"quantization.mode": "4bit", "lora.r": 16,
                                 "training.micro_batch_size": 2, "data.cutoff_len": 256}),
    ("1b fp32 r8 1x256", "1b", {"training.micro_batch_size": 1, "data.cutoff_len": 256}),
]
QUICK = {"135m fp32 r8 4x128", "135m 4bit r16 4x256"}


def raw_text(path: Path) -> Path:
    """The Toolformer set's responses and instructions as one text file (about 2 MB)."""
    records = json.loads(TOOLFORMER.read_text())[:3000]
    # a hard cut (three newlines) every 30 records: documents for the split to hold out
    parts = ["\n\n".join(f"{r['instruction']}\n{r['output']}" for r in records[i:i + 30])
             for i in range(0, len(records), 30)]
    path.write_text("\n\n\n".join(parts))
    return path


def config_of(model: str, settings: dict[str, Any], *, text: Path, out: Path) -> TrainConfig:
    raw: dict[str, Any] = {
        "model": model, "output_dir": str(out),
        "data": {"path": str(text), "format": "rawtext", "cutoff_len": 128,
                 "eval_fraction": 0.02, "test_fraction": 0.02, "near_dup": "off"},
        "lora": {"r": 8, "alpha": 16}, "training": {"max_steps": 2, "micro_batch_size": 4},
        "samples": {"count": 2, "max_new_tokens": 16},
        "evaluation": {"max_test_examples": 16},
    }
    for key, value in settings.items():
        section, name = key.split(".")
        raw.setdefault(section, {})[name] = value
    return from_mapping(TrainConfig, raw)


def measure(label: str, config: TrainConfig, out: Path) -> float:
    result = harness_trial(config, out)
    finished = result.last(Finished)
    assert finished is not None, label
    return finished.peak_memory_mb


Row = tuple[str, TrainConfig, ModelShape, float]
"""A config's label, its config, its model's shape and its measured peak (MB)."""


def fit(rows: list[Row]) -> CpuFit:
    """The CPU figures that best fit the measured peaks (least squares on the relative error);
    a figure no config of ``rows`` depends on keeps its value."""
    names = [f.name for f in dataclasses.fields(CpuFit)]

    def total(config: TrainConfig, shape: ModelShape, cpu: CpuFit) -> float:
        return estimate(config, shape, device="cpu", cpu=cpu).total_mb

    zero = dataclasses.replace(CPU_FIT, **dict.fromkeys(names, 0.0))
    design, target = [], []
    for _, config, shape, peak in rows:
        base = total(config, shape, zero)
        design.append([(total(config, shape, dataclasses.replace(zero, **{n: 1.0})) - base)
                       / peak for n in names])
        target.append((peak - base) / peak)
    matrix = np.array(design)
    used = [j for j in range(len(names)) if np.any(matrix[:, j])]
    solved = np.linalg.lstsq(matrix[:, used], np.array(target), rcond=None)[0]
    return dataclasses.replace(CPU_FIT, **{names[j]: round(float(v), 3)
                                           for j, v in zip(used, solved, strict=True)})


def report(rows: list[Row], *, device: str, cpu: CpuFit = CPU_FIT) -> None:
    """The matrix as a table (the estimate against the measured peak) and its summary."""
    print("| config | estimate MB | measured MB | error | estimate by part |\n"
          "| --- | ---: | ---: | ---: | --- |")
    errors = []
    for label, config, shape, peak in rows:
        est = estimate(config, shape, device="cuda" if device == "cuda" else "cpu", cpu=cpu)
        compared = est.tensors_mb if device == "cuda" else est.total_mb
        errors.append(abs(compared - peak) / peak)
        print(f"| {label} | {compared:,.0f} | {peak:,.0f} | {(compared - peak) / peak:+.1%} | "
              f"{est.line()} |", flush=True)
    within = sum(e <= 0.15 for e in errors)
    print(f"\n{len(rows)} configs on {device}: {within} within 15 %, largest error "
          f"{max(errors):.1%}, mean {sum(errors) / len(errors):.1%}")


def measured_rows(chosen: list[tuple[str, str, dict[str, Any]]], args: argparse.Namespace,
                  work: Path) -> list[Row]:
    """Each chosen config with its peak: measured by a real trial, or read from
    ``--measured``."""
    known = {}
    if args.measured:
        known = {r["label"]: r["peak_mb"] for r in map(json.loads, args.measured.open())}
    text = raw_text(work / "corpus.txt")
    models: dict[str, str] = {"embedded": "smollm2-135m-instruct"}
    if args.model:
        models[args.model] = args.model
    rows: list[Row] = []
    for label, model, settings in chosen:
        if model not in models:
            models[model] = str(build(work / model, size=model))
        config = config_of(models[model], settings, text=text, out=work / "trial")
        peak = known.get(label)
        if peak is None:
            peak = measure(label, config, work / f"trial-{len(rows)}")
            if args.save:
                with args.save.open("a") as f:
                    f.write(json.dumps({"label": label, "peak_mb": peak}) + "\n")
        rows.append((label, config, model_shape(config.model), peak))
        print(f"{label}: {peak:,.0f} MB", file=sys.stderr, flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two configs only")
    parser.add_argument("--only", help="comma-separated labels")
    parser.add_argument("--measured", type=Path, help="peaks of an earlier run (JSON lines)")
    parser.add_argument("--save", type=Path, help="write the peaks measured here (JSON lines)")
    parser.add_argument("--fit", action="store_true", help="fit the CPU figures to the peaks")
    parser.add_argument("--model", help="run the first config on this model directory only")
    args = parser.parse_args()
    chosen = [m for m in MATRIX if (not args.quick or m[0] in QUICK)
              and (not args.only or m[0] in args.only.split(","))]
    if args.model:
        chosen = [("given model 4x64", args.model, {"data.cutoff_len": 64})]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = measured_rows(chosen, args, Path(tempfile.mkdtemp(prefix="memory-bench-")))
    print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}\n")
    report(rows, device=device)
    if args.fit and device == "cpu":
        fitted = fit(rows)
        print(f"\nfitted: {fitted}\n")
        report(rows, device=device, cpu=fitted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
