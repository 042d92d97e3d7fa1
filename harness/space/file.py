"""A search-space file: what a sweep fixes, what it searches, and how the study runs.

A space file is a `harness train` file (model, data, quantization, lora, training, samples) whose
values are the fixed settings, plus:

- ``study``: name, sampler, pruner, objective, trial count and time limits (`StudySettings`);
- ``registry``: the registered model the best adapter is promoted to (`RegistrySettings`);
- ``search``: dotted train-config keys mapped to distributions (`Param`), sampled in file order;
  a parameter with ``when`` is sampled only when earlier parameters have the given values;
- ``enqueue``: known-good parameter sets tried first (warm start).

Read and checked by `harness.space.load`; every problem in a file is reported at once, each
with its key path.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import RegistrySettings, StudySettings, TrainConfig, from_mapping
from harness.space.params import ALPHA_PER_RANK, Param, encode

if TYPE_CHECKING:
    import optuna

SPACE_KEYS = ("study", "registry", "search", "enqueue")


@dataclass
class SpaceFile:
    """A parsed, validated search-space file."""

    path: str
    study: StudySettings
    registry: RegistrySettings
    base: dict[str, Any]
    """The fixed train-config mapping every trial starts from."""
    params: list[Param]
    enqueue: list[dict[str, Any]]
    """Parameter sets tried first, in order (their `name`s apart, in ``baselines``)."""
    text: str
    """The file as written, logged with the study."""
    baselines: list[str] = field(default_factory=list)
    """Each enqueued set's name (`name:` in the file, else `enqueued #N`): the sweep's summary
    compares the best trial with them."""

    @property
    def study_name(self) -> str:
        return self.study.name or Path(self.path).stem

    @property
    def model_name(self) -> str:
        return self.registry.model_name or f"harness-{self.study_name}"

    @property
    def processes_per_trial(self) -> int:
        """training.num_processes: the GPUs (or CPU processes) each trial holds."""
        return int((self.base.get("training") or {}).get("num_processes", 1))

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Sample this trial's values in file order, skipping parameters whose `when` fails."""
        values: dict[str, Any] = {}
        for param in self.params:
            if param.applies(values):
                values[param.name] = param.suggest(trial)
        return values

    def train_config(self, values: dict[str, Any], *, output_dir: str,
                     tracking_uri: str | None = None) -> TrainConfig:
        raw = with_values(self.base, values)
        raw["output_dir"] = output_dir
        tracking = dict(raw.get("tracking") or {})
        tracking["uri"] = tracking_uri or tracking.get("uri")
        tracking["experiment"] = self.study_name
        raw["tracking"] = tracking
        # the trial keeps its best epoch end by what the study optimizes
        raw["evaluation"] = {**(raw.get("evaluation") or {}),
                             "objective": self.study.objectives[0]}
        return from_mapping(TrainConfig, raw, source=self.path)

    def edge_values(self) -> list[dict[str, Any]]:
        """Parameter values that together reach every edge of the space: all lows, all highs,
        and each choice of each categorical parameter with the others at their lows."""
        lows = {p.name: p.extremes()[0] for p in self.params}
        picks = [lows, {p.name: p.extremes()[-1] for p in self.params}]
        for param in self.params:
            for choice in param.choices[1:-1]:
                picks.append({**lows, param.name: choice})
        return picks

    def as_params(self, given: dict[str, Any]) -> dict[str, Any]:
        """An enqueued parameter set in Optuna's terms: lora.alpha becomes alpha per rank when
        the file searches alpha as a multiple of the rank; lists become their stored text."""
        out = dict(given)
        names = {p.name for p in self.params}
        if "lora.alpha" in out and ALPHA_PER_RANK in names and "lora.r" in out:
            out[ALPHA_PER_RANK] = out.pop("lora.alpha") / out["lora.r"]
            if float(out[ALPHA_PER_RANK]).is_integer():
                out[ALPHA_PER_RANK] = int(out[ALPHA_PER_RANK])
        return {k: encode(v) for k, v in out.items()}


def with_values(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with each dotted key in ``values`` set (alpha per rank applied)."""
    raw = copy.deepcopy(base)
    for name, value in values.items():
        if name == ALPHA_PER_RANK:
            rank = values.get("lora.r", raw.get("lora", {}).get("r", 8))
            _set(raw, "lora.alpha", float(value * rank))
        else:
            _set(raw, name, value)
    return raw


def _set(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    here = raw
    for key in parents:
        here = here.setdefault(key, {})
    here[leaf] = value
