"""Memory in a sweep of real trials on the tiny Llama: the estimate recorded beside the measured
peak, a trial estimated too big never launched, and an out-of-memory trial retried once in
smaller forward passes that train the same steps."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from helpers import client, launched, space_file, sweep

from harness.launch.command import write_trial_config
from harness.protocol import Step
from harness.study.record import ESTIMATED_ATTR, MESSAGE, REASON, RUN_ID
from harness.study.storage import load_study, open_storage
from harness.sweep.sizing import MEMORY_CONSTRAINT
from harness.tracking.trial_run import RETRY_TAG
from harness.trialdir import TrialDir

State = optuna.trial.TrialState
ONE = "  - {training.learning_rate: 1.0e-3, lora.r: 4}\n"


def step_losses(events: Path) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in map(json.loads, events.read_text().splitlines())
            if e["event"] == "step"}


def test_an_out_of_memory_trial_is_retried_in_halves_and_trains_the_same_steps(
        tmp_path: Path, tiny_model_dir: Path, stores: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # out of memory at step 3 while a forward pass holds more than one sequence (of 2)
    monkeypatch.setenv("HARNESS_FAULT", "oom@3>1")
    space = space_file(tmp_path, tiny_model_dir, trials=1, enqueue=ONE)
    assert sweep(space, stores) == 0
    (trial,) = load_study("tiny", open_storage(stores["storage"])).trials
    assert trial.state == State.COMPLETE, trial.user_attrs
    assert "out of memory after step 2" in trial.user_attrs[RETRY_TAG]
    assert trial.constraints[MEMORY_CONSTRAINT] < 0 and trial.user_attrs[ESTIMATED_ATTR] > 0

    out = TrialDir(tmp_path / "studies" / "tiny" / "trial-0000")
    retried = json.loads(out.config.read_text())["training"]
    assert (retried["micro_batch_size"], retried["micro_batch_parts"]) == (2, 2)
    first, second = step_losses(out.path / "events.1.jsonl"), step_losses(out.events)
    assert sorted(first) == [1, 2] and sorted(second) == [1, 2, 3, 4]
    # the same steps as the first run, whole micro-batches then: the same training
    assert [second[s] for s in first] == pytest.approx(list(first.values()), rel=1e-4)

    # an uninterrupted run at the smaller forward passes trains exactly what the retry did
    write_trial_config_from(out, tmp_path / "again")
    again = launched(tmp_path / "again")
    assert again.ok
    assert [e.loss for e in again.events if isinstance(e, Step)] == \
        pytest.approx([second[s] for s in sorted(second)], rel=1e-5)

    run = client(stores).get_run(trial.user_attrs[RUN_ID])
    assert run.data.tags[RETRY_TAG] == trial.user_attrs[RETRY_TAG]
    history = client(stores).get_metric_history(run.info.run_id, "train/loss")
    assert sorted(m.step for m in history) == [1, 2, 3, 4]  # each step logged once
    assert run.data.metrics["memory/estimated_mb"] > 0 and run.data.metrics["memory/peak_mb"] > 0


def write_trial_config_from(trial: TrialDir, out: Path) -> None:
    from harness.config import TrainConfig, from_mapping

    write_trial_config(from_mapping(TrainConfig, trial.read_config()), out)


def test_a_second_out_of_memory_prunes_the_trial(
        tmp_path: Path, tiny_model_dir: Path, stores: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_FAULT", "oom@1")  # whatever the forward pass holds
    space = space_file(tmp_path, tiny_model_dir, trials=1, enqueue=ONE)
    assert sweep(space, stores) == 1  # no trial completed
    (trial,) = load_study("tiny", open_storage(stores["storage"])).trials
    assert trial.state == State.PRUNED and trial.user_attrs[REASON] == "oom"
    assert RETRY_TAG in trial.user_attrs


def test_a_trial_too_big_for_the_limit_never_starts_and_is_counted(
        tmp_path: Path, tiny_model_dir: Path, stores: dict[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    space = space_file(tmp_path, tiny_model_dir, trials=2, study=", memory_limit_gb: 0.05")
    assert sweep(space, stores) == 1  # no trial completed
    trials = load_study("tiny", open_storage(stores["storage"])).trials
    assert [t.state for t in trials] == [State.PRUNED] * 2
    for trial in trials:
        assert trial.user_attrs[REASON] == "too_big"
        assert trial.user_attrs[MESSAGE].startswith("too big: estimated")
        assert trial.constraints[MEMORY_CONSTRAINT] > 0
        assert not TrialDir(tmp_path / "studies" / "tiny" / f"trial-{trial.number:04d}") \
            .events.exists()  # no process was started
        run = client(stores).get_run(trial.user_attrs[RUN_ID])
        assert run.data.tags["trial.reason"] == "too_big" and run.info.status == "KILLED"
    said = capsys.readouterr()
    assert "2 too big" in said.out + said.err
