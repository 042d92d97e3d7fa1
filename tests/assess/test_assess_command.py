"""`harness eval` end to end on a tiny model: a trial's run id, its adapter directory and the
base model side by side on a data file, recorded in MLflow with the figures linked to the
trial's logged model; raw text by sliding-window perplexity; bad input named."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import make_config, run_client, tracked_trial

from harness.cli import main
from harness.tracking.evaluation_run import KIND_TAG
from harness.tracking.promotion import Candidate, promote_run

ROOT = Path(__file__).resolve().parents[2]
DATA = ["--data", str(ROOT / "datasets/samples/alpaca.json"), "--format-file", "chat",
        "--cutoff-len", "64"]


def harness_json(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(args)) == 0
    found: dict[str, Any] = json.loads(out.getvalue())
    return found


def test_a_run_its_adapter_directory_and_the_base_side_by_side(
        tmp_path: Path, tiny_model_dir: Path, harness_home: Path) -> None:
    config = make_config(tmp_path, tiny_model_dir)
    config.samples.count = 0
    result, run = tracked_trial(config, tmp_path / "out")
    assert result.reason == "finished", result.log_tail
    uri = str(config.tracking.uri)
    client = run_client(config)
    for _ in range(2):  # promoting the same trial again changes nothing
        promote_run(client, run, Candidate("s", 0, "eval_loss", 1.0), model="tiny", margin=0.0)
    # the version is linked to the trial's logged model as mlflow.register_model links it
    model_id = run.outputs.model_outputs[0].model_id
    listed = client.get_logged_model(model_id).tags["mlflow.modelVersions"]
    assert json.loads(listed) == [{"name": "tiny", "version": "1"}]
    got = harness_json("eval", "base", run.info.run_id, str(tmp_path / "out" / "adapter"),
                       "tiny@champion",
                       *DATA, "--base-model", str(tiny_model_dir), "--metric", "exact_match",
                       "--metric", "rougeL", "--max-answers", "4", "--max-new-tokens", "6",
                       "--tracking-uri", uri, "--experiment", "evals", "--json")
    base, by_run, by_dir, by_version = got["models"]
    assert [m["kind"] for m in got["models"]] == ["base", "adapter", "adapter", "adapter"]
    assert set(base["figures"]) == {"loss", "exact_match", "rougeL"}
    assert base["figures"]["rougeL"]["n"] == 4 and base["examples"] > 4
    # the same adapter named twice scores the same, and differs from the base model
    assert by_run["figures"] == by_dir["figures"] == by_version["figures"]
    assert by_run["versus_first"]["loss"]["mean"] != 0
    evaluation = client.get_run(got["data"]["mlflow_run_id"])
    assert evaluation.data.tags[KIND_TAG] == "evaluation"
    assert evaluation.data.metrics["base/loss"] == pytest.approx(base["figures"]["loss"]["mean"])
    answers = client.download_artifacts(evaluation.info.run_id, "answers.json", str(tmp_path))
    assert len(json.loads(Path(answers).read_text())["data"]) == 4
    # the trial's logged model holds its figures on this data, linked to the dataset
    linked = [m for m in client.get_logged_model(model_id).metrics
              if m.dataset_name == got["data"]["name"]]
    # named three ways (run id, directory, version), twice through the store: linked once
    (loss,) = [m for m in linked if m.key == "harness_eval/loss"]
    assert loss.value == pytest.approx(by_run["figures"]["loss"]["mean"])
    assert loss.dataset_digest == got["data"]["digest"] and {m.key for m in linked} >= {
        "harness_eval/rougeL", "harness_eval/exact_match", "harness_eval/perplexity"}
    # the evaluation run names the models it evaluated as its inputs
    assert [i.model_id for i in evaluation.inputs.model_inputs] == [model_id]


def test_raw_text_is_scored_by_sliding_window_perplexity(tiny_model_dir: Path,
                                                         harness_home: Path) -> None:
    got = harness_json("eval", "base", "--data", str(ROOT / "datasets/samples/rawtext"),
                       "--base-model", str(tiny_model_dir), "--window", "32", "--stride", "16",
                       "--no-log", "--json")
    (model,) = got["models"]
    assert got["data"]["raw_text"] and set(model["figures"]) == {"loss"}
    assert model["examples"] > 2 and model["perplexity"] > 1


def test_what_cannot_be_evaluated_is_named(tmp_path: Path, capsys: pytest.CaptureFixture,
                                           harness_home: Path) -> None:
    assert main(["eval", "base", str(tmp_path), *DATA, "--no-log"]) == 2
    assert "holds neither an adapter" in capsys.readouterr().err
    assert main(["eval", "nothing-here", *DATA, "--no-log"]) == 2
    assert "cannot tell what 'nothing-here' is" in capsys.readouterr().err
    assert main(["eval", "base", *DATA, "--metric", "bleu", "--no-log"]) == 2
    assert "'bleu' is not a metric" in capsys.readouterr().err
