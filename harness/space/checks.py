"""What a space file must hold beyond well-typed sections: keys that exist, conditions on
earlier parameters, enqueued values inside the space, train configs that build at the edges of
every range, and a search that the study's earlier trials can still follow."""

from __future__ import annotations

import dataclasses
import typing
from typing import TYPE_CHECKING, Any

from harness.config import TrainConfig, objective_problems
from harness.errors import ConfigError
from harness.names import name_problem
from harness.space.file import SpaceFile
from harness.space.params import ALPHA_PER_RANK, decode

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

FIXED_KEYS = {"training.num_processes": "cannot be searched: it decides how many GPUs each "
                                       "trial holds; set it under training"}


def validate(space: SpaceFile) -> list[str]:
    """Keys that exist, conditions on earlier parameters, enqueued values inside the space, and
    train configs that build at the edges of every range."""
    problems: list[str] = []
    for key, value in (("study.name", space.study_name),
                       ("registry.model_name", space.model_name)):
        problem = name_problem(value)
        if problem:
            problems.append(f"{key}: {value!r} {problem}")
    seen: list[str] = []
    for p in space.params:
        where = f"search.{'lora.alpha' if p.name == ALPHA_PER_RANK else p.name}"
        if p.name != ALPHA_PER_RANK and not _known_key(p.name):
            problems.append(f"{where}: not a train-config key (e.g. lora.r, "
                            "training.learning_rate, quantization.mode)")
        elif p.name in FIXED_KEYS:
            problems.append(f"{where}: {FIXED_KEYS[p.name]}")
        for key, value in p.when.items():
            earlier = next((q for q in space.params if q.name == key and q.name in seen), None)
            if earlier is None:
                problems.append(f"{where}.when: {key} is not a parameter searched before it")
            elif not earlier.contains(value):
                problems.append(f"{where}.when: {key} can never be {value!r}")
        seen.append(p.name)
    problems += _objective_problems(space)
    if space.study and len(space.study.objectives) > 1 and space.study.pruner != "none":
        problems.append("study.pruner: Optuna cannot prune multi-objective studies; "
                        "set pruner: none")
    problems += _enqueue_problems(space)
    if not problems:
        problems += _config_problems(space)
    return problems


def _objective_problems(space: SpaceFile) -> list[str]:
    """A task-metric objective names a metric the trials measure."""
    from harness.metrics.answers import metric_name

    metrics = (space.base.get("evaluation") or {}).get("metrics") or []
    names = [metric_name(str(m)) for m in metrics] if isinstance(metrics, list) else []
    return objective_problems(space.study.objectives[0], names, key="study.objective")


def _known_key(dotted: str) -> bool:
    cls: Any = TrainConfig
    for key in dotted.split("."):
        if not dataclasses.is_dataclass(cls):
            return False
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if key not in fields:
            return False
        cls = typing.get_type_hints(cls)[key]
    return not dataclasses.is_dataclass(cls)


def _enqueue_problems(space: SpaceFile) -> list[str]:
    problems: list[str] = []
    by_name = {p.name: p for p in space.params}
    for i, given in enumerate(space.enqueue):
        stored = space.as_params(given)
        for name, value in stored.items():
            param = by_name.get(name)
            shown = "lora.alpha" if name == ALPHA_PER_RANK else name
            if param is None:
                problems.append(f"enqueue[{i}].{shown}: not a searched parameter "
                                f"(searched: {', '.join(by_name)})")
            elif not param.contains(decode(value)):
                problems.append(f"enqueue[{i}].{shown}: {given.get(shown)!r} is outside its "
                                "search range or choices")
    return problems


def _config_problems(space: SpaceFile) -> list[str]:
    """Build the train config at the low and high ends of every parameter together, and with
    each choice of every categorical parameter (a bad value anywhere in a list is found)."""
    problems: list[str] = []
    for values in space.edge_values():
        try:
            space.train_config(values, output_dir="unused")
        except ConfigError as err:
            problems += [p for p in err.problems if p not in problems]
    return problems


def space_changes(space: SpaceFile, trials: list[FrozenTrial]) -> list[str]:
    """How the file's search differs from what the study's ``trials`` drew from, in ways Optuna
    refuses within one study (a parameter's choices, kind or log scale); none if it does not."""
    import optuna

    current = {p.name: p.distribution() for p in space.params}
    problems: dict[str, str] = {}
    for trial in trials:
        for name, old in trial.distributions.items():
            new = current.get(name)
            if new is None or name in problems:
                continue
            try:
                optuna.distributions.check_distribution_compatibility(old, new)
            except ValueError:
                shown = "lora.alpha (per_rank)" if name == ALPHA_PER_RANK else name
                problems[name] = (f"search.{shown}: the study's trials drew from {_shown(old)}; "
                                  f"the file now gives {_shown(new)}")
    return list(problems.values())


def _shown(distribution: Any) -> str:
    choices = getattr(distribution, "choices", None)
    if choices is not None:
        return "[" + ", ".join(str(decode(c)) for c in choices) + "]"
    scale = ", log" if distribution.log else ""
    return f"a {type(distribution).__name__.removesuffix('Distribution').lower()} range " \
        f"{distribution.low}..{distribution.high}{scale}"
