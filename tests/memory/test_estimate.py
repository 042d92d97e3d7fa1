"""The memory estimate's counting, checked against the real model and adapter it sizes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from helpers import make_config

from harness.config import LoraSettings, QuantConfig, TrainingSettings
from harness.memory.estimate import (
    CUDA_CONTEXT_MB,
    CUDA_SLACK,
    adapter_parameters,
    estimate,
    weight_bytes,
)
from harness.memory.known import KNOWN
from harness.memory.shape import model_shape, shape_from_config


def real_model(model_dir: Path) -> torch.nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM

    return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))


def test_the_shape_counts_the_weights_of_the_model_its_config_builds(
        tiny_model_dir: Path) -> None:
    shape = model_shape(str(tiny_model_dir))
    assert shape.source == str(tiny_model_dir / "config.json")
    assert shape.parameters() == sum(p.numel() for p in real_model(tiny_model_dir).parameters())


@pytest.mark.parametrize("lora", [
    LoraSettings(r=4), LoraSettings(r=8, dora=True),
    LoraSettings(r=2, target_modules=["q_proj", "v_proj"]),
])
def test_the_adapter_count_is_peft_s_trainable_parameters(
        tmp_path: Path, tiny_model_dir: Path, lora: LoraSettings) -> None:
    from harness.trial.setup import add_lora

    config = replace(make_config(tmp_path, tiny_model_dir), lora=lora)
    model = add_lora(real_model(tiny_model_dir), config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert adapter_parameters(config, model_shape(str(tiny_model_dir))) == trainable


def test_quantization_shrinks_the_blocks_and_keeps_embedding_and_head(
        tmp_path: Path, tiny_model_dir: Path) -> None:
    shape = shape_from_config(KNOWN["Qwen/Qwen2.5-7B-Instruct"], source="known")
    config = make_config(tmp_path, tiny_model_dir)
    sizes = {mode: weight_bytes(replace(config, quantization=QuantConfig(mode=mode)), shape,
                                "cuda") / 2**30 for mode in ("none", "8bit", "4bit")}
    # 7.6 B parameters: 14.2 GiB in bf16; quantized, the 1.1 B of embedding and head stay
    # float32 (4.1 GiB) beside 8-bit or 4-bit blocks
    assert sizes["none"] == pytest.approx(14.2, abs=0.1)
    assert sizes["8bit"] == pytest.approx(10.2, abs=0.1)
    assert sizes["4bit"] == pytest.approx(7.2, abs=0.1)


def test_checkpointing_smaller_batches_and_parts_need_less(tmp_path: Path,
                                                           tiny_model_dir: Path) -> None:
    shape = shape_from_config(KNOWN["smollm2-135m-instruct"], source="known")
    base = make_config(tmp_path, tiny_model_dir)
    base = replace(base, data=replace(base.data, cutoff_len=512),
                   training=TrainingSettings(micro_batch_size=8, max_steps=4))

    def total(**training: object) -> float:
        config = replace(base, training=replace(base.training, **training))
        return estimate(config, shape, device="cuda").total_mb

    full = total()
    assert total(gradient_checkpointing=True) < 0.6 * full
    assert total(micro_batch_size=4) < 0.7 * full
    assert total(micro_batch_parts=2) == pytest.approx(total(micro_batch_size=4))


def test_a_gpu_estimate_holds_the_cuda_context_and_slack(tmp_path: Path,
                                                          tiny_model_dir: Path) -> None:
    shape = model_shape(str(tiny_model_dir))
    found = estimate(make_config(tmp_path, tiny_model_dir), shape, device="cuda")
    assert found.runtime_mb == CUDA_CONTEXT_MB
    assert found.slack_mb == pytest.approx(CUDA_SLACK * found.tensors_mb)
    assert found.total_mb == pytest.approx(found.runtime_mb + found.slack_mb + found.tensors_mb)


def test_every_known_shape_is_read_and_a_model_without_config_is_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.errors import HarnessError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the unknown name must not wait on a network

    for name, fields in KNOWN.items():
        assert shape_from_config(fields, source=name).parameters() > 1e8
    assert model_shape("Qwen/Qwen2.5-7B-Instruct").layers == 28  # no download here
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(HarnessError, match=r"config\.json: not the config of a decoder"):
        model_shape(str(tmp_path))
    with pytest.raises(HarnessError, match="cannot size 'nobody/no-such-model'"):
        model_shape("nobody/no-such-model")
