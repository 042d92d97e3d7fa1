"""Values as the harness writes them into MLflow: a config flattened into params (the machine's
own paths as tags), each shown as it would be written, and split fingerprints as MLflow keeps
them. No MLflow import: these are pure."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from harness.config import TrainConfig

MACHINE_LOCAL = {"output_dir": "harness.output_dir"}
"""Config fields that name a place on the machine that ran the trial: tags, not params, so that
comparing runs compares what was trained. (The tracking URI is left out altogether: the run is
in that store, and a server's URI may carry credentials.)"""
LEFT_OUT = {"tracking.uri"}

MODEL_PARAMS = ("model", "lora.", "quantization.", "training.learning_rate", "training.epochs",
                "data.path", "data.cutoff_len", "data.system_prompt")
"""The params a logged adapter model carries: what it is and how it was trained."""


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested mappings as dotted keys, each value `shown`."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): shown(value)}


def shown(value: Any) -> str:
    """A param's value as it would be written in the space file: lists as JSON, and a string
    that whitespace or control characters would hide (``"\n\n\n"`` shows blank) quoted."""
    if isinstance(value, list):
        return json.dumps(value)
    if isinstance(value, str) and (value != value.strip() or not value.isprintable()):
        return repr(value)
    return str(value)


FOUR_BIT_ONLY = ("quantization.quant_type", "quantization.double_quant",
                 "quantization.compute_dtype")
"""Settings that mean something only for a 4-bit base: an 8-bit or full-precision run does
not carry them (its runs would otherwise seem to differ in a setting that did nothing)."""


def run_params(config: TrainConfig) -> tuple[dict[str, str], dict[str, str]]:
    """The trial's params, and its machine-local settings as tags."""
    flat = flatten(asdict(config))
    tags = {MACHINE_LOCAL[k]: v for k, v in flat.items() if k in MACHINE_LOCAL}
    unused = FOUR_BIT_ONLY if config.quantization.mode != "4bit" else ()
    params = {k: v for k, v in flat.items()
              if k not in MACHINE_LOCAL and k not in LEFT_OUT and k not in unused}
    return params, tags


def model_params(config: TrainConfig) -> dict[str, str]:
    """The params of a trial's logged adapter model."""
    values, _ = run_params(config)
    return {k: v for k, v in values.items() if k.startswith(MODEL_PARAMS)}


def short_fingerprint(fingerprint: str) -> str:
    """A split's fingerprint as MLflow shows it everywhere: its first 32 hex digits (MLflow
    keeps at most 36 characters of a dataset's digest)."""
    return fingerprint[:32]
