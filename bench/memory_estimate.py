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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from common import TOOLFORMER, harness_trial
from random_llama import SHAPES, build, llama_config

from harness.config import TrainConfig, from_mapping
from harness.memory.estimate import CPU_FIT, CpuFit, estimate
from harness.memory.shape import ModelShape, model_shape, shape_from_config
from harness.protocol import Finished

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


class Row(NamedTuple):
    """One config of the matrix with its measured peak."""

    label: str
    config: TrainConfig
    shape: ModelShape
    peak_mb: float
    held_out: bool = False
    """Kept out of `fit`, to test the fitted figures out of sample."""


def fit(rows: list[Row]) -> CpuFit:
    """The CPU figures that best fit the measured peaks (least squares on the relative error);
    a figure no config of ``rows`` depends on keeps its value."""
    names = [f.name for f in dataclasses.fields(CpuFit)]

    def total(row: Row, cpu: CpuFit) -> float:
        return estimate(row.config, row.shape, device="cpu", cpu=cpu).total_mb

    zero = dataclasses.replace(CPU_FIT, **dict.fromkeys(names, 0.0))
    design, target = [], []
    for row in rows:
        base = total(row, zero)
        design.append([(total(row, dataclasses.replace(zero, **{n: 1.0})) - base) / row.peak_mb
                       for n in names])
        target.append((row.peak_mb - base) / row.peak_mb)
    matrix = np.array(design)
    used = [j for j in range(len(names)) if np.any(matrix[:, j])]
    if np.linalg.matrix_rank(matrix[:, used]) < len(used):
        raise SystemExit(f"--fit: {len(rows)} configs cannot tell {len(used)} figures apart; "
                         "fit on more of the matrix")
    solved = np.linalg.lstsq(matrix[:, used], np.array(target), rcond=None)[0]
    return dataclasses.replace(CPU_FIT, **{names[j]: round(float(v), 3)
                                           for j, v in zip(used, solved, strict=True)})


def report(rows: Iterable[Row], *, device: str, cpu: CpuFit = CPU_FIT) -> list[Row]:
    """The matrix as a table (the estimate against the measured peak, a line as each config
    is measured) and its summary; the rows."""
    print("| config | estimate MB | measured MB | error | estimate by part |\n"
          "| --- | ---: | ---: | ---: | --- |", flush=True)
    seen, errors = [], []
    for row in rows:
        est = estimate(row.config, row.shape, device="cuda" if device == "cuda" else "cpu",
                       cpu=cpu)
        compared, peak = (est.tensors_mb if device == "cuda" else est.total_mb), row.peak_mb
        seen.append(row)
        errors.append(abs(compared - peak) / peak)
        label = row.label + (" (held out of the fit)" if row.held_out else "")
        print(f"| {label} | {compared:,.0f} | {peak:,.0f} | {(compared - peak) / peak:+.1%} | "
              f"{est.line()} |", flush=True)
    within = sum(e <= 0.15 for e in errors)
    print(f"\n{len(seen)} configs on {device}: {within} within 15 %, largest error "
          f"{max(errors):.1%}, mean {sum(errors) / len(errors):.1%}")
    return seen


def measured_rows(chosen: list[tuple[str, str, dict[str, Any]]], args: argparse.Namespace, *,
                  work: Path, device: str) -> Iterator[Row]:
    """Each chosen config with its peak on ``device``: read from ``--measured`` (configs it
    lacks are skipped, and a random Llama's shape comes from its config alone), else measured
    by a real trial."""
    known = {r["label"]: r for r in map(json.loads, args.measured.open())} \
        if args.measured else {}
    elsewhere = {r.get("device", "cpu") for r in known.values()} - {device}
    if elsewhere:  # a CPU's resident memory is not a GPU allocator's peak
        raise SystemExit(f"{args.measured} holds peaks measured on {', '.join(elsewhere)}, "
                         f"not on {device}")
    text = raw_text(work / "corpus.txt")
    models: dict[str, str] = {"embedded": "smollm2-135m-instruct"}
    if args.model:
        models[args.model] = args.model
    for n, (label, model, settings) in enumerate(chosen):
        record = known.get(label)
        if args.measured and record is None:
            print(f"{label}: not in {args.measured}, skipped", file=sys.stderr)
            continue
        if record is not None and model in SHAPES:  # its shape is all the estimate needs
            config = config_of(model, settings, text=text, out=work / "trial")
            shape = shape_from_config(llama_config(model).to_dict(), source=model)
            yield Row(label, config, shape, record["peak_mb"], record.get("held_out", False))
            continue
        if model not in models:
            models[model] = str(build(work / model, size=model))
        config = config_of(models[model], settings, text=text, out=work / "trial")
        peak = record["peak_mb"] if record else measure(label, config, work / f"trial-{n}")
        if args.save and not record:
            with args.save.open("a") as f:
                f.write(json.dumps({"label": label, "peak_mb": peak, "device": device}) + "\n")
        yield Row(label, config, model_shape(config.model), peak)


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
    print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}\n")
    work = Path(tempfile.mkdtemp(prefix="memory-bench-"))
    rows = report(measured_rows(chosen, args, work=work, device=device), device=device)
    if args.fit and device != "cpu":
        print("\n--fit: the fitted figures are the CPU's heap and process; nothing to fit here")
    elif args.fit:
        fitted = fit([row for row in rows if not row.held_out])
        print(f"\nfitted: {fitted}\n")
        report(rows, device=device, cpu=fitted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
