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
    pipe = mlflow.transformers.load_model(f"runs:/{run.info.run_id}/adapter")
    assert isinstance(pipe.model, PeftModel)
    text = pipe("What is (are) High Blood Pressure ?", max_new_tokens=8, do_sample=False)
    assert text[0]["generated_text"].startswith("What is (are) High Blood Pressure ?")
