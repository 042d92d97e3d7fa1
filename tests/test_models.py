from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from harness.cli import main
from harness.config import QuantConfig
from harness.errors import ConfigError, HarnessError
from harness.models import list_models, load_model, prepare_embedded, resolve_model


@pytest.mark.parametrize("mode, layer", [("none", "Linear"), ("8bit", "Linear8bitLt"),
                                         ("4bit", "Linear4bit")])
def test_each_quantization_takes_a_real_lora_step(tiny_model_dir: Path, mode: str,
                                                  layer: str) -> None:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    model = load_model(str(tiny_model_dir), QuantConfig(mode=mode), on="cpu")
    assert type(model.model.layers[0].self_attn.q_proj).__name__ == layer
    if mode != "none":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    ids = torch.randint(5, 300, (2, 16), generator=torch.Generator().manual_seed(0))
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    changed = [n for n, p in model.named_parameters() if p.requires_grad
               and not torch.equal(p.detach(), trainable[n])]
    assert changed


def test_bad_quantization_settings_are_all_reported() -> None:
    with pytest.raises(ConfigError) as info:
        QuantConfig(mode="3bit", quant_type="int4", compute_dtype="fp8")
    assert len(info.value.problems) == 3


def test_a_directory_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"no config\.json"):
        resolve_model(str(tmp_path))


def test_embedded_model_is_converted_once_and_listed(harness_home: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as empty:
        empty.setenv("HARNESS_HOME", str(tmp_path))
        assert main(["models"]) == 0
        assert "not converted yet" in capsys.readouterr().out
    assert main(["models", "prepare", "smollm2-135m-instruct"]) == 0
    path = prepare_embedded("smollm2-135m-instruct")
    assert (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file()
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert prepare_embedded("smollm2-135m-instruct") == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp
    assert [e.where for e in list_models() if e.name == "smollm2-135m-instruct"] == [str(path)]
    assert main(["models", "prepare", "gpt-17"]) == 2


def test_a_full_harness_home_is_a_clear_error_and_leaves_no_partial_model(
        small_disk: Any, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    disk = small_disk("16m")  # the tokenizer fits, the converted weights (540 MB) do not
    monkeypatch.setenv("HARNESS_HOME", str(disk.path))
    assert main(["models", "prepare", "smollm2-135m-instruct"]) == 2
    err = capsys.readouterr().err
    assert f"disk full at {disk.path / 'models' / 'smollm2-135m-instruct'}" in err, err
    assert "HARNESS_HOME" in err and "Traceback" not in err
    models = disk.path / "models" / "smollm2-135m-instruct"
    assert not (models / "hf").exists()
    assert not [p for p in models.iterdir() if p.name.startswith(".")]  # no half-written copy


def test_the_loading_snippet_names_the_hub_original_of_an_embedded_base() -> None:
    from harness.models import DEFAULT_MODEL, peft_snippet

    embedded = peft_snippet(DEFAULT_MODEL, "adapters/x")
    assert 'from_pretrained("HuggingFaceTB/SmolLM2-135M-Instruct")' in embedded
    assert "`harness models`" in embedded  # where the exact base it was trained on lives
    assert 'from_pretrained("/data/llama")' in peft_snippet("/data/llama", "adapters/x")
    assert 'PeftModel.from_pretrained(base, "adapters/x")' in embedded
