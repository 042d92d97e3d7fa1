"""Benchmark: what a trial costs outside training, and what the sweep parent costs beside it.

For each checkout given (this one by default; pass an older clone with its own `.venv` to
compare against it), side by side and alternating in every round, two `harness train` runs of
the demo's first trial (search_spaces/demo.yaml with its enqueued parameters) share one
HARNESS_HOME, as two trials of a study do: the first finds no cached base eval, samples or
tokenized data (the converted model is there, as after `make install`), the second finds
whatever the first left. From the trial's event timestamps and the command's own start and end:

- command -> first step: imports, data, model, base eval, up to the first optimizer step;
- last step -> exit: the final eval, samples, the adapter, closing the MLflow run;
- of which samples: the last eval -> the samples event (``--samples`` prompts, 8 by default);
- training: first step -> last step (the part that is not overhead).

With ``--sweep`` it also runs `harness sweep` on the demo space (``--sweep-trials`` trials) per
checkout and reports the sweep process's own CPU time against its trials' (read from
/proc/PID/stat once the sweep has exited and before it is reaped).

Usage: python bench/overhead.py [--checkout DIR ...] [--rounds R] [--sweep]
Prints Markdown tables for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHES = ("base_eval", "base_samples", "encoded")
"""What HARNESS_HOME keeps per study; removed before each measured pair of trials."""


def demo_configs(work: Path, *, samples: int) -> list[Path]:
    """Train configs of two demo trials (the enqueued one, and one with another rate), each
    writing ``samples`` comparison samples."""
    from harness.space.load import load_space

    space = load_space(ROOT / "search_spaces" / "demo.yaml")
    first = dict(space.enqueue[0])
    paths = []
    for i, values in enumerate((first, {**first, "training.learning_rate": 5e-4})):
        config = space.train_config(values, output_dir="unused")
        raw = asdict(config)
        raw.pop("output_dir", None)
        # sections older checkouts do not know; new ones default them
        raw["data"].pop("batching", None)
        raw.pop("evaluation", None)
        raw["data"]["path"] = str(ROOT / raw["data"]["path"])
        raw["samples"]["count"] = samples
        path = work / f"trial-{i}.json"
        path.write_text(json.dumps(raw))
        paths.append(path)
    return paths


def timed_train(checkout: Path, config: Path, out: Path, env: dict[str, str]) -> dict[str, float]:
    start = time.time()
    proc = subprocess.run([str(checkout / ".venv" / "bin" / "harness"), "train", str(config),
                           "--output-dir", str(out)], env=env, cwd=out.parent,
                          capture_output=True, text=True)
    end = time.time()
    if proc.returncode != 0:
        raise SystemExit(f"harness train failed in {checkout}:\n{proc.stderr[-3000:]}")
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    steps = [e["time"] for e in events if e["event"] == "step"]
    last_eval = [e["time"] for e in events if e["event"] == "eval"][-1]
    sampled = next(e["time"] for e in events if e["event"] == "samples")
    return {"to_first_step": steps[0] - start, "after_last_step": end - steps[-1],
            "samples": sampled - last_eval, "training": steps[-1] - steps[0],
            "total": end - start}


def pair(checkout: Path, configs: list[Path], *, home: Path, work: Path) -> list[dict[str, float]]:
    for name in CACHES:
        shutil.rmtree(home / name, ignore_errors=True)
    env = {**os.environ, "HARNESS_HOME": str(home),
           "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    runs = []
    for i, config in enumerate(configs):
        out = work / f"{checkout.name}-{time.monotonic_ns()}-{i}"
        runs.append(timed_train(checkout, config, out, env))
        shutil.rmtree(out, ignore_errors=True)
    return runs


def sweep_cpu(checkout: Path, *, home: Path, work: Path, trials: int) -> dict[str, float]:
    """The sweep process's own CPU seconds and its children's (the trials), at its exit."""
    for name in CACHES:
        shutil.rmtree(home / name, ignore_errors=True)
    where = work / f"sweep-{checkout.name}-{time.monotonic_ns()}"
    where.mkdir()
    env = {**os.environ, "HARNESS_HOME": str(home)}
    # The space's data path is relative to where the sweep runs, as for a user in the checkout.
    (where / "datasets").symlink_to(checkout / "datasets")
    log = where.with_suffix(".log")
    command = [str(checkout / ".venv" / "bin" / "harness"), "sweep",
               str(checkout / "search_spaces" / "demo.yaml"), "--trials", str(trials),
               "--no-promote", "--storage", f"sqlite:///{where / 'optuna.db'}",
               "--tracking-uri", f"sqlite:///{where / 'mlflow.db'}"]
    with log.open("w") as stderr:
        proc = subprocess.Popen(command, cwd=where, env=env, stdout=subprocess.DEVNULL,
                                stderr=stderr)
    status = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
    if status.si_status != 0:
        proc.wait()
        raise SystemExit(f"harness sweep failed in {checkout}:\n{log.read_text()[-3000:]}")
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    own, children = (int(fields[11]) + int(fields[12])) / tick, \
        (int(fields[13]) + int(fields[14])) / tick
    proc.wait()
    shutil.rmtree(where, ignore_errors=True)
    return {"parent_cpu_s": own, "trials_cpu_s": children, "share": own / children}


def table(results: dict[str, list[list[dict[str, float]]]]) -> list[str]:
    lines = ["| checkout | trial | command -> first step s | last step -> exit s | "
             "of which samples s | training s | total s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, rounds in results.items():
        for i, label in enumerate(("first of a study", "a later one")):
            rows = [r[i] for r in rounds]
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            lines.append(f"| {name} | {label} | {med['to_first_step']:.1f} | "
                         f"{med['after_last_step']:.1f} | {med['samples']:.1f} | "
                         f"{med['training']:.1f} | "
                         f"{med['total']:.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", action="append", type=Path,
                        help="a clone with its own .venv (repeatable); default: this one")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=8, help="comparison samples per trial")
    parser.add_argument("--sweep", action="store_true", help="also measure the parent's CPU")
    parser.add_argument("--sweep-trials", type=int, default=2)
    args = parser.parse_args()
    checkouts = [c.resolve() for c in (args.checkout or [ROOT])]
    home = Path(os.environ.get("HARNESS_HOME") or Path.home() / ".cache" / "harness")
    results: dict[str, list[list[dict[str, float]]]] = {str(c): [] for c in checkouts}
    with tempfile.TemporaryDirectory(prefix="harness-overhead-") as tmp:
        work = Path(tmp)
        configs = demo_configs(work, samples=args.samples)
        for round_ in range(args.rounds):
            # Alternating the order each round shows load during one side as rounds that
            # disagree, instead of as a difference between checkouts.
            for checkout in checkouts[::-1] if round_ % 2 else checkouts:
                results[str(checkout)].append(pair(checkout, configs, home=home, work=work))
        print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, python "
              f"{platform.python_version()}; rounds {args.rounds}\n")
        print("\n".join(table(results)), flush=True)
        for checkout in checkouts if args.sweep else ():
            figures = sweep_cpu(checkout, home=home, work=work, trials=args.sweep_trials)
            print(f"\n{checkout}: sweep parent {figures['parent_cpu_s']:.1f} CPU s, trials "
                  f"{figures['trials_cpu_s']:.1f} CPU s, parent / trials = "
                  f"{figures['share']:.3f}", flush=True)


if __name__ == "__main__":
    main()
