"""Trials on a CUDA GPU: unquantized, 8-bit and 4-bit (CUDA bitsandbytes), in every batch
layout. Skipped without CUDA; `bench/gpu.sh` runs them where a GPU is lent."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import launched, make_config

from harness.launch.command import write_trial_config
from harness.protocol import Eval, Finished, Started

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("mode", ["none", "8bit", "4bit"])
@pytest.mark.parametrize("batching", ["grouped", "packed"])
def test_a_trial_trains_on_the_gpu(tmp_path: Path, tiny_model_dir: Path, harness_home: Path,
                                   mode: str, batching: str) -> None:
    config = make_config(tmp_path, tiny_model_dir, mode=mode, max_steps=4, eval_steps=2)
    config.data.batching = batching
    config.data.cutoff_len = 256
    write_trial_config(config, tmp_path / "out")
    result = launched(tmp_path / "out")
    assert result.reason == "finished", result.log_tail
    started, finished = result.last(Started), result.last(Finished)
    assert started is not None and started.device.startswith("cuda")
    losses = [e.loss for e in result.events if isinstance(e, Eval)]
    assert len(losses) == 2 and all(loss == loss for loss in losses)  # finite, reported
    assert (tmp_path / "out" / "adapter" / "adapter_model.safetensors").is_file()
    assert finished is not None and finished.peak_memory_mb > 0
