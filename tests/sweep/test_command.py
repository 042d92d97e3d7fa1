"""`harness sweep` and `harness worker` from opening the study to its finish, each trial a
stand-in process that speaks the protocol: the orchestration in seconds, real storage and MLflow
store, no training."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import optuna
from helpers import client, space_file, stand_in
from rich.console import Console

from harness.study.record import BASELINE, RUN_ID, StudyRecord
from harness.study.storage import load_study, open_storage
from harness.sweep.command import sweep_command, worker_command
from harness.sweep.context import SweepOptions
from harness.tracking.notes import BEST_TAG, NOTE

State = optuna.trial.TrialState
STARTED = {"event": "started", "pid": 1, "total_steps": 4, "train_examples": 8,
           "eval_examples": 2, "test_examples": 0, "fingerprint": "f" * 64,
           "eval_fingerprint": "e" * 64, "test_fingerprint": "", "profile": {},
           "device": "cpu", "processes": 1, "trainable_parameters": 10}


def finishing(loss: float) -> list[dict[str, Any]]:
    """A trial that evaluates at step 2 and at its end, step 4, and finishes."""
    return [{"emit": STARTED}, *({"emit": {"event": "eval", "step": step, "loss": loss + 0.1 * (
        4 - step), "perplexity": 10.0, "perplexity_ratio_to_base": 1.0}} for step in (2, 4)),
        {"emit": {"event": "finished", "adapter_dir": "adapter", "peak_memory_mb": 1.0}}]


LOSSES = {0: 2.5, 1: 2.2, 2: 2.3}  # none behind the median of those before it
TRIALS = stand_in(lambda out: finishing(LOSSES[int(out.name.removeprefix("trial-"))]))


def options(stores: dict[str, str], **given: Any) -> SweepOptions:
    return SweepOptions(storage=stores["storage"], tracking_uri=stores["uri"], **given)


def test_a_sweep_runs_from_opening_to_its_finish(
        tmp_path: Path, tiny_model_dir: Path, stores: dict[str, str]) -> None:
    space = space_file(tmp_path, tiny_model_dir,
                       enqueue="  - {name: first guess, training.learning_rate: 1.0e-3, "
                               "lora.r: 4}\n")
    shown = io.StringIO()
    outcome = sweep_command(str(space), options(stores, promote=False),
                            Console(file=shown, width=120), launch=TRIALS)
    assert outcome is not None and not outcome.interrupted and outcome.failed == []
    study = load_study("tiny", open_storage(stores["storage"]))
    assert [t.state for t in study.trials] == [State.COMPLETE] * 3
    assert study.trials[0].user_attrs[BASELINE] == "first guess"  # the baseline went first
    assert study.best_trial.number == 1 and study.best_trial.values == [2.2]
    text = shown.getvalue()
    assert "study tiny: 3 complete" in text and "best baseline ('first guess')" in text
    runs = {r.data.tags.get("optuna.trial", "study"): r for r in client(stores).search_runs(
        [client(stores).get_experiment_by_name("tiny").experiment_id])}
    assert runs["study"].info.status == "FINISHED" and "trial 1" in runs["study"].data.tags[NOTE]
    assert runs["1"].data.tags.get(BEST_TAG) == "true" and BEST_TAG not in runs["0"].data.tags
    assert runs["1"].info.run_id == study.trials[1].user_attrs[RUN_ID]
    assert (tmp_path / "studies" / "tiny" / "plots" / "optimization_history.png").is_file()


def test_workers_run_the_study_a_sweep_only_created(
        tmp_path: Path, tiny_model_dir: Path, stores: dict[str, str]) -> None:
    space = space_file(tmp_path, tiny_model_dir, trials=3)
    assert sweep_command(str(space), options(stores), Console(file=io.StringIO()),
                         no_run=True) is None
    study = load_study("tiny", open_storage(stores["storage"]))
    assert study.trials == [] and StudyRecord.load(study).trials == 3
    first = worker_command(options(stores, study="tiny", trials=2, promote=False),
                           Console(file=io.StringIO()), launch=TRIALS)
    assert len(first.study.trials) == 2  # its own limit
    worker_command(options(stores, study="tiny", promote=False), Console(file=io.StringIO()),
                   launch=TRIALS)
    study = load_study("tiny", open_storage(stores["storage"]))
    assert [t.state for t in study.trials] == [State.COMPLETE] * 3  # the study's total


def test_a_sweep_not_on_a_terminal_says_each_trial_event_in_a_plain_line(
        tmp_path: Path, tiny_model_dir: Path, stores: dict[str, str]) -> None:
    space = space_file(tmp_path, tiny_model_dir, trials=2)
    shown = io.StringIO()  # a log file: `harness sweep ... > sweep.log`, CI, nohup
    sweep_command(str(space), options(stores, promote=False), Console(file=shown, width=80),
                  launch=TRIALS)
    lines = [line.split(" ", 1)[1] for line in shown.getvalue().splitlines()
             if line[:2].isdigit() and " trial " in line]
    for number in (0, 1):
        mine = [line for line in lines if line.startswith(f"trial {number} ")]
        assert mine[0].startswith(f"trial {number} started: ")
        assert "learning_rate=" in mine[0] and "\n" not in mine[0]
        assert mine[1:] == [f"trial {number} training 4 steps on cpu",
                            f"trial {number} eval at step 2: loss "
                            f"{LOSSES[number] + 0.2:.4f}, perplexity 10.00",
                            f"trial {number} eval at step 4: loss {LOSSES[number]:.4f}, "
                            "perplexity 10.00",
                            f"trial {number} finished (eval loss {LOSSES[number]:.4f})"]
    assert shown.getvalue().index("trial 1 finished") < shown.getvalue().index("study tiny:")


def test_a_sweep_on_a_terminal_shows_its_live_table_and_no_plain_lines(
        tmp_path: Path, tiny_model_dir: Path, stores: dict[str, str]) -> None:
    space = space_file(tmp_path, tiny_model_dir, trials=1)
    shown = io.StringIO()
    sweep_command(str(space), options(stores, promote=False),
                  Console(file=shown, width=120, force_terminal=True), launch=TRIALS)
    assert "trial 0 started" not in shown.getvalue()
    assert "study tiny" in shown.getvalue()  # the table's title
