"""The embedded model, for real: a few 4-bit steps on the MedQuAD sample, through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_harness_train_on_the_embedded_model(tmp_path: Path, harness_home: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.models import prepare_embedded

    db = tmp_path / "mlflow.db"
    config = tmp_path / "train.yaml"
    config.write_text(f"""
model: smollm2-135m-instruct
data: {{path: {ROOT / 'datasets/samples/medquad'}, cutoff_len: 96, eval_fraction: 0.1}}
quantization: {{mode: 4bit}}
lora: {{r: 8, alpha: 16}}
training: {{max_steps: 3, micro_batch_size: 2, learning_rate: 3e-3, eval_steps: 0}}
samples: {{count: 2, max_new_tokens: 12}}
tracking: {{uri: "sqlite:///{db}", experiment: e2e}}
output_dir: {tmp_path / 'run'}
""")
    assert main(["train", str(config)]) == 0
    client = MlflowClient(f"sqlite:///{db}")
    (run,) = client.search_runs([client.get_experiment_by_name("e2e").experiment_id])
    assert run.info.status == "FINISHED"
    assert {"train/loss", "eval/perplexity", "eval/perplexity_ratio_to_base"} <= set(
        run.data.metrics)
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == 3
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "samples")}
    assert "samples/comparison.json" in artifacts

    base_dir = prepare_embedded("smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    ids = tokenizer("What is (are) High Blood Pressure ?", return_tensors="pt")
    with torch.no_grad():
        before = base(**ids).logits
    tuned = PeftModel.from_pretrained(base, str(tmp_path / "run" / "adapter"))
    with torch.no_grad():
        after = tuned(**ids).logits
    assert not torch.allclose(before, after)

    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    (model,) = run.outputs.model_outputs  # the adapter is the run's logged model
    pipe = mlflow.transformers.load_model(f"models:/{model.model_id}")
    assert isinstance(pipe.model, PeftModel)
    text = pipe("What is (are) High Blood Pressure ?", max_new_tokens=8, do_sample=False)
    assert text[0]["generated_text"].startswith("What is (are) High Blood Pressure ?")


@pytest.mark.slow
def test_the_demo_sweep_shortened_on_the_embedded_model(tmp_path: Path, harness_home: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """search_spaces/demo.yaml as shipped, with fewer and shorter trials."""
    import optuna
    import yaml
    from mlflow import MlflowClient

    from harness.study.storage import load_study, open_storage

    raw = yaml.safe_load((ROOT / "search_spaces/demo.yaml").read_text())
    raw["data"]["path"] = str(ROOT / raw["data"]["path"])
    raw["training"].update(max_steps=4, eval_steps=2)
    raw["samples"].update(count=1, max_new_tokens=8)
    raw["study"].update(trials=3, output_dir=str(tmp_path / "studies"))
    space = tmp_path / "demo.yaml"
    space.write_text(yaml.safe_dump(raw))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    journal = str(tmp_path / "optuna.journal")
    assert main(["sweep", str(space), "--storage", journal, "--tracking-uri", uri]) == 0

    study = load_study("demo", open_storage(journal))
    states = {t.state for t in study.trials}
    assert len(study.trials) == 3 and optuna.trial.TrialState.COMPLETE in states
    assert states <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    client = MlflowClient(uri, registry_uri=uri)
    champion = client.get_model_version_by_alias("medquad-demo", "champion")
    assert champion.tags["base_model"] == "smollm2-135m-instruct"
    assert main(["pull", "medquad-demo@champion", "--out", str(tmp_path / "pulled"),
                 "--tracking-uri", uri]) == 0
