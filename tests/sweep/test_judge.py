"""The verdict on a trial's result and the prune decision, on in-memory Optuna studies."""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytest
from events import evaluated, finished, on_test, retained, selected, started

from harness.config import StudySettings
from harness.protocol import Event, Reason, TrialResult
from harness.study.pruners import make_pruner
from harness.sweep.judge import PruneWatch, Verdict, judge, objective_value

optuna.logging.set_verbosity(optuna.logging.WARNING)


def result(reason: Reason = "finished", *events: Event, **kw: Any) -> TrialResult:
    return TrialResult(reason=reason, exit_code=0, events=list(events), **kw)


EVAL = evaluated(12, 2.0)


@pytest.mark.parametrize(("given", "verdict"), [
    (result("finished", evaluated(4, 3.0), EVAL),
     Verdict("COMPLETE", "finished", [2.0],
             figures={"final_eval": 2.0, "final_eval_step": 12})),  # the curve's end
    (result("finished", EVAL, interrupted=True), Verdict("FAIL", "interrupted")),
    (result("pruned", EVAL), Verdict("PRUNED", "pruned")),
    (result("oom"), Verdict("PRUNED", "oom")),
    (result("crash", EVAL), Verdict("FAIL", "crash")),
    (result("timeout"), Verdict("FAIL", "timeout")),
    (result("finished"), Verdict("FAIL", "crash")),  # finished without an eval: a bug, a crash
    (result("finished", evaluated(12, math.nan)), Verdict("FAIL", "nan")),
    # the best epoch's value, the adapter the trial kept, not the last eval's
    (result("finished", EVAL, selected(6, 1.7, epoch=1.0), on_test(1.9, base_loss=2.5),
            retained(2.1, 0.05)),
     Verdict("COMPLETE", "finished", [1.7], figures={
         "selected_epoch": 1.0, "test_loss": 1.9, "base_test_loss": 2.5,
         "retention_change": 0.05, "final_eval": 2.0, "final_eval_step": 12})),
])
def test_a_result_is_judged_by_how_it_ended_and_its_last_eval(
        given: TrialResult, verdict: Verdict) -> None:
    assert judge(given, ["eval_loss"]) == verdict


def test_the_objectives_read_the_right_numbers() -> None:
    assert objective_value(EVAL, "perplexity") == pytest.approx(math.exp(2.0))
    timed = result("finished", started(12, time=100.0), EVAL,
                   finished(peak_memory_mb=812.0, time=130.5))
    assert judge(timed, ["eval_loss", "train_time"]).values == [2.0, 30.5]
    assert judge(timed, ["perplexity", "peak_memory"]).values == [pytest.approx(math.exp(2.0)),
                                                               812.0]


def _study(**settings: Any) -> optuna.Study:
    return optuna.create_study(pruner=make_pruner(StudySettings(**settings)))


def _finish(study: optuna.Study, curve: dict[int, float]) -> None:
    trial = study.ask()
    for step, value in curve.items():
        trial.report(value, step)
    study.tell(trial, list(curve.values())[-1])


def _watch(study: optuna.Study, curve: dict[int, float], *, total: int = 12,
           settings: StudySettings | None = None, objective: str | None = "eval_loss") -> Any:
    trial = study.ask()
    watch = PruneWatch(trial, objective=objective,
                       may_prune=(settings or StudySettings()).may_prune)
    watch.on_event(started(total))
    for step, loss in curve.items():
        watch.on_event(evaluated(step, loss))
    return watch


def test_a_trial_behind_the_median_is_pruned_after_its_warm_up() -> None:
    study = _study(min_peers=1)
    _finish(study, {4: 2.5, 8: 2.3})
    assert _watch(study, {4: 2.9, 8: 2.8}).pruned
    # The same curve inside the warm-up (a quarter of 40 steps is 10) is not judged yet.
    assert not _watch(study, {4: 2.9, 8: 2.8}, total=40).pruned


def test_a_trial_ahead_of_the_median_runs_on() -> None:
    study = _study(min_peers=1)
    _finish(study, {4: 2.5, 8: 2.3})
    assert not _watch(study, {4: 2.4, 8: 2.2}).pruned


def test_the_final_eval_is_the_result_never_an_intermediate_value() -> None:
    study = _study(min_peers=1)
    _finish(study, {4: 2.5, 8: 2.3})
    watch = _watch(study, {4: 2.4, 12: 9.0})  # step 12 of 12: the result
    assert not watch.pruned
    assert study.trials[-1].intermediate_values == {4: 2.4}


def test_a_pruned_trial_stays_pruned_even_if_a_later_eval_looks_better() -> None:
    study = _study(min_peers=1)
    _finish(study, {4: 2.5, 8: 2.3})
    assert _watch(study, {4: 2.9, 8: 2.8, 10: 1.0}).pruned


def test_a_multi_objective_study_reports_nothing_and_never_prunes() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    watch = _watch(study, {4: 99.0, 8: 99.0}, objective=None)
    assert not watch.pruned
    assert study.trials[0].intermediate_values == {}


def test_the_warm_up_in_steps_holds_back_the_pruner() -> None:
    study = _study(min_peers=1)
    _finish(study, {4: 2.5, 8: 2.3})
    _finish(study, {4: 2.5, 8: 2.3, 10: 2.2})
    held = StudySettings(warmup_steps=10, warmup_fraction=0.0)
    assert not _watch(study, {4: 2.9, 8: 2.8}, settings=held).pruned
    assert _watch(study, {4: 2.9, 8: 2.8, 10: 2.8}, settings=held).pruned


def test_a_pruned_trial_is_told_where_and_by_how_much_it_was_behind() -> None:
    study = _study(min_peers=2)
    _finish(study, {4: 2.5, 8: 2.3})
    _finish(study, {4: 2.6, 8: 2.5})
    watch = _watch(study, {4: 2.9, 8: 2.8, 10: 2.7})
    assert watch.pruned
    assert watch.why == ("pruned at step 4 of 12: eval loss 2.9000, the median of 2 other "
                         "trials there 2.5500")


def test_a_trial_that_runs_on_has_no_prune_reason() -> None:
    study = _study(min_peers=1)
    _finish(study, {4: 2.5, 8: 2.3})
    assert _watch(study, {4: 2.4, 8: 2.2}).why == ""


def test_a_task_metric_objective_is_read_from_the_answers_and_maximised() -> None:
    ends = [evaluated(4, 2.5, answers={"exact_match": 0.2}), evaluated(6, 2.4),
            evaluated(8, 2.3, answers={"exact_match": 0.5}), evaluated(10, 2.2)]
    kept = selected(8, 2.3, answers={"exact_match": 0.5})
    verdict = judge(result("finished", *ends, kept, on_test(
        2.0, answers={"exact_match": 0.45}, base_answers={"exact_match": 0.1})),
        ["eval/exact_match"])
    assert verdict.values == [0.5]
    # the curve's end is the last eval that measured the metric, not the last eval
    assert verdict.figures["final_eval"] == 0.5 and verdict.figures["final_eval_step"] == 8
    assert verdict.figures["test_exact_match"] == 0.45
    assert verdict.figures["base_test_exact_match"] == 0.1
    assert math.isnan(objective_value(evaluated(6, 2.4), "eval/exact_match"))


def test_a_metric_objective_reports_only_the_evals_that_measured_it_and_prunes_the_low() -> None:
    study = optuna.create_study(direction="maximize",
                                pruner=make_pruner(StudySettings(min_peers=1)))
    _finish(study, {4: 0.5, 8: 0.6})
    trial = study.ask()
    watch = PruneWatch(trial, objective="eval/exact_match", may_prune=StudySettings().may_prune)
    watch.on_event(started(12))
    watch.on_event(evaluated(2, 2.0))  # between epoch ends: no answers, nothing reported
    watch.on_event(evaluated(4, 2.0, answers={"exact_match": 0.3}))
    assert trial.study.trials[-1].intermediate_values == {4: 0.3}
    assert watch.pruned  # 0.3 is below the median 0.5 of a maximised metric
    assert watch.why.startswith("pruned at step 4 of 12: eval exact_match 0.3000")
