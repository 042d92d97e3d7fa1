"""Typed configuration: dataclasses with a docstring per field, checked when built.

`train` is one fine-tune (a `harness train` file, or one trial of a sweep), `data` its data;
`study` is how a sweep's study runs and promotes; `coerce` turns parsed YAML into any of them,
every problem at once.
"""

from __future__ import annotations

from harness.config.coerce import choice_problems, choices, from_mapping, raise_problems
from harness.config.data import DEFAULT_REFUSAL_PHRASES, DataConfig, Decontamination
from harness.config.evaluation import (
    LOSS_OBJECTIVES,
    EvaluationSettings,
    SampleSettings,
    maximised,
    objective_problems,
)
from harness.config.study import RegistrySettings, StudySettings
from harness.config.train import (
    DEFAULT_MODEL,
    ComputeDtype,
    LoraSettings,
    QuantConfig,
    RetentionSettings,
    TrackingSettings,
    TrainConfig,
    TrainingSettings,
    load_train_config,
)

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_REFUSAL_PHRASES",
    "LOSS_OBJECTIVES",
    "ComputeDtype",
    "DataConfig",
    "Decontamination",
    "EvaluationSettings",
    "LoraSettings",
    "QuantConfig",
    "RegistrySettings",
    "RetentionSettings",
    "SampleSettings",
    "StudySettings",
    "TrackingSettings",
    "TrainConfig",
    "TrainingSettings",
    "choice_problems",
    "choices",
    "from_mapping",
    "load_train_config",
    "maximised",
    "objective_problems",
    "raise_problems",
]
