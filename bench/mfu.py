"""Model FLOPs utilisation of a training run: useful model FLOPs per second against the
device's peak (bench/throughput.py --mfu)."""

from __future__ import annotations

import os
from pathlib import Path

PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0,
                    "A10": 125.0}
"""Dense bf16 peaks from the vendors' data sheets, by a part of the device's name; PEAK_TFLOPS
in the environment overrides (and gives a CPU one)."""


def peak_flops() -> float | None:
    import torch

    if os.environ.get("PEAK_TFLOPS"):
        return float(os.environ["PEAK_TFLOPS"]) * 1e12
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0)
    return next((t * 1e12 for part, t in PEAK_BF16_TFLOPS.items() if part in name), None)


def flops_per_token(model: str) -> float:
    """Model FLOPs per trained token: 6 x parameters (forward 2N, backward 4N), the usual MFU
    accounting; recomputation by gradient checkpointing is not counted as useful work."""
    from random_llama import parameters

    from harness.models import resolve_model

    return 6.0 * parameters(Path(resolve_model(model)))


def utilisation(tokens_per_second: float, model: str) -> str:
    """The run's MFU as a percentage, or n/a without a known peak."""
    peak = peak_flops()
    if peak is None:
        return "n/a"
    return f"{tokens_per_second * flops_per_token(model) / peak:.1%}"
