"""Reading a search-space file: parsed, every section built, checked as a whole; every problem
reported at once with its key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.config import RegistrySettings, StudySettings, from_mapping
from harness.config.coerce import NOT_FINITE, non_finite
from harness.errors import ConfigError
from harness.space.checks import validate
from harness.space.file import SPACE_KEYS, SpaceFile
from harness.space.params import ALPHA_PER_RANK, Param, parse_params
from harness.yamlfile import load_yaml, read_text_file


def load_space(path: str | Path) -> SpaceFile:
    """Read and validate a space file; raises ConfigError listing every problem."""
    return parse_space(read_text_file(path, "search-space file"), str(path))


def parse_space(text: str, path: str) -> SpaceFile:
    """A space file's text (as a study keeps it for its workers) read and validated."""
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
    # a fixed setting that is not finite is wrong whatever else is: named beside the rest
    fixed = _non_finite(base, params)
    if problems:
        raise ConfigError(problems + fixed, source=str(path))
    names = [str(e.get("name") or f"enqueued #{i + 1}") for i, e in enumerate(enqueue)]
    enqueue = [{k: v for k, v in e.items() if k != "name"} for e in enqueue]
    space = SpaceFile(str(path), study, registry, base, params, enqueue, text, names)
    problems = validate(space)
    problems += [p for p in fixed if p not in problems]
    if problems:
        raise ConfigError(problems, source=str(path))
    return space


def _non_finite(base: dict[str, Any], params: list[Param], key_path: str = "") -> list[str]:
    """The fixed settings set to .nan or .inf, bar those the search sets, worded as building
    the config words them (so each is named once when both find it)."""
    searched = {"lora.alpha" if p.name == ALPHA_PER_RANK else p.name for p in params}
    problems = []
    for key, value in base.items():
        here = f"{key_path}{key}"
        if isinstance(value, dict):
            problems += _non_finite(value, params, f"{here}.")
        elif non_finite(value) and here not in searched:
            problems.append(f"{here}: {NOT_FINITE.format(value=value)}")
    return problems


def _given(raw: dict[str, Any], key: str, empty: Any) -> Any:
    value = raw.get(key)
    return empty if value is None else value


def _section(cls: type, data: Any, key: str, problems: list[str]) -> Any:
    try:
        return from_mapping(cls, data, key_path=key)
    except ConfigError as err:
        problems.extend(err.problems)
        return None


