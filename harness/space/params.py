"""The `search:` section of a space file: each dotted train-config key with its distribution
(a list of choices, or a range), optionally only `when` earlier parameters have given values."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.config.coerce import NOT_FINITE, non_finite
from harness.yamlfile import short

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

ALPHA_PER_RANK = "lora.alpha_per_rank"
"""`lora.alpha` searched as a multiple of the rank (`alpha: {per_rank: [1, 2]}`)."""


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

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.choices:
            picked = trial.suggest_categorical(self.name, [encode(c) for c in self.choices])
            return decode(picked)
        low, high = self.bounds()
        if self.integer:
            return trial.suggest_int(self.name, int(low), int(high), step=int(self.step or 1),
                                     log=self.log)
        return trial.suggest_float(self.name, low, high, step=self.step, log=self.log)

    def contains(self, value: Any) -> bool:
        if self.choices:
            return encode(value) in [encode(c) for c in self.choices]
        low, high = self.bounds()
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok and low <= value <= high and (not self.integer or value == int(value))

    def applies(self, values: dict[str, Any]) -> bool:
        return all(values.get(k) == v for k, v in self.when.items())

    def distribution(self) -> BaseDistribution:
        """The Optuna distribution `suggest` samples from (the study stores it per trial)."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.choices:
            return CategoricalDistribution([encode(c) for c in self.choices])
        low, high = self.bounds()
        if self.integer:
            return IntDistribution(int(low), int(high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(low, high, log=self.log, step=self.step)

    def extremes(self) -> list[Any]:
        """Values that together exercise the edges of this parameter."""
        if self.choices:
            return list(self.choices)
        cast = int if self.integer else float
        return [cast(bound) for bound in self.bounds()]

    def bounds(self) -> tuple[float, float]:
        """A range's low and high (a parameter of choices has none)."""
        if self.low is None or self.high is None:
            raise ValueError(f"{self.name} is a parameter of choices, not a range")
        return self.low, self.high


def encode(choice: Any) -> Any:
    """Optuna stores None, bool, int, float and str choices; a list is stored as JSON text."""
    return json.dumps(choice) if isinstance(choice, list | dict) else choice


def decode(stored: Any) -> Any:
    if isinstance(stored, str) and stored[:1] in "[{":
        return json.loads(stored)
    return stored


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
        for i, choice in enumerate(choices):
            if non_finite(choice):
                problems.append(f"{where}.choices[{i}]: {NOT_FINITE.format(value=choice)}")
        return Param(name, choices=choices, when=when)
    return _range_param(name, spec, where, when, problems)


def _range_param(name: str, spec: dict[str, Any], where: str, when: dict[str, Any],
                 problems: list[str]) -> Param | None:
    low, high = _number(spec.get("low")), _number(spec.get("high"))
    if low is None or high is None:
        problems.append(f"{where}: needs `choices`, or numeric `low` and `high`")
        return None
    step = _number(spec.get("step"))
    bad = [(key, v) for key, v in (("low", low), ("high", high), ("step", step))
           if non_finite(v)]
    for key, value in bad:
        problems.append(f"{where}.{key}: {NOT_FINITE.format(value=value)}")
    if bad:
        return None
    kind = spec.get("type") or ("int" if _is_int(spec["low"]) and _is_int(spec["high"])
                                and not spec.get("log") else "float")
    if kind not in ("int", "float"):
        problems.append(f"{where}.type: {kind!r} is not int or float")
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
