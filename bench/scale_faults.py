"""Benchmark: a study shared by several workers on PostgreSQL, one of them killed mid-trial.

A throw-away PostgreSQL cluster on 127.0.0.1 holds the study (12 trials of the tiny config-built
Llama by default). Four workers start; once trials run, one worker "loses its machine" (the worker
and its trial's process group are SIGKILLed; it reports a host name of its own, so only the
heartbeat can tell the others) and a fresh worker joins. Measured from the study and MLflow:
trials lost (budget not reached), trials duplicated (a trial number or an MLflow run twice, or
more finished trials than the budget), and seconds from the kill to the dead worker's trial
being failed by another worker.

Usage: python bench/scale_faults.py [--trials 12] [--workers 4] [--heartbeat 10]
Prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import ROOT, postgres_bin, postgres_cluster

SPACE = """
model: {model}
data: {{path: {data}, format_file: chat, cutoff_len: 64, eval_fraction: 0.2, train_on: all}}
training: {{max_steps: {steps}, micro_batch_size: 2, eval_steps: 0, scheduler: constant}}
samples: {{count: 0}}
study: {{sampler: random, seed: 0, pruner: none, trials: {trials}, output_dir: {out}}}
registry: {{model_name: bench-scale, promote: false}}
search:
  training.learning_rate: {{low: 1.0e-5, high: 1.0e-2, log: true}}
  lora.r: [2, 4, 8]
"""


def worker(tmp: Path, storage: str, host: str, env: dict[str, str]) -> subprocess.Popen:
    log = open(tmp / f"{host}.log", "wb")  # noqa: SIM115 (the child keeps it)
    return subprocess.Popen([sys.executable, "-m", "harness", "worker", "--study", "scale",
                             "--storage", storage], cwd=tmp, stdout=log, stderr=log,
                            start_new_session=True, env={**env, "HARNESS_WORKER_HOST": host})


@dataclass
class Outcome:
    """What the study and MLflow say once every worker has ended."""

    codes: list[int]
    trials: list[Any]
    dead: Any
    """The killed worker's trial, as the study has it now."""
    run_trials: list[str]
    """The trial number of every MLflow trial run."""
    killed_at: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--heartbeat", type=int, default=10)
    args = parser.parse_args()
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise SystemExit("PostgreSQL's server binaries are missing: `make postgres` installs "
                         "them (or set HARNESS_PG_BIN)")
    env = {**os.environ, "HARNESS_HEARTBEAT_SECONDS": str(args.heartbeat)}
    with tempfile.TemporaryDirectory() as name, postgres_cluster(bin_dir) as pg:
        outcome = run(Path(name), pg.create_database("scale"), args, env)
    report(outcome, args)


def run(tmp: Path, storage: str, args: argparse.Namespace, env: dict[str, str]) -> Outcome:
    """Create the study, start the workers, kill one mid-trial and start another; what the
    study and MLflow hold once they have all ended."""
    from random_llama import build_tiny_model

    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    space = tmp / "scale.yaml"
    space.write_text(SPACE.format(model=build_tiny_model(tmp / "tiny"),
                                  data=ROOT / "datasets/samples/alpaca.json", steps=args.steps,
                                  trials=args.trials, out=tmp / "out"))
    subprocess.run([sys.executable, "-m", "harness", "sweep", str(space), "--storage", storage,
                    "--tracking-uri", uri, "--no-run"], cwd=tmp, check=True, env=env,
                   capture_output=True)
    procs = [worker(tmp, storage, f"machine-{i}", env) for i in range(args.workers)]
    victim = kill_mid_trial(procs[0], storage)
    killed_at = time.time()
    procs[0] = worker(tmp, storage, "machine-new", env)
    codes = [p.wait() for p in procs]  # procs[0] is the worker that replaced the victim
    return Outcome(codes, *study_and_runs(storage, uri, victim), killed_at=killed_at)


def kill_mid_trial(victim: subprocess.Popen[bytes], storage: str) -> int:
    """SIGKILL ``victim`` (machine-0) and its trial's process group once it trains; the
    trial's number."""
    import optuna

    from harness.study.record import WORKER
    from harness.study.storage import load_study, open_storage

    trial = None
    while trial is None:
        time.sleep(0.5)
        running = load_study("scale", open_storage(storage)).get_trials(
            states=(optuna.trial.TrialState.RUNNING,))
        trial = next((t for t in running if t.system_attrs.get(WORKER, {}).get(
            "host") == "machine-0" and t.system_attrs[WORKER].get("pgid")), None)
    time.sleep(3)  # mid-training
    os.killpg(victim.pid, signal.SIGKILL)
    os.killpg(trial.system_attrs[WORKER]["pgid"], signal.SIGKILL)
    return trial.number


def study_and_runs(storage: str, uri: str, victim: int) -> tuple[list[Any], Any, list[str]]:
    from mlflow import MlflowClient

    from harness.study.storage import load_study, open_storage

    trials = load_study("scale", open_storage(storage)).trials
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("scale").experiment_id])
    return trials, trials[victim], [r.data.tags["optuna.trial"] for r in runs
                                    if "optuna.trial" in r.data.tags]


def report(outcome: Outcome, args: argparse.Namespace) -> None:
    from harness.study.budget import reason_of, retried_from

    dead = outcome.dead
    retried = [t for t in outcome.trials if retried_from(t) == dead.number]
    counted = [t for t in outcome.trials if t.state.is_finished() and t.number != dead.number]
    numbers, runs = [t.number for t in outcome.trials], outcome.run_trials
    print(f"\nScale-out faults: {args.trials} trials, {args.workers} workers on PostgreSQL, "
          f"tiny Llama, {args.steps} steps a trial, heartbeat {args.heartbeat} s "
          f"(grace {3 * args.heartbeat} s)\n")
    print("| measure | value |\n| --- | ---: |")
    print(f"| workers' exit codes | {', '.join(map(str, outcome.codes))} |")
    print(f"| finished trials counted / budget | {len(counted)} / {args.trials} |")
    print(f"| trials lost | {max(0, args.trials - len(counted))} |")
    print(f"| trials duplicated (numbers, MLflow runs, over budget) | "
          f"{len(numbers) - len(set(numbers))}, {len(runs) - len(set(runs))}, "
          f"{max(0, len(counted) - args.trials)} |")
    print(f"| dead worker's trial | #{dead.number} {dead.state.name} ({reason_of(dead)}), "
          f"retried as #{', #'.join(str(t.number) for t in retried) or 'none'} |")
    print(f"| seconds from kill to FAIL | "
          f"{dead.datetime_complete.timestamp() - outcome.killed_at:.1f} |")


if __name__ == "__main__":
    main()
