"""A config as MLflow params: settings that did nothing are not recorded as if they had."""

from __future__ import annotations

from harness.config import TrainConfig, from_mapping
from harness.tracking.values import run_params


def config(mode: str) -> TrainConfig:
    return from_mapping(TrainConfig, {"data": {"path": "d.json"},
                                      "quantization": {"mode": mode}})


def test_only_a_4bit_run_carries_the_4bit_settings() -> None:
    four, _ = run_params(config("4bit"))
    assert four["quantization.quant_type"] == "nf4" and "quantization.double_quant" in four
    for mode in ("8bit", "none"):
        params, _ = run_params(config(mode))
        assert params["quantization.mode"] == mode
        assert not {"quantization.quant_type", "quantization.double_quant",
                    "quantization.compute_dtype"} & set(params)
