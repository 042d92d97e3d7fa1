"""Sweeps on the tiny config-built Llama: pruning, failures, nested MLflow runs, plots,
promotion to the registry, the promotion gate, pull, and resume after the sweep is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
from helpers import client, group_alive, space_file, sweep, wait_for

from harness.cli import main
from harness.study.budget import reason_of, retried_from
from harness.study.record import REASON, RUN_ID, WORKER
from harness.study.storage import load_study, open_storage

ROOT = Path(__file__).resolve().parents[2]
OK = optuna.trial.TrialState


GOOD_BAD_CRASH = """\
  - {training.learning_rate: 1.0e-2, lora.r: 4}
  - {training.learning_rate: 1.0e-6, lora.r: 4}
  - {training.learning_rate: 1.0e-3, lora.r: 2}
"""


def test_a_sweep_prunes_survives_a_crash_tracks_and_promotes(
        tmp_path: Path, tiny_model_dir: Path, stores: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_FAULT", "crash@1#2")  # only trial 2 crashes
    space = space_file(tmp_path, tiny_model_dir, enqueue=GOOD_BAD_CRASH)
    assert sweep(space, stores) == 0

    study = load_study("tiny", open_storage(stores["storage"]))
    states = [t.state for t in study.trials]
    assert states == [OK.COMPLETE, OK.PRUNED, OK.FAIL], [t.user_attrs for t in study.trials]
    crashed = study.trials[2]
    assert crashed.user_attrs[REASON] == "crash"
    assert "injected crash" in crashed.user_attrs["harness.log_tail"]
    assert study.trials[1].user_attrs[REASON] == "pruned"

    mlflow = client(stores)
    experiment = mlflow.get_experiment_by_name("tiny")
    runs = mlflow.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("harness.role") == "study"]
    children = sorted((r for r in runs if r is not parent),
                      key=lambda r: int(r.data.tags["optuna.trial"]))
    assert parent.info.status == "FINISHED"
    assert [r.data.tags["mlflow.parentRunId"] for r in children] == [parent.info.run_id] * 3
    assert [r.info.status for r in children] == ["FINISHED", "KILLED", "FAILED"]
    assert [r.data.tags["trial.reason"] for r in children] == ["finished", "pruned", "crash"]
    assert all(r.data.tags["optuna.study"] == "tiny" for r in children)
    best = children[0]
    assert {"eval/loss", "eval/perplexity_ratio_to_base", "train/loss"} <= set(best.data.metrics)
    names = {a.path for a in mlflow.list_artifacts(best.info.run_id, "samples")}
    assert "samples/comparison.json" in names
    failure = {a.path for a in mlflow.list_artifacts(children[2].info.run_id, "failure")}
    assert "failure/log_tail.txt" in failure
    # A pruned trial says where and by how much it was behind, and leaves no failure log.
    pruned = children[1]
    assert pruned.data.tags["trial.message"].startswith("pruned at step ")
    assert "the median of 1 other trial there" in pruned.data.tags["trial.message"]
    assert pruned.data.tags["mlflow.note.content"] == pruned.data.tags["trial.message"]
    assert study.trials[1].user_attrs["harness.message"] == pruned.data.tags["trial.message"]
    assert not mlflow.list_artifacts(pruned.info.run_id, "failure")
    # Every curve starts at the base model's eval loss, at step 0.
    curve = mlflow.get_metric_history(best.info.run_id, "eval/loss")
    assert min(m.step for m in curve) == 0
    assert [m.value for m in curve if m.step == 0] == [best.data.metrics["base/eval_loss"]]
    plots = {a.path for a in mlflow.list_artifacts(parent.info.run_id, "plots")}
    assert {"plots/optimization_history.png", "plots/learning_curves.png"} <= plots
    assert "too few complete trials" in parent.data.tags["plot.param_importances.skipped"]
    assert parent.data.tags["best_trial"] == "0"
    assert parent.data.params["pruner_settings"] == (
        "min_peers=1, warmup_steps=0, warmup_fraction=0.25")
    assert "space.yaml" in {a.path for a in mlflow.list_artifacts(parent.info.run_id)}

    champion = mlflow.get_model_version_by_alias("tiny-adapter", "champion")
    assert champion.tags["study"] == "tiny" and champion.tags["trial"] == "0"
    assert champion.run_id == best.info.run_id
    # registered from the best run's logged model, and described with how to load it
    (output,) = mlflow.get_run(best.info.run_id).outputs.model_outputs
    assert champion.source == f"models:/{output.model_id}"
    assert f"harness pull tiny-adapter/{champion.version} --out" in champion.description
    assert f'load_model("models:/tiny-adapter/{champion.version}")' in champion.description
    assert not Path("mlflow.db").exists()  # MLflow's default store was never touched
    for key in ("objective_value", "perplexity_ratio_to_base", "dataset_fingerprint",
                "base_model", "quantization", "harness_version", "git_commit"):
        assert champion.tags[key], key

    # The study run describes the study and links the best run and its version.
    note = mlflow.get_run(parent.info.run_id).data.tags["mlflow.note.content"]
    exp = experiment.experiment_id
    assert note.startswith("**Study `tiny`**: 3 trials (1 complete, 1 fail, 1 pruned)")
    assert (f"Best: [trial 0](#/experiments/{exp}/runs/{best.info.run_id}"
            "?workflowType=machine_learning)") in note
    assert (f"[tiny-adapter version {champion.version}](#/models/tiny-adapter/versions/"
            f"{champion.version}) with alias `@champion`") in note
    assert "| pruned |" in note and "pruned at step" in note
    assert [r.data.tags.get("harness.best_trial") for r in children] == ["true", None, None]

    # Promoting again changes nothing.
    assert main(["promote", "--study", "tiny", "--storage", stores["storage"]]) == 0
    assert len(mlflow.search_model_versions("name = 'tiny-adapter'")) == 1

    check_pull(tmp_path, stores, champion.version)
    check_gate(tmp_path, tiny_model_dir, stores, champion.version)


@pytest.mark.parametrize("data, said", [
    ("{path: no/such/data.json}", "no/such/data.json: no such file or directory"),
    (f"{{path: {ROOT / 'datasets/samples/alpaca.json'}, format_file: chat, eval_fraction: 0}}",
     "the eval split is empty: data.eval_fraction is 0"),
    ("{path: ONE, format_file: chat}", "the eval split is empty"),
])
def test_data_that_cannot_train_stops_the_sweep_before_any_trial(
        tmp_path: Path, tiny_model_dir: Path, stores: dict[str, str],
        capsys: pytest.CaptureFixture[str], data: str, said: str) -> None:
    one = tmp_path / "one.json"
    one.write_text(json.dumps([{"instruction": "Say hi.", "output": "Hi."}]))
    space = space_file(tmp_path, tiny_model_dir)
    text = space.read_text()
    start = text.index("data: {")
    end = text.index("}", start) + 1
    space.write_text(text[:start] + "data: " + data.replace("ONE", str(one)) + text[end:])
    capsys.readouterr()
    assert sweep(space, stores) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err, err
    assert load_study("tiny", open_storage(stores["storage"])).trials == []


def test_a_sweep_whose_every_trial_fails_says_why_and_exits_1(
        tmp_path: Path, tiny_model_dir: Path, stores: dict[str, str],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HARNESS_FAULT", "crash@1")
    assert sweep(space_file(tmp_path, tiny_model_dir, trials=2), stores) == 1
    err = capsys.readouterr().err
    assert "no trial completed" in err and "2 trial(s) ended crash" in err, err
    assert "injected crash" in err and "trial.log" in err


def test_a_space_edited_in_a_way_the_study_cannot_follow_is_refused_at_the_start(
        tmp_path: Path, tiny_model_dir: Path, stores: dict[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    space = space_file(tmp_path, tiny_model_dir, trials=1, max_steps=2)
    assert sweep(space, stores, "--no-promote") == 0
    space.write_text(space.read_text().replace("lora.r: [2, 4]", "lora.r: [2, 4, 8]"))
    capsys.readouterr()
    assert sweep(space, stores, "--trials", "2", "--no-promote") == 2
    err = capsys.readouterr().err
    assert "search.lora.r: the study's trials drew from [2, 4]; the file now gives [2, 4, 8]" \
        in err and "--study tiny-2" in err, err
    assert len(load_study("tiny", open_storage(stores["storage"])).trials) == 1


def test_no_trial_is_pruned_before_its_warmup_share_of_steps(
        tmp_path: Path, tiny_model_dir: Path, stores: dict[str, str]) -> None:
    # The second trial is the one pruned at step 2 of 4 above; 3/4 of the steps protect it.
    good_bad = "".join(GOOD_BAD_CRASH.splitlines(keepends=True)[:2])
    space = space_file(tmp_path, tiny_model_dir, trials=2, enqueue=good_bad,
                       study=", warmup_fraction: 0.75")
    assert sweep(space, stores, "--no-promote") == 0

    study = load_study("tiny", open_storage(stores["storage"]))
    assert [t.state for t in study.trials] == [OK.COMPLETE, OK.COMPLETE]
    slow = study.trials[1]
    assert slow.intermediate_values.keys() == {2}  # reported for others to compare with
    assert slow.value > study.trials[0].value


def check_pull(tmp_path: Path, stores: dict[str, str], version: str) -> None:
    """`harness pull` and plain `mlflow artifacts download` both give usable adapter files."""
    import mlflow
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "pulled"
    before = mlflow.get_tracking_uri()
    assert main(["pull", "tiny-adapter@champion", "--out", str(out), "--tracking-uri",
                 stores["uri"]]) == 0
    assert mlflow.get_tracking_uri() == before  # a pull leaves the process's MLflow settings alone
    config = json.loads((out / "train_config.json").read_text())
    assert config["lora"]["r"] == 4
    # The store is named explicitly (a set_tracking_uri would leak into later tests), so the
    # version is located with a client: MLflow's models:/ download reads the global registry.
    location = client(stores).get_model_version_download_uri("tiny-adapter", version)
    plain = mlflow.artifacts.download_artifacts(artifact_uri=location, tracking_uri=stores["uri"],
                                                dst_path=str(tmp_path / "plain"))
    base = AutoModelForCausalLM.from_pretrained(config["model"])
    assert isinstance(PeftModel.from_pretrained(base, plain), PeftModel)
    assert main(["pull", f"tiny-adapter/{version}", "--out", str(tmp_path / "v"),
                 "--tracking-uri", stores["uri"], "--prompt", "Name a colour."]) == 0
    assert main(["pull", "no-such-model@champion", "--out", str(tmp_path / "x"),
                 "--tracking-uri", stores["uri"]]) == 2
    check_pull_refuses_to_overwrite(tmp_path, stores)


def check_pull_refuses_to_overwrite(tmp_path: Path, stores: dict[str, str]) -> None:
    """A non-empty --out is refused unless --force, which replaces only the adapter's files."""
    used = tmp_path / "used"
    used.mkdir()
    (used / "adapter_config.json").write_text("mine")
    (used / "notes.txt").write_text("mine too")
    pull = ["pull", "tiny-adapter@champion", "--tracking-uri", stores["uri"], "--out"]
    assert main([*pull, str(used)]) == 2
    assert (used / "adapter_config.json").read_text() == "mine"
    assert main([*pull, str(used), "--force"]) == 0
    assert json.loads((used / "adapter_config.json").read_text())["r"] == 4
    assert (used / "notes.txt").read_text() == "mine too"
    assert main([*pull, str(used / "notes.txt")]) == 2  # a file, not a directory
    assert main(["pull", "tiny-adapter/-1", "--out", str(tmp_path / "y"),
                 "--tracking-uri", stores["uri"]]) == 2


def check_gate(tmp_path: Path, model_dir: Path, stores: dict[str, str], champion: str) -> None:
    """A second study warm-started from the first one's best parameters, plus a worse trial:
    its best is not better by the margin, so it registers a challenger and champion stays."""
    second = space_file(tmp_path, model_dir, name="second", trials=2,
                        enqueue="  - {training.learning_rate: 1.0e-6, lora.r: 2}\n")
    assert sweep(second, stores, "--enqueue-best-from", "tiny") == 0
    trials = load_study("second", open_storage(stores["storage"])).trials
    first_best = load_study("tiny", open_storage(stores["storage"])).best_trial
    assert trials[0].params == first_best.params  # the warm start ran first
    mlflow = client(stores)
    assert mlflow.get_model_version_by_alias("tiny-adapter", "champion").version == champion
    challenger = mlflow.get_model_version_by_alias("tiny-adapter", "challenger")
    assert challenger.tags["study"] == "second"


def test_running_the_sweep_again_settles_a_promotion_ctrl_c_cut_short(
        tmp_path: Path, tiny_model_dir: Path, stores: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient

    space = space_file(tmp_path, tiny_model_dir, trials=1,
                       enqueue="  - {training.learning_rate: 1.0e-2, lora.r: 4}\n")

    def ctrl_c(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:  # Ctrl-C lands as the alias is about to be set
        patch.setattr(MlflowClient, "set_registered_model_alias", ctrl_c)
        assert sweep(space, stores) == 130
    mlflow = client(stores)
    (version,) = mlflow.search_model_versions("name = 'tiny-adapter'")
    assert not mlflow.get_registered_model("tiny-adapter").aliases

    assert sweep(space, stores) == 0
    assert mlflow.get_model_version_by_alias("tiny-adapter", "champion").version == \
        version.version
    assert main(["pull", "tiny-adapter@champion", "--out", str(tmp_path / "pulled"),
                 "--tracking-uri", stores["uri"]]) == 0


def test_a_killed_sweep_resumes_without_repeating_or_leaving_anything_running(
        tmp_path: Path, tiny_model_dir: Path, stores: dict[str, str]) -> None:
    space = space_file(tmp_path, tiny_model_dir, trials=2, max_steps=2000)  # still running
    cmd = [sys.executable, "-m", "harness", "sweep", str(space), "--storage", stores["storage"],
           "--tracking-uri", stores["uri"], "--no-promote"]
    first = subprocess.Popen(cmd, cwd=tmp_path, env=os.environ.copy(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    events = tmp_path / "studies" / "tiny" / "trial-0000" / "events.jsonl"
    wait_for(lambda: events.is_file() and '"step"' in events.read_text(), first)
    first.send_signal(signal.SIGKILL)  # the sweep dies: its trial stops, or the resume stops it
    first.wait()
    study = load_study("tiny", open_storage(stores["storage"]))
    pgid = study.trials[0].system_attrs[WORKER]["pgid"]

    space.write_text(space.read_text().replace("max_steps: 2000", "max_steps: 4"))
    assert sweep(space, stores, "--no-promote") == 0
    assert not group_alive(pgid)
    study = load_study("tiny", open_storage(stores["storage"]))
    trials = study.trials
    assert [t.state for t in trials] == [OK.FAIL, OK.COMPLETE, OK.COMPLETE]
    assert reason_of(trials[0]) == "abandoned"
    assert retried_from(trials[1]) == 0 and trials[1].params == trials[0].params
    # The resumed process samples afresh: its first draw is not the dead process's first.
    assert trials[2].params != trials[0].params
    runs = client(stores).search_runs(
        [client(stores).get_experiment_by_name("tiny").experiment_id])
    assert not [r for r in runs if r.info.status == "RUNNING"]
    abandoned = next(r for r in runs if r.info.run_id == trials[0].user_attrs[RUN_ID])
    assert abandoned.info.status == "FAILED"
    assert abandoned.data.tags["trial.reason"] == "abandoned"

    # The study is complete: running it again starts nothing.
    assert sweep(space, stores, "--no-promote") == 0
    assert len(load_study("tiny", open_storage(stores["storage"])).trials) == 3


def test_ctrl_c_stops_the_sweep_cleanly_and_it_resumes(
        tmp_path: Path, tiny_model_dir: Path, stores: dict[str, str]) -> None:
    # Long enough (40 steps take about a second) that Ctrl-C lands mid-trial even when this
    # test process is slow to notice the first step on a loaded machine.
    space = space_file(tmp_path, tiny_model_dir, trials=1, max_steps=2000)
    cmd = [sys.executable, "-m", "harness", "sweep", str(space), "--storage", stores["storage"],
           "--tracking-uri", stores["uri"], "--no-promote"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=as_from_a_terminal)
    events = tmp_path / "studies" / "tiny" / "trial-0000" / "events.jsonl"
    wait_for(lambda: events.is_file() and '"step"' in events.read_text(), proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    study = load_study("tiny", open_storage(stores["storage"]))
    first = study.trials[0]
    assert first.state == OK.FAIL and first.user_attrs[REASON] == "interrupted"
    assert not group_alive(first.system_attrs[WORKER]["pgid"])
    mlflow = client(stores)
    assert mlflow.get_run(first.user_attrs[RUN_ID]).info.status == "KILLED"
    runs = mlflow.search_runs([mlflow.get_experiment_by_name("tiny").experiment_id],
                              filter_string="tags.`harness.role` = 'study'")
    assert runs[0].info.status == "KILLED"

    space.write_text(space.read_text().replace("max_steps: 2000", "max_steps: 2"))
    assert sweep(space, stores, "--no-promote") == 0
    trials = load_study("tiny", open_storage(stores["storage"])).trials
    assert [t.state for t in trials] == [OK.FAIL, OK.COMPLETE]
    assert trials[1].params == first.params and retried_from(trials[1]) == 0


def test_a_trial_interrupted_twice_is_run_again_even_with_nothing_searched(
        tmp_path: Path, tiny_model_dir: Path, stores: dict[str, str]) -> None:
    """Ctrl-C twice, each time during the retry of the trial the last Ctrl-C stopped, on a
    space that searches nothing: the study still ends with its one trial complete."""
    space = space_file(tmp_path, tiny_model_dir, trials=1, max_steps=2000)
    text = space.read_text()
    space.write_text(text[:text.index("search:")])
    cmd = [sys.executable, "-m", "harness", "sweep", str(space), "--storage", stores["storage"],
           "--tracking-uri", stores["uri"], "--no-promote"]
    for number in (0, 1):
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, preexec_fn=as_from_a_terminal)
        events = tmp_path / "studies" / "tiny" / f"trial-{number:04d}" / "events.jsonl"
        wait_for(lambda e=events: e.is_file() and '"step"' in e.read_text(), proc)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130

    space.write_text(space.read_text().replace("max_steps: 2000", "max_steps: 2"))
    assert sweep(space, stores, "--no-promote") == 0
    trials = load_study("tiny", open_storage(stores["storage"])).trials
    assert [t.state for t in trials] == [OK.FAIL, OK.FAIL, OK.COMPLETE]
    assert [t.user_attrs.get(REASON) for t in trials[:2]] == ["interrupted"] * 2
    assert retried_from(trials[1]) == 0 and retried_from(trials[2]) == 0


def test_a_full_disk_stops_the_sweep_clearly_and_loses_nothing(
        tmp_path: Path, tiny_model_dir: Path, harness_home: Path, small_disk: Any) -> None:
    """The study journal, the MLflow store and the trials all on one disk that fills up
    mid-trial: the sweep stops with one clear error; once space is freed, the same command
    finishes the study, and nothing is left RUNNING."""
    disk = small_disk("64m")
    stores = {"storage": str(disk.path / "optuna.journal"),
              "uri": f"sqlite:///{disk.path / 'mlflow.db'}"}
    space = space_file(tmp_path, tiny_model_dir, trials=3, max_steps=60)
    space.write_text(space.read_text().replace(str(tmp_path / "studies"),
                                               str(disk.path / "studies"))
                     .replace("pruner: median", "pruner: none"))
    log = tmp_path / "sweep.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "harness", "sweep", str(space),
                                 "--storage", stores["storage"], "--tracking-uri",
                                 stores["uri"]], cwd=tmp_path, stdout=out, stderr=out)
    events = disk.path / "studies" / "tiny" / "trial-0000" / "events.jsonl"
    wait_for(lambda: events.is_file() and '"step"' in events.read_text(), proc)
    disk.fill()
    assert proc.wait(timeout=300) == 2
    said = log.read_text()
    assert f"harness: error: disk full at {disk.path}/" in said, said[-3000:]
    assert "Traceback" not in said and "disk full at disk full" not in said, said[-3000:]

    disk.free()
    assert sweep(space, stores) == 0
    study = load_study("tiny", open_storage(stores["storage"]))
    assert sum(t.state == OK.COMPLETE for t in study.trials) == 3
    assert all(t.state.is_finished() for t in study.trials)
    assert {reason_of(t) for t in study.trials} <= {"finished", "disk_full", "abandoned"}
    mlflow = client(stores)
    runs = mlflow.search_runs([mlflow.get_experiment_by_name("tiny").experiment_id])
    assert not [r for r in runs if r.info.status == "RUNNING"]
    assert mlflow.get_model_version_by_alias("tiny-adapter", "champion")


def as_from_a_terminal() -> None:
    """Ctrl-C reaches a command started from a terminal; a test run started in the background
    (`cmd &` in a script) ignores SIGINT, and its children would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


