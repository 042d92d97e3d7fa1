"""Trials on a tiny config-built Llama: tracked, failing with the right reason, resumable."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import Recording, launched, make_config, run_client, tracked_trial
from safetensors.torch import load_file

from harness.config import TrainConfig
from harness.data.retention import SHIPPED
from harness.launch.command import write_trial_config
from harness.protocol import (
    CheckpointDamaged,
    Eval,
    Event,
    Failed,
    HeldOutTest,
    Resumed,
    Selected,
    Started,
    Step,
    StopRequest,
)
from harness.sweep.judge import judge
from harness.tracking.trial_run import TrialRun


@pytest.fixture
def home(harness_home: Path) -> Path:
    return harness_home


def test_a_4bit_trial_is_tracked_end_to_end(tmp_path: Path, tiny_model_dir: Path,
                                            home: Path) -> None:
    config = make_config(tmp_path, tiny_model_dir, mode="4bit", eval_steps=2, save_steps=2)
    result, run = tracked_trial(config, tmp_path / "out")
    assert result.reason == "finished", result.log_tail
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    for name in ("train/loss", "train/learning_rate", "train/grad_norm",
                 "train/tokens_per_second", "train/padding_efficiency", "eval/loss",
                 "eval/perplexity",
                 "eval/perplexity_ratio_to_base", "base/perplexity", "memory/peak_mb"):
        assert name in metrics, name
    assert 0 < metrics["train/padding_efficiency"] <= 1
    assert run.data.tags["quantization"] == "4bit"
    # params as written, machine-local places as tags, and who ran it at which commit
    assert run.data.params["data.hard_cut"] == repr("\n\n\n")
    assert "output_dir" not in run.data.params and "tracking.uri" not in run.data.params
    assert run.data.tags["harness.output_dir"] == str(tmp_path / "out")
    assert run.data.tags["mlflow.user"] and run.data.tags["mlflow.source.type"] == "LOCAL"
    assert run.data.tags["mlflow.source.name"].startswith("harness")
    assert len(run.data.tags["mlflow.source.git.commit"]) == 40
    started = result.last(Started)
    assert started is not None
    assert run.data.tags["dataset.fingerprint"] == started.fingerprint[:32]
    # train and eval inputs, each digest spelled as its tag, the profile with the train input
    inputs = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"training", "eval", "test"}
    assert inputs["training"].digest == run.data.tags["dataset.fingerprint"]
    assert inputs["eval"].digest == run.data.tags["dataset.eval_fingerprint"]
    assert inputs["eval"].name == inputs["training"].name + " eval"
    profile = json.loads(inputs["training"].profile)
    assert profile["train"] == started.train_examples and profile["records"] >= profile[
        "usable"] > 0
    assert profile["tokens"]["cutoff_len"] == config.data.cutoff_len
    steps = [e.step for e in result.events if isinstance(e, Eval)]
    assert steps == [2, 4]
    adapter = tmp_path / "out" / "adapter"
    for name in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json",
                 "train_config.json"):
        assert (adapter / name).is_file()
    samples = json.loads((tmp_path / "out" / "samples" / "samples.json").read_text())
    assert len(samples) == 2 and {"question", "base", "adapter", "reference",
                                  "rougeL_adapter"} <= set(samples[0])
    assert not samples[0]["reference"].endswith("<|im_end|>")
    mean = sum(s["rougeL_adapter"] - s["rougeL_base"] for s in samples) / 2
    assert metrics["samples/rougeL_gain"] == pytest.approx(mean, abs=1e-4)
    eval_curve = run_client(config).get_metric_history(run.info.run_id, "eval/loss")
    assert [m.value for m in eval_curve if m.step == 0] == [metrics["base/eval_loss"]]
    assert_loads_as_mlflow_pipeline(run, config)


def test_epochs_are_evaluated_at_their_ends_and_the_best_one_is_kept(
        tmp_path: Path, tiny_model_dir: Path, home: Path) -> None:
    config = make_config(tmp_path, tiny_model_dir, max_steps=-1, epochs=3, eval_steps=0)
    config.samples.count = 0
    config.evaluation.max_test_examples = 2  # a seeded sample of the test split is scored
    result, run = tracked_trial(config, tmp_path / "out")
    assert result.reason == "finished", result.log_tail
    started, selected = result.last(Started), result.last(Selected)
    assert started is not None and selected is not None
    per_epoch = -(-started.train_examples // 2)
    evals = {e.step: e.loss for e in result.events if isinstance(e, Eval)}
    assert list(evals) == [per_epoch, 2 * per_epoch, 3 * per_epoch]
    assert selected.loss == min(evals.values()) and evals[selected.step] == selected.loss
    assert selected.epoch == selected.step / per_epoch
    assert judge(result, ["eval_loss"]).values == [selected.loss]
    metrics = run.data.metrics
    assert metrics["selected/eval_loss"] == selected.loss
    assert metrics["selected/epoch"] == selected.epoch
    # the test split and the general text, measured once on the adapter kept
    assert started.test_examples == 2 and run.data.tags["dataset.test_fingerprint"]
    for name in ("test/loss", "test/perplexity", "base/test_loss", "retention/loss",
                 "base/retention_loss", "retention/loss_change_vs_base", "test/loss_ci95",
                 "test/seconds", "retention/seconds"):
        assert name in metrics, name
    assert sum(isinstance(e, HeldOutTest) for e in result.events) == 1
    assert metrics["test/examples"] == 2 and metrics["test/loss_ci95"] > 0
    shipped = json.loads(SHIPPED.read_text())  # the general text, every record of it scored
    assert metrics["retention/examples"] == min(len(shipped), config.retention.max_records)
    kept = load_file(str(tmp_path / "out" / "best-epoch" / "adapter_weights.safetensors"))
    final = load_file(str(tmp_path / "out" / "adapter" / "adapter_model.safetensors"))
    assert {k.removesuffix(".weight") for k in kept} == {k.removesuffix(".weight") for k in final}
    assert all(torch.equal(kept[k], final[k]) for k in kept)  # the adapter is the epoch kept


def assert_loads_as_mlflow_pipeline(run: Any, config: TrainConfig) -> None:
    """The logged adapter directory is an MLflow transformers model of base + adapter."""
    import mlflow
    from mlflow.models import Model
    from peft import PeftModel

    client = run_client(config)
    (output,) = run.outputs.model_outputs
    logged = client.get_logged_model(output.model_id)
    assert logged.source_run_id == run.info.run_id and logged.status == "READY"
    assert logged.name == f"{run.info.run_name}-adapter"  # tells a study's adapters apart
    assert {m.key for m in logged.metrics} >= {"selected/eval_loss", "test/loss"}
    test_loss = next(m for m in logged.metrics if m.key == "test/loss")
    assert test_loss.dataset_digest == run.data.tags["dataset.test_fingerprint"]
    assert logged.params["lora.r"] == str(config.lora.r)
    local = mlflow.artifacts.download_artifacts(artifact_uri=logged.artifact_location,
                                                tracking_uri=config.tracking.uri)
    assert Model.load(local).model_id == logged.model_id  # the MLmodel names its model
    pipe = mlflow.transformers.load_model(local)
    assert isinstance(pipe.model, PeftModel)
    ids = pipe.tokenizer("What is a test?", return_tensors="pt")
    with torch.no_grad():
        tuned = pipe.model(**ids).logits
        with pipe.model.disable_adapter():
            base = pipe.model(**ids).logits
    assert not torch.allclose(tuned, base)
    out = pipe("What is a test?", max_new_tokens=4, do_sample=False)
    assert isinstance(out[0]["generated_text"], str)


def test_injected_nan_ends_with_reason_nan(tmp_path: Path, tiny_model_dir: Path,
                                           home: Path) -> None:
    config = make_config(tmp_path, tiny_model_dir)
    result, run = tracked_trial(config, tmp_path / "out", env={"HARNESS_FAULT": "nan@2"})
    assert result.reason == "nan" and "step 2" in result.message
    assert run.info.status == "FAILED" and run.data.tags["trial.reason"] == "nan"


def test_oom_and_crash_have_their_own_reasons(tmp_path: Path, tiny_model_dir: Path,
                                              home: Path) -> None:
    config = make_config(tmp_path, tiny_model_dir)
    write_trial_config(config, tmp_path / "a")
    oom = launched(tmp_path / "a", env={"HARNESS_FAULT": "oom@1"})
    assert oom.reason == "oom" and "micro_batch_size" in oom.message
    crash = launched(tmp_path / "a", env={"HARNESS_FAULT": "crash@1"})
    failed = crash.last(Failed)
    assert crash.reason == "crash" and failed is not None and "Traceback" in str(failed.traceback)


def test_stopping_a_trial_ends_it_killed(tmp_path: Path, tiny_model_dir: Path,
                                         home: Path) -> None:
    config = make_config(tmp_path, tiny_model_dir, max_steps=500)
    seen: list[Event] = []

    def stop() -> StopRequest | None:
        return "pruned" if any(isinstance(e, Step) for e in seen) else None

    write_trial_config(config, tmp_path / "out")
    run = TrialRun(config)
    result = launched(tmp_path / "out",
                      Recording(lambda e: (seen.append(e), run.on_event(e)), stop))
    run.finish(result, tmp_path / "out")
    assert result.reason == "pruned"
    failed = result.last(Failed)
    assert failed is not None and failed.reason == "killed"  # it stopped cleanly on SIGTERM
    assert run.client.get_run(run.run_id).info.status == "KILLED"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead
        return f.read().split(") ")[1][0] != "Z"


def test_sigkill_leaves_no_running_run_and_no_orphan(tmp_path: Path, tiny_model_dir: Path,
                                                     home: Path) -> None:
    """SIGKILL of the process the sweep started (a one-process trial runs directly)."""
    config = make_config(tmp_path, tiny_model_dir, max_steps=500)
    pids: dict[str, int] = {}

    def on_event(event: Event) -> None:
        if isinstance(event, Started):
            pids.update(trial=event.pid, launcher=event.pid)
            assert _parent_of(event.pid) == os.getpid()  # no launcher between
        if isinstance(event, Step) and event.step == 2:
            os.kill(pids["launcher"], signal.SIGKILL)

    write_trial_config(config, tmp_path / "out")
    run = TrialRun(config)
    result = launched(tmp_path / "out", Recording(lambda e: (run.on_event(e), on_event(e))))
    run.finish(result, tmp_path / "out")
    assert result.reason in ("killed", "crash")
    assert run.client.get_run(run.run_id).info.status in ("FAILED", "KILLED")
    assert not alive(pids["trial"]) and not alive(pids["launcher"])


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().split(") ")[1].split()[1])


@pytest.mark.parametrize("batching", ["grouped", "packed", "padded"])
def test_resume_gives_the_adapter_of_an_uninterrupted_run(tmp_path: Path,
                                                          tiny_model_dir: Path,
                                                          home: Path, batching: str) -> None:
    config = make_config(tmp_path, tiny_model_dir, max_steps=6, save_steps=3)
    config.samples.count = 0
    config.data.batching = batching
    config.data.cutoff_len = 256  # examples shorter than a row, so rows pack
    write_trial_config(config, tmp_path / "whole")
    assert launched(tmp_path / "whole").reason == "finished"
    write_trial_config(config, tmp_path / "broken")
    crashed = launched(tmp_path / "broken", env={"HARNESS_FAULT": "crash@5"})
    assert crashed.reason == "crash"
    resumed = launched(tmp_path / "broken", resume=True)
    assert resumed.reason == "finished"
    went_on = resumed.last(Resumed)
    assert went_on is not None and went_on.step == 3
    a = load_file(str(tmp_path / "whole" / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "broken" / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    start = load_file(str(tmp_path / "broken" / "checkpoint-3" / "adapter_model.safetensors"))
    assert not all(torch.equal(a[k], start[k]) for k in a)  # training did move the weights


def test_resume_names_a_damaged_last_checkpoint_and_goes_on_from_the_one_before(
        tmp_path: Path, tiny_model_dir: Path, home: Path) -> None:
    config = make_config(tmp_path, tiny_model_dir, max_steps=8, save_steps=2)
    config.samples.count = 0
    write_trial_config(config, tmp_path / "whole")
    assert launched(tmp_path / "whole").reason == "finished"
    write_trial_config(config, tmp_path / "broken")
    assert launched(tmp_path / "broken", env={"HARNESS_FAULT": "crash@7"}).reason == "crash"
    last = tmp_path / "broken" / "checkpoint-6" / "adapter_model.safetensors"
    last.write_bytes(last.read_bytes()[:100])  # cut short, as by a full disk or a bad copy

    resumed = launched(tmp_path / "broken", resume=True)
    assert resumed.reason == "finished", resumed.log_tail
    damaged, went_on = resumed.last(CheckpointDamaged), resumed.last(Resumed)
    assert damaged is not None and went_on is not None
    assert damaged.checkpoint.endswith("checkpoint-6") and damaged.message
    assert went_on.step == 4
    a = load_file(str(tmp_path / "whole" / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "broken" / "adapter" / "adapter_model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # as if it had never been interrupted
