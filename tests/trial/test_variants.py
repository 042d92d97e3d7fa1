"""The LoRA variants peers offer, as settings: rsLoRA, DoRA, LoRA+ and the A matrices' start."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import make_config

from harness.errors import ConfigError
from harness.trial.setup import build_model, build_optimizer


def test_the_variants_reach_peft(tmp_path: Path, tiny_model_dir: Path) -> None:
    config = make_config(tmp_path, tiny_model_dir)
    config.lora.rslora, config.lora.dora, config.lora.init = True, True, "orthogonal"
    model = build_model(config)
    peft_config = model.peft_config["default"]
    assert peft_config.use_rslora and peft_config.use_dora
    assert peft_config.init_lora_weights == "orthogonal"
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    assert layer.scaling["default"] == pytest.approx(config.lora.alpha / config.lora.r ** 0.5)
    assert any("lora_magnitude_vector" in n for n, _ in model.named_parameters())


def test_loraplus_trains_the_b_matrices_faster(tmp_path: Path, tiny_model_dir: Path) -> None:
    config = make_config(tmp_path, tiny_model_dir)
    config.lora.loraplus_ratio = 16.0
    model = build_model(config)
    optimizer, _, _ = build_optimizer(model, config, 20)
    ids = {id(p): n for n, p in model.named_parameters()}
    rates = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            rates[ids[id(p)]] = group["lr"]
    lr = config.training.learning_rate
    assert {r for n, r in rates.items() if "lora_A" in n} == {lr}
    assert {r for n, r in rates.items() if "lora_B" in n} == {16 * lr}


def test_plain_lora_is_one_group_at_the_learning_rate(tmp_path: Path,
                                                      tiny_model_dir: Path) -> None:
    config = make_config(tmp_path, tiny_model_dir)
    optimizer, _, _ = build_optimizer(build_model(config), config, 20)
    assert [g["lr"] for g in optimizer.param_groups] == [config.training.learning_rate]


def test_every_init_starts_from_the_base_models_outputs(tmp_path: Path,
                                                        tiny_model_dir: Path) -> None:
    import torch

    config = make_config(tmp_path, tiny_model_dir)
    ids = torch.tensor([[1, 5, 9, 13, 17]])
    base = build_model(config)
    with base.disable_adapter(), torch.no_grad():
        expected = base(input_ids=ids).logits
    for init in ("default", "gaussian", "orthogonal"):
        config.lora.init = init
        with torch.no_grad():
            got = build_model(config)(input_ids=ids).logits
        assert torch.allclose(got, expected, atol=1e-5), init


@pytest.mark.parametrize(("settings", "said"), [
    ({"loraplus_ratio": 0.5}, "loraplus_ratio"), ({"init": "orthogonal", "r": 3}, "even r")])
def test_impossible_variants_are_refused(settings: dict, said: str) -> None:
    from harness.config import LoraSettings

    with pytest.raises(ConfigError, match=said):
        LoraSettings(**settings)
