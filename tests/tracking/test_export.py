"""`harness export RUN --merged DIR` on a real 4-bit trial of the tiny Llama: a plain transformers
directory whose greedy answers are those of the de-quantized base + adapter."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import Recording, launched, make_config

from harness.cli import main
from harness.launch.command import write_trial_config
from harness.tracking.answers import greedy
from harness.tracking.export import CHECK_PROMPTS
from harness.tracking.trial_run import TrialRun


def test_a_4bit_adapter_exports_merged_into_its_dequantized_base(
        tmp_path: Path, tiny_model_dir: Path, harness_home: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.models import load_model

    config = make_config(tmp_path, tiny_model_dir, mode="4bit", max_steps=3)
    config.samples.count = 0
    write_trial_config(config, tmp_path / "out")
    run = TrialRun(config, run_name="export")
    result = launched(tmp_path / "out", Recording(run.on_event))
    run.finish(result, tmp_path / "out")
    assert result.reason == "finished", result.log_tail

    merged = tmp_path / "merged"
    assert main(["export", run.run_id, "--merged", str(merged), "--dtype", "float32",
                 "--tracking-uri", config.tracking.uri]) == 0
    assert not (merged / "adapter_config.json").exists()  # a model, not an adapter
    exported = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
    assert not isinstance(exported, PeftModel)
    assert getattr(exported.config, "quantization_config", None) is None

    base = load_model(str(tiny_model_dir), config.quantization, on="cpu").dequantize()
    adapter = tmp_path / "out" / "adapter"
    reference = PeftModel.from_pretrained(base.to(torch.float32), str(adapter)).eval()
    tokenizer = AutoTokenizer.from_pretrained(merged)
    for prompt in CHECK_PROMPTS:
        assert greedy(exported, tokenizer, prompt) == greedy(reference, tokenizer, prompt)
    # the plain base answers differently: the adapter is in the exported weights
    plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    ids = tokenizer("What is a test?", return_tensors="pt")
    with torch.no_grad():
        assert not torch.allclose(exported(**ids).logits, plain(**ids).logits)


def test_export_refuses_a_directory_that_is_not_empty(tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "config.json").write_text("mine")
    assert main(["export", "some-model@champion", "--merged", str(used),
                 "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"]) == 2
    assert (used / "config.json").read_text() == "mine"


@pytest.mark.parametrize("ref", ["bad name@champion", "m/0"])
def test_export_names_a_bad_reference(tmp_path: Path, ref: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", ref, "--merged", str(tmp_path / "x"),
                 "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"]) == 2
    assert ref in capsys.readouterr().err
