"""One trial from the sweep's side, its process a stand-in that speaks the protocol: what Optuna
is told and kept, what MLflow records, and what is queued again, for each way a trial ends."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from helpers import (
    STARTED,
    client,
    evaluated,
    failing,
    finishing,
    objective_launching,
    stand_in,
    sweep_context,
)

from harness.launch.runner import Launch, Watcher
from harness.protocol import TrialResult
from harness.study.record import LOG_TAIL, MESSAGE, OUTPUT_DIR, REASON, RUN_ID
from harness.sweep import objective as objective_module
from harness.sweep.context import SweepContext
from harness.sweep.slots import Slot
from harness.tracking.trial_run import RETRY_TAG

State = optuna.trial.TrialState
def run(ctx: SweepContext, scripts: dict[int, list[dict[str, Any]]]) -> list[Any]:
    """Each script as the next trial of the study, through the objective; the trials."""
    objective = objective_launching(ctx, stand_in(
        lambda out: scripts[int(out.name.removeprefix("trial-"))]))
    for _ in scripts:
        objective(ctx.study.ask(), Slot(""))
    return ctx.study.get_trials(deepcopy=False)[:len(scripts)]


def mlflow_run(ctx: SweepContext, trial: Any) -> Any:
    return client({"uri": ctx.uri}).get_run(trial.user_attrs[RUN_ID])


def test_a_finished_trial_is_complete_with_its_last_eval_and_recorded(tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path)
    (trial,) = run(ctx, {0: finishing(2.4, 2.2, 2.1)})
    assert trial.state == State.COMPLETE and trial.values == [2.1]
    assert trial.user_attrs[REASON] == "finished"
    assert trial.intermediate_values == {4: 2.4, 8: 2.2}  # the last eval is the result
    assert trial.user_attrs[OUTPUT_DIR] == str(ctx.out_root / "trial-0000")
    recorded = mlflow_run(ctx, trial)
    assert recorded.info.status == "FINISHED" and recorded.data.tags["optuna.state"] == "COMPLETE"
    assert recorded.data.metrics["eval/loss"] == 2.1


def test_a_trial_behind_its_peers_is_pruned_and_told_why(tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path)
    behind = [{"emit": STARTED}, evaluated(4, 3.0), {"train": True}]  # runs on until stopped
    trials = run(ctx, {0: finishing(2.0, 1.9, 1.8), 1: finishing(2.1, 2.0, 1.9), 2: behind})
    pruned = trials[2]
    assert pruned.state == State.PRUNED and pruned.user_attrs[REASON] == "pruned"
    said = pruned.user_attrs[MESSAGE]
    assert said == "pruned at step 4 of 12: eval loss 3.0000, the median of 2 other trials " \
                   "there 2.0500"
    recorded = mlflow_run(ctx, pruned)
    assert recorded.info.status == "KILLED" and recorded.data.tags["mlflow.note.content"] == said


@pytest.mark.parametrize(("script", "state", "reason", "status"), [
    (failing("crash", 10), State.FAIL, "crash", "FAILED"),
    (failing("nan", 11), State.FAIL, "nan", "FAILED"),
    (failing("oom", 12), State.PRUNED, "oom", "FAILED"),  # too big here, not a bad setting
    ([{"emit": STARTED}, {"say": "killed"}, {"kill": 9}], State.FAIL, "killed", "KILLED"),
    ([{"say": "the log says crash"}, {"exit": 1}], State.FAIL, "crash", "FAILED"),
])
def test_a_trial_that_fails_is_told_with_its_reason_and_its_log(
        tmp_path: Path, script: list[dict[str, Any]], state: Any, reason: str,
        status: str) -> None:
    ctx = sweep_context(tmp_path)
    (trial,) = run(ctx, {0: script})
    assert trial.state == state and trial.user_attrs[REASON] == reason
    assert not ctx.study.get_trials(states=(State.WAITING,))  # judged: not run again
    recorded = mlflow_run(ctx, trial)
    assert recorded.info.status == status and recorded.data.tags["trial.reason"] == reason
    if state == State.FAIL:  # the end of its log is kept beside the trial, for the summary
        assert trial.user_attrs[LOG_TAIL].strip().endswith(script[-2]["say"])


def test_a_trial_stopped_by_ctrl_c_is_queued_again_not_judged(tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path)
    ctx.control.stop.set()  # Ctrl-C reached the sweep
    (trial, retry) = run(ctx, {0: [{"emit": STARTED}, {"train": True}]}) + \
        ctx.study.get_trials(states=(State.WAITING,))
    assert trial.state == State.FAIL and trial.user_attrs[REASON] == "interrupted"
    assert retry.system_attrs["failed_trial"] == trial.number
    assert mlflow_run(ctx, trial).info.status == "KILLED"


def test_a_full_disk_halts_the_sweep_and_its_trial_is_queued_again(tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path)
    (trial,) = run(ctx, {0: failing("disk_full", 14, where="/data")})
    assert trial.user_attrs[REASON] == "disk_full"
    assert ctx.control.halted is not None and ctx.control.halted.where == "/data"
    assert ctx.control.stop.is_set()
    (retry,) = ctx.study.get_trials(states=(State.WAITING,))
    assert retry.system_attrs["failed_trial"] == trial.number


def test_a_searched_alpha_per_rank_is_a_param_of_the_trial_run(tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path, searched="  lora.alpha: {per_rank: [1, 2]}\n")
    (trial,) = run(ctx, {0: finishing(2.4, 2.2, 2.1)})
    params = mlflow_run(ctx, trial).data.params
    per_rank = trial.params["lora.alpha_per_rank"]
    assert params["lora.alpha_per_rank"] == str(per_rank)
    assert float(params["lora.alpha"]) == per_rank * trial.params["lora.r"]
    assert "quantization.quant_type" not in params  # a full-precision trial: no 4-bit setting


def test_a_retry_after_running_out_of_memory_has_what_is_left_of_the_trial_timeout(
        tmp_path: Path) -> None:
    ctx = sweep_context(tmp_path)
    ctx.space.study.trial_timeout = 600.0
    timeouts: list[float | None] = []
    took: list[float] = []
    launch = stand_in(lambda out: failing("oom", 12))

    def timed(given: Launch, watcher: Watcher) -> TrialResult:
        timeouts.append(given.timeout)
        started = time.monotonic()
        result = launch(given, watcher)
        took.append(time.monotonic() - started)
        return result

    objective_launching(ctx, timed)(ctx.study.ask(), Slot(""))
    (trial,) = ctx.study.get_trials(deepcopy=False)
    assert trial.user_attrs[REASON] == "oom" and RETRY_TAG in trial.user_attrs
    first, retry = timeouts
    assert first is not None and retry is not None
    assert first <= 600.0 and first - retry >= took[0]  # the first run's time is spent


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


def test_an_out_of_memory_trial_whose_time_is_spent_is_not_retried(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = sweep_context(tmp_path)
    ctx.space.study.trial_timeout = 600.0
    clock = Clock()
    monkeypatch.setattr(objective_module, "time", clock)
    launch = stand_in(lambda out: failing("oom", 12))
    launches: list[float | None] = []

    def slow(given: Launch, watcher: Watcher) -> TrialResult:
        launches.append(given.timeout)
        clock.now += 601.0  # it ran out of memory just as its time ran out
        return launch(given, watcher)

    objective_launching(ctx, slow)(ctx.study.ask(), Slot(""))
    (trial,) = ctx.study.get_trials(deepcopy=False)
    assert launches == [600.0]
    assert trial.state == State.PRUNED and trial.user_attrs[REASON] == "oom"
    assert RETRY_TAG not in trial.user_attrs
