"""Search-space files: what a sweep fixes, what it searches, and how the study runs.

A space file is a `harness train` file (model, data, quantization, lora, training, samples) whose
values are the fixed settings, plus:

- ``study``: name, sampler, pruner, objective, trial count and time limits (`StudySettings`);
- ``registry``: the registered model the best adapter is promoted to (`RegistrySettings`);
- ``search``: dotted train-config keys mapped to distributions (`Param`), sampled in file order;
  a parameter with ``when`` is sampled only when earlier parameters have the given values;
- ``enqueue``: known-good parameter sets tried first (warm start).

Every problem in a file is reported at once, each with its key path.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import TrainConfig, from_mapping
from harness.errors import ConfigError
from harness.names import name_problem
from harness.yamlfile import short

SAMPLERS = ("tpe", "random", "qmc", "cmaes")
PRUNERS = ("median", "successive_halving", "hyperband", "none")
OBJECTIVES = ("eval_loss", "perplexity")
SECOND_OBJECTIVES = ("peak_memory", "train_time")
SPACE_KEYS = ("study", "registry", "search", "enqueue")
ALPHA_PER_RANK = "lora.alpha_per_rank"


@dataclass
class StudySettings:
    """How the Optuna study runs."""

    name: str | None = None
    """Study name, also the MLflow experiment; None uses the space file's name."""
    sampler: str = "tpe"
    """tpe, random, qmc or cmaes."""
    seed: int | None = 42
    """Sampler seed: the same seed proposes the same trials."""
    pruner: str = "median"
    """median (a trial's latest eval against the finished trials' median at that step),
    successive_halving, hyperband or none (single objective only)."""
    startup_trials: int = 1
    """Median pruner: trials that must finish before any is pruned (the warm-up share keeps a
    single finished trial from cutting slow starters)."""
    warmup_steps: int = 0
    """Any pruner: optimizer steps a trial trains before it can be pruned."""
    warmup_fraction: float = 0.25
    """Any pruner: the share of its own steps a trial trains before it can be pruned (early
    evaluations favour high learning rates that do not finish best)."""
    min_resource: int = 1
    """Successive halving / hyperband: the smallest step count a trial is judged at."""
    reduction_factor: int = 3
    """Successive halving / hyperband: how aggressively rungs are cut."""
    objective: list[str] | str = "eval_loss"
    """eval_loss or perplexity (minimised); or a list: that, then peak_memory or train_time
    (multi-objective; the Pareto front is reported, pruning is off)."""
    trials: int = 10
    """Trials to run in total; a resumed study runs only what is missing."""
    timeout: float | None = None
    """Stop starting new trials after this many seconds."""
    trial_timeout: float | None = None
    """A trial running longer than this many seconds is stopped and counted as failed."""
    output_dir: str = "mlruns/studies"
    """Each trial's checkpoints and adapter go to OUTPUT_DIR/STUDY/trial-NNNN."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        _one_of(problems, "sampler", self.sampler, SAMPLERS)
        _one_of(problems, "pruner", self.pruner, PRUNERS)
        objectives = self.objectives
        if not 1 <= len(objectives) <= 2:
            problems.append("objective: give one objective or a list of two")
        else:
            _one_of(problems, "objective", objectives[0], OBJECTIVES)
            if len(objectives) == 2:
                _one_of(problems, "objective[1]", objectives[1], SECOND_OBJECTIVES)
        if self.trials < 1:
            problems.append("trials: must be at least 1")
        for key in ("startup_trials", "warmup_steps"):
            if getattr(self, key) < 0:
                problems.append(f"{key}: must be 0 or more")
        if not 0 <= self.warmup_fraction < 1:
            problems.append("warmup_fraction: must be at least 0 and below 1")
        if self.min_resource < 1 or self.reduction_factor < 2:
            problems.append("min_resource must be >= 1 and reduction_factor >= 2")
        for key in ("timeout", "trial_timeout"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                problems.append(f"{key}: must be positive seconds (or leave it out)")
        if problems:
            raise ConfigError(problems)

    def may_prune(self, step: int, total_steps: int) -> bool:
        """Whether a trial of ``total_steps`` is past its warm-up at ``step``."""
        return step >= max(self.warmup_steps, self.warmup_fraction * total_steps)

    @property
    def objectives(self) -> list[str]:
        return [self.objective] if isinstance(self.objective, str) else list(self.objective)


@dataclass
class RegistrySettings:
    """Where the best adapter is promoted."""

    model_name: str | None = None
    """Registered model name; None uses `harness-STUDY`."""
    margin: float = 0.0
    """Relative eval-loss improvement a new version needs to take `champion` (0.01 = 1 %)."""
    promote: bool = True
    """Promote at the end of every sweep (`harness promote` does it on demand)."""

    def __post_init__(self) -> None:
        if not 0 <= self.margin < 1:
            raise ConfigError([f"margin: {self.margin} must be in [0, 1)"])


@dataclass
class Param:
    """One searched value: categorical choices, or a numeric range."""

    name: str
    """The dotted train-config key it sets (or lora.alpha_per_rank)."""
    choices: list[Any] = field(default_factory=list)
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    integer: bool = False
    when: dict[str, Any] = field(default_factory=dict)
    """Sampled only when these earlier parameters have these values."""

    def suggest(self, trial: Any) -> Any:
        if self.choices:
            picked = trial.suggest_categorical(self.name, [_encode(c) for c in self.choices])
            return _decode(picked)
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high),
                                     step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def contains(self, value: Any) -> bool:
        if self.choices:
            return _encode(value) in [_encode(c) for c in self.choices]
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok and self.low <= value <= self.high and (not self.integer or value == int(value))

    def applies(self, values: dict[str, Any]) -> bool:
        return all(values.get(k) == v for k, v in self.when.items())

    def distribution(self) -> Any:
        """The Optuna distribution `suggest` samples from (the study stores it per trial)."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.choices:
            return CategoricalDistribution([_encode(c) for c in self.choices])
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log,
                                   step=int(self.step or 1))
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def extremes(self) -> list[Any]:
        """Values that together exercise the edges of this parameter."""
        if self.choices:
            return list(self.choices)
        cast = int if self.integer else float
        return [cast(self.low), cast(self.high)]


def _encode(choice: Any) -> Any:
    """Optuna stores None, bool, int, float and str choices; a list is stored as JSON text."""
    return json.dumps(choice) if isinstance(choice, list | dict) else choice


def _decode(stored: Any) -> Any:
    if isinstance(stored, str) and stored[:1] in "[{":
        return json.loads(stored)
    return stored


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
    text: str
    """The file as written, logged with the study."""

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

    def suggest(self, trial: Any) -> dict[str, Any]:
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
        return {k: _encode(v) for k, v in out.items()}


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


def load_space(path: str | Path) -> SpaceFile:
    """Read and validate a space file; raises ConfigError listing every problem."""
    from harness.yamlfile import read_text_file

    return parse_space(read_text_file(path, "search-space file"), str(path))


def parse_space(text: str, path: str) -> SpaceFile:
    """A space file's text (as a study keeps it for its workers) read and validated."""
    from harness.yamlfile import load_yaml

    raw = load_yaml(text, path)
    if not isinstance(raw, dict):
        raise ConfigError(["(top level): expected a mapping of sections"], source=str(path))
    problems: list[str] = []
    # A key given empty (`study:`) means its defaults; given as anything but a mapping
    # (`study: []`) it is a mistake, not the defaults.
    study = _section(StudySettings, _given(raw, "study", {}), "study", problems)
    registry = _section(RegistrySettings, _given(raw, "registry", {}), "registry", problems)
    base = {k: v for k, v in raw.items() if k not in SPACE_KEYS}
    params = parse_params(raw.get("search"), problems)
    enqueue = _given(raw, "enqueue", [])
    if not isinstance(enqueue, list) or not all(isinstance(e, dict) for e in enqueue):
        problems.append("enqueue: expected a list of mappings of parameter values")
        enqueue = []
    if problems:
        raise ConfigError(problems, source=str(path))
    space = SpaceFile(str(path), study, registry, base, params, enqueue, text)
    problems = validate(space)
    if problems:
        raise ConfigError(problems, source=str(path))
    return space


def _given(raw: dict[str, Any], key: str, empty: Any) -> Any:
    value = raw.get(key)
    return empty if value is None else value


def _section(cls: type, data: Any, key: str, problems: list[str]) -> Any:
    try:
        return from_mapping(cls, data, key_path=key)
    except ConfigError as err:
        problems.extend(err.problems)
        return None


def parse_params(search: Any, problems: list[str]) -> list[Param]:
    if search is None:
        return []
    if not isinstance(search, dict):
        problems.append("search: expected a mapping of dotted keys to distributions")
        return []
    params: list[Param] = []
    for name, spec in search.items():
        param = parse_param(str(name), spec, f"search.{name}", problems)
        if param is not None:
            params.append(param)
    return params


def parse_param(name: str, spec: Any, where: str, problems: list[str]) -> Param | None:
    """A list is categorical; a mapping has `choices`, `low`/`high` (+ `log`, `step`,
    `type: int|float`), or for lora.alpha `per_rank` (choices or a range); plus `when`."""
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, dict):
        problems.append(f"{where}: expected a list of choices or a mapping, got {short(spec)}")
        return None
    spec = dict(spec)
    when = spec.pop("when", {}) or {}
    if not isinstance(when, dict):
        problems.append(f"{where}.when: expected a mapping of earlier parameters to values")
        when = {}
    if name == "lora.alpha" and "per_rank" in spec:
        name, inner = ALPHA_PER_RANK, spec.pop("per_rank")
        spec = {"choices": inner} if isinstance(inner, list) else dict(inner or {})
    known = {"choices", "low", "high", "log", "step", "type"}
    for key in sorted(set(spec) - known):
        problems.append(f"{where}.{key}: unknown key (known: {', '.join(sorted(known))}, when)")
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            problems.append(f"{where}.choices: expected a non-empty list")
            return None
        return Param(name, choices=choices, when=when)
    return _range_param(name, spec, where, when, problems)


def _range_param(name: str, spec: dict[str, Any], where: str, when: dict[str, Any],
                 problems: list[str]) -> Param | None:
    low, high = _number(spec.get("low")), _number(spec.get("high"))
    if low is None or high is None:
        problems.append(f"{where}: needs `choices`, or numeric `low` and `high`")
        return None
    kind = spec.get("type") or ("int" if _is_int(spec["low"]) and _is_int(spec["high"])
                                and not spec.get("log") else "float")
    if kind not in ("int", "float"):
        problems.append(f"{where}.type: {kind!r} is not int or float")
    step = _number(spec.get("step"))
    log = bool(spec.get("log", False))
    if not low < high:
        problems.append(f"{where}: low ({low}) must be below high ({high})")
    if log and low <= 0:
        problems.append(f"{where}: a log range needs low > 0")
    if log and step is not None:
        problems.append(f"{where}: `log` and `step` cannot be combined")
    return Param(name, low=low, high=high, log=log, step=step, integer=kind == "int", when=when)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value
    try:
        return float(value)  # YAML 1.1 reads 1e-4 as a string
    except (TypeError, ValueError):
        return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
    if space.study and len(space.study.objectives) > 1 and space.study.pruner != "none":
        problems.append("study.pruner: Optuna cannot prune multi-objective studies; "
                        "set pruner: none")
    problems += _enqueue_problems(space)
    if not problems:
        problems += _config_problems(space)
    return problems


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
            elif not param.contains(_decode(value)):
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


def space_changes(space: SpaceFile, trials: list[Any]) -> list[str]:
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
        return "[" + ", ".join(str(_decode(c)) for c in choices) + "]"
    scale = ", log" if distribution.log else ""
    return f"a {type(distribution).__name__.removesuffix('Distribution').lower()} range " \
        f"{distribution.low}..{distribution.high}{scale}"


def _one_of(out: list[str], key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        out.append(f"{key}: {value!r} is not one of {', '.join(allowed)}")

