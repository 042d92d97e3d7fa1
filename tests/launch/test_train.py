"""`harness train` in the foreground, stopped the ways real commands are stopped: `kill`,
`timeout`, `docker stop` (SIGTERM), a closed terminal (SIGHUP), and SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import seeded_store

ROOT = Path(__file__).resolve().parents[2]


def train_file(tmp_path: Path, model_dir: Path, *, max_steps: int = 2000,
               save_steps: int = 0, name: str = "train", extra: str = "") -> Path:
    path = tmp_path / f"{name}.yaml"
    seeded_store(tmp_path / "mlflow.db")
    path.write_text(f"""
model: {model_dir}
data: {{path: {ROOT / 'datasets/samples/alpaca.json'}, format_file: chat, cutoff_len: 64,
        eval_fraction: 0.2}}
lora: {{r: 4, alpha: 8}}
training: {{max_steps: {max_steps}, micro_batch_size: 2, learning_rate: 1.0e-3,
           save_steps: {save_steps}}}
samples: {{count: 0}}
tracking: {{uri: "sqlite:///{tmp_path / 'mlflow.db'}", experiment: signals}}
output_dir: {tmp_path / 'out'}
{extra}
""")
    return path


def events(out: Path) -> list[dict[str, Any]]:
    path = out / "events.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def start_training(tmp_path: Path, model_dir: Path) -> tuple[subprocess.Popen, int]:
    """`harness train` as a user starts it; returns it and its trial's pid once it trains."""
    cmd = [sys.executable, "-m", "harness", "train", str(train_file(tmp_path, model_dir))]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=as_from_a_terminal)
    out = tmp_path / "out"
    deadline = time.monotonic() + 300  # a hang guard, not a timing
    while not any(e["event"] == "step" for e in events(out)):
        assert proc.poll() is None, "harness train ended before its trial trained"
        assert time.monotonic() < deadline, "the trial never reached its first step"
        time.sleep(0.2)
    started = next(e for e in events(out) if e["event"] == "started")
    return proc, started["pid"]


def as_from_a_terminal() -> None:
    """The stop signals as a command started from a terminal gets them: a test run under
    `nohup` ignores SIGHUP, and `harness train` rightly keeps ignoring what it inherits."""
    for sig in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has ended
    except FileNotFoundError:
        return True


def run_status(tmp_path: Path) -> str:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("signals").experiment_id])
    return run.info.status


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_to_harness_train_stops_its_trial_and_ends_the_run_killed(
        tmp_path: Path, tiny_model_dir: Path, harness_home: Path, sig: signal.Signals) -> None:
    proc, trial_pid = start_training(tmp_path, tiny_model_dir)
    proc.send_signal(sig)  # to the command alone, as `kill PID` does
    assert proc.wait(timeout=120) == 13
    assert gone(trial_pid)
    assert run_status(tmp_path) == "KILLED"
    assert events(tmp_path / "out")[-1]["event"] == "failed"


def test_a_trial_stops_by_itself_when_harness_train_is_killed(
        tmp_path: Path, tiny_model_dir: Path, harness_home: Path) -> None:
    proc, trial_pid = start_training(tmp_path, tiny_model_dir)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 120  # a hang guard, not a timing
    while not gone(trial_pid):
        assert time.monotonic() < deadline, "the orphaned trial trained on"
        time.sleep(0.2)
    last = events(tmp_path / "out")[-1]
    assert last["event"] == "failed" and last["reason"] == "killed"
    assert "parent process" in last["message"]


def test_training_again_into_a_used_directory_needs_force_and_keeps_foreign_files(
        tmp_path: Path, tiny_model_dir: Path, harness_home: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    first = train_file(tmp_path, tiny_model_dir, max_steps=8, save_steps=2)
    assert main(["train", str(first)]) == 0
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]
    notes = out / "adapter" / "notes.txt"
    notes.write_text("my notes")
    capsys.readouterr()

    assert main(["train", str(first)]) == 2
    err = capsys.readouterr().err
    assert "holds a trial" in err and "--resume" in err and "--force" in err
    assert notes.read_text() == "my notes"

    again = train_file(tmp_path, tiny_model_dir, max_steps=3, save_steps=1, name="again")
    assert main(["train", str(again), "--force"]) == 0
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    (kept,) = out.glob("adapter.kept-*")
    assert (kept / "notes.txt").read_text() == "my notes"  # moved aside, never deleted
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((out / "train_config.json").read_text())["training"]["max_steps"] == 3


BAD_FILES = {"missing": None, "empty": b"", "csv": b"question,answer\nwhy,because\n",
             "binary": bytes(range(256)) * 8}


@pytest.mark.parametrize("which", ["data", "retention"])
@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_data_or_general_text_is_refused_before_a_model_loads_or_a_run_opens(
        tmp_path: Path, tiny_model_dir: Path, harness_home: Path,
        capsys: pytest.CaptureFixture[str], which: str, kind: str) -> None:
    from mlflow import MlflowClient

    from harness.cli import main

    bad = tmp_path / f"bad.{'csv' if kind == 'csv' else 'json'}"
    if BAD_FILES[kind] is not None:
        bad.write_bytes(BAD_FILES[kind])
    config = train_file(tmp_path, tiny_model_dir, extra=f"retention: {{path: {bad}}}"
                        if which == "retention" else "")
    if which == "data":
        config.write_text(config.read_text().replace(
            str(ROOT / "datasets/samples/alpaca.json"), str(bad)))
    assert main(["train", str(config)]) == 2  # an error, not a crashed trial (10)
    err = capsys.readouterr().err
    assert "harness: error:" in err and bad.name in err
    assert not (tmp_path / "out").exists()
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert client.get_experiment_by_name("signals") is None  # no run was opened


def test_a_dry_run_estimates_the_trial_and_says_whether_it_fits_without_training(
        tmp_path: Path, tiny_model_dir: Path, harness_home: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main
    from harness.config import load_train_config
    from harness.memory.estimate import estimate
    from harness.memory.shape import model_shape

    config = train_file(tmp_path, tiny_model_dir)
    assert main(["train", str(config), "--dry-run"]) == 0
    said = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    cpu = estimate(load_train_config(str(config)), model_shape(str(tiny_model_dir)),
                   device="cpu")
    assert f"memory (this machine): {cpu.line()}" in said and "fits:" in said
    assert not (tmp_path / "out").exists()  # nothing trained, no run opened

    # a micro-batch no machine of this kind holds: said, and exit 2
    config.write_text(config.read_text().replace("micro_batch_size: 2", "micro_batch_size: 4096")
                      .replace("cutoff_len: 64", "cutoff_len: 4096"))
    assert main(["train", str(config), "--dry-run"]) == 2
    assert "too big" in capsys.readouterr().err
