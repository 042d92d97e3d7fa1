"""Opening a sweep: the study created with its settings kept, its baselines queued once, the
best of another study tried first; a worker joining only a study a sweep created."""

from __future__ import annotations

import io
from pathlib import Path

import optuna
import pytest
from helpers import seeded_store
from rich.console import Console

from harness.errors import HarnessError
from harness.space.load import parse_space
from harness.study.record import BASELINE, StudyRecord
from harness.study.storage import open_storage, open_study
from harness.sweep.context import SweepOptions
from harness.sweep.opening import create, join_sweep, open_sweep

State = optuna.trial.TrialState
SPACE = """
data: {path: d.json}
study: {name: opened, trials: 4, sampler: random, output_dir: OUT}
registry: {model_name: opened-model, margin: 0.02}
search:
  lora.r: [2, 4, 8]
  training.learning_rate: {low: 1.0e-5, high: 1.0e-2, log: true}
enqueue:
  - {name: webui, lora.r: 8, training.learning_rate: 3.0e-4}
"""


def opened(tmp_path: Path, **given: str | int | None) -> tuple[object, SweepOptions]:
    options = SweepOptions(storage=str(tmp_path / "optuna.journal"),
                           tracking_uri=seeded_store(tmp_path / "mlflow.db"), **given)
    space = parse_space(SPACE.replace("OUT", str(tmp_path / "studies")), "opened.yaml")
    return open_sweep(space, options, Console(file=io.StringIO())), options


def test_a_new_study_keeps_its_settings_and_queues_its_baselines_once(tmp_path: Path) -> None:
    ctx, _ = opened(tmp_path, trials=6)
    parent = create(ctx)
    record = StudyRecord.load(ctx.study)
    assert (record.trials, record.registry_model, record.registry_margin) == (
        6, "opened-model", 0.02)  # --trials over the file's 4
    assert record.space_text.startswith("\ndata:") and record.objectives == ["eval_loss"]
    assert parent.client.get_run(parent.run_id).data.params["search"] == (
        "lora.r, training.learning_rate")
    create(ctx)  # a resumed sweep
    (waiting,) = ctx.study.get_trials(states=(State.WAITING,))
    assert waiting.user_attrs[BASELINE] == "webui"
    assert waiting.system_attrs["fixed_params"]["lora.r"] == 8


def test_the_best_of_another_study_is_tried_first(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "optuna.journal"))
    earlier = open_study("earlier", storage, parse_space(SPACE, "s.yaml").study)
    with pytest.raises(HarnessError, match="that study has no COMPLETE trial yet"):
        create(opened(tmp_path, enqueue_best_from="earlier")[0])
    trial = earlier.ask()
    trial.suggest_categorical("lora.r", [2, 4, 8])
    earlier.tell(trial, 1.0)
    ctx, _ = opened(tmp_path / "again", enqueue_best_from="earlier")
    ctx.study = open_study("opened-2", storage, ctx.space.study)
    create(ctx)
    first, baseline = ctx.study.get_trials(states=(State.WAITING,))
    assert first.system_attrs["fixed_params"] == trial.params  # only what this space searches
    assert BASELINE not in first.user_attrs
    assert baseline.user_attrs[BASELINE] == "webui"


def test_a_worker_joins_only_a_study_a_sweep_created(tmp_path: Path) -> None:
    console = Console(file=io.StringIO())
    storage = str(tmp_path / "optuna.journal")
    with pytest.raises(HarnessError, match="needs --study"):
        join_sweep(SweepOptions(storage=storage), console)
    open_study("plain", open_storage(storage), parse_space(SPACE, "s.yaml").study)
    with pytest.raises(HarnessError, match="--no-run"):
        join_sweep(SweepOptions(study="plain", storage=storage), console)
    ctx, _ = opened(tmp_path)
    create(ctx)
    joined = join_sweep(SweepOptions(study="opened", storage=storage), console)
    assert joined.joining and joined.total == 4 and joined.space.text == ctx.space.text
    assert joined.uri == ctx.uri  # the study's tracking URI, kept with it
