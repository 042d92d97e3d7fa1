"""A sweep that optimizes a task metric, end to end on the tiny model with instruction data: the
study maximizes it, trials keep their highest-scoring epoch, the summary shows it on the test
split, and promotion registers and compares by it."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from helpers import client, sweep

from bench.instruction_set import instruction_set
from harness.study.storage import load_study, open_storage

METRIC = """\
def letters(predictions, references):
    return [float(len(set(p))) for p in predictions]
"""


def test_a_sweep_optimizes_and_promotes_by_a_task_metric(
        tmp_path: Path, tiny_model_dir: Path, stores: dict[str, str],
        capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "instructions.json"
    data.write_text(json.dumps(instruction_set(40, seed=0)))
    # on a random tiny model exact_match is 0 everywhere; a metric of the user's own whose
    # score moves shows which way the sweep goes
    (tmp_path / "letters.py").write_text(METRIC)
    space = tmp_path / "metric.yaml"
    space.write_text(f"""
model: {tiny_model_dir}
data: {{path: {data}, format: alpaca, cutoff_len: 160, eval_fraction: 0.2, test_fraction: 0.2}}
training: {{epochs: 2, micro_batch_size: 4, scheduler: constant}}
samples: {{count: 0}}
retention: {{enabled: false}}
evaluation: {{metrics: [exact_match, {tmp_path / 'letters.py'}:letters], max_new_tokens: 6}}
study: {{sampler: random, seed: 0, pruner: none, trials: 3, objective: eval/letters,
         output_dir: {tmp_path / 'studies'}}}
registry: {{model_name: tiny-metric}}
search:
  training.learning_rate: {{low: 1.0e-4, high: 3.0e-2, log: true}}
""")
    assert sweep(space, stores) == 0
    captured = capsys.readouterr()
    summary = captured.out + captured.err
    study = load_study("metric", open_storage(stores["storage"]))
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 3 and study.best_trial.value == max(t.value for t in complete)
    assert all("test_exact_match" in t.user_attrs and "base_test_letters" in t.user_attrs
               for t in complete)
    assert "what the search found (eval/letters and test loss, test task metrics" in summary
    assert ", letters " in summary  # the trials' epoch-end evals name their scores
    best = study.best_trial.user_attrs  # the test metric beside the loss, base model and best
    assert f"{best['test_letters']:.4f}" in summary and f"{best['test_loss']:.4f}" in summary
    assert f"{best['base_test_letters']:.4f}" in summary
    version = client(stores).get_model_version_by_alias("tiny-metric", "champion")
    assert version.tags["objective"] == "eval/letters"
    assert version.tags["trial"] == str(study.best_trial.number)
    assert float(version.tags["test_letters"]) == study.best_trial.user_attrs["test_letters"]
    # the champion against the base model on the study's own test split
    import contextlib
    import io

    from harness.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["eval", "base", "tiny-metric@champion", "--study", "metric", "--split",
                     "test", "--storage", stores["storage"], "--tracking-uri", stores["uri"],
                     "--max-new-tokens", "6", "--json"]) == 0
    got = json.loads(out.getvalue())
    base, champion = got["models"]
    assert base["kind"] == "base"
    # the study's metrics, on the same test examples its trials were scored on
    assert set(champion["figures"]) == {"loss", "exact_match", "letters"}
    assert champion["figures"]["loss"]["mean"] == pytest.approx(best["test_loss"], rel=1e-4)
    assert champion["figures"]["letters"]["mean"] == pytest.approx(best["test_letters"])
    runs = client(stores).search_runs(
        [client(stores).get_experiment_by_name("metric").experiment_id],
        filter_string="tags.`harness.kind` = 'evaluation'")
    assert len(runs) == 1
    # the data is named as the trials named their test split: one dataset in MLflow
    trial_run = client(stores).get_run(study.best_trial.user_attrs["mlflow_run_id"])
    assert got["data"]["digest"] == trial_run.data.tags["dataset.test_fingerprint"]
    assert got["data"]["name"] in {d.dataset.name for d in trial_run.inputs.dataset_inputs}
