"""Config mappings checked as they become dataclasses.

``from_mapping`` turns a parsed YAML/JSON mapping into a config dataclass and reports every
problem at once (unknown keys, wrong types, bad values), each with its key path. A field typed
as a ``Literal`` is a choice: ``choice_problems`` checks it, so each list of choices is written
once, in its type.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, TypeVar

from harness.errors import ConfigError
from harness.yamlfile import short

T = TypeVar("T")

NOT_FINITE = "{value} is not a finite number (to have no limit, leave the limit out)"
"""The problem with a `.nan` or `.inf` where a number is set (it would train on NaN, crash
converting to a count, or silently turn a limit off)."""


def non_finite(value: Any) -> bool:
    """A float that is nan or infinite (YAML's `.nan`, `.inf`)."""
    return isinstance(value, float) and not math.isfinite(value)


def raise_problems(problems: list[str], source: str | None = None) -> None:
    if problems:
        raise ConfigError(problems, source=source)


def from_mapping(cls: type[T], data: Any, *, key_path: str = "", source: str | None = None) -> T:
    """Build dataclass ``cls`` from ``data``, reporting every problem with its key path."""
    problems: list[str] = []
    kwargs = _collect_fields(cls, data, key_path, problems)
    if not problems:
        try:
            return cls(**kwargs)
        except ConfigError as err:
            problems.extend(_prefix(key_path, p) for p in err.problems)
    raise ConfigError(problems, source=source)


def _collect_fields(cls: type, data: Any, key_path: str, problems: list[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        problems.append(f"{key_path or '(top level)'}: expected a mapping, got "
                        f"{type(data).__name__}")
        return {}
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            known = ", ".join(sorted(fields))
            problems.append(f"{_prefix(key_path, str(key))}: unknown key (known: {known})")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        here = _prefix(key_path, name)
        if name not in data:
            required = (f.default is dataclasses.MISSING
                        and f.default_factory is dataclasses.MISSING)
            if required:
                problems.append(f"{here}: required")
            continue
        if dataclasses.is_dataclass(hints[name]):
            before = len(problems)
            nested = _collect_fields(hints[name], data[name], here, problems)
            if len(problems) == before:
                try:
                    kwargs[name] = hints[name](**nested)
                except ConfigError as err:
                    problems.extend(_prefix(here, p) for p in err.problems)
            continue
        value, problem = _coerce(data[name], hints[name])
        if problem:
            problems.append(f"{here}: {problem}")
        else:
            kwargs[name] = value
    return kwargs


def _prefix(key_path: str, key: str) -> str:
    return f"{key_path}.{key}" if key_path else key


def _coerce(value: Any, hint: Any) -> tuple[Any, str | None]:
    """Check ``value`` against a simple type hint; ints are accepted where floats are."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None, None
        errors = []
        for option in (a for a in args if a is not type(None)):
            coerced, problem = _coerce(value, option)
            if problem is None:
                return coerced, None
            errors.append(problem)
        return value, " or ".join(errors)
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        if not isinstance(value, list):
            return value, f"expected a list, got {type(value).__name__}"
        coerced = [_coerce(v, item) for v in value]
        bad = next((p for _, p in coerced if p), None)
        return [v for v, _ in coerced], (f"list item: {bad}" if bad else None)
    if hint is Any:
        return value, None
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value), None
    if hint is float and isinstance(value, str):
        # YAML 1.1 reads 2e-4 (no dot) as a string; accept what float() accepts.
        try:
            value = float(value)
        except ValueError:
            return value, f"expected a number, got {short(value)}"
    if hint is float and non_finite(value):
        return value, NOT_FINITE.format(value=value)
    if hint is int and isinstance(value, bool):
        return value, "expected an integer, got a boolean"
    if isinstance(hint, type) and not isinstance(value, hint):
        return value, f"expected {hint.__name__}, got {type(value).__name__} ({short(value)})"
    return value, None


def choices(hint: Any) -> tuple[Any, ...]:
    """The values a ``Literal`` type (or an optional one) allows; () for any other type."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return tuple(c for arg in typing.get_args(hint) for c in choices(arg))
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else ()


def choice_problems(config: Any) -> list[str]:
    """Fields of dataclass ``config`` whose value is not one of their ``Literal`` choices."""
    hints = typing.get_type_hints(type(config))
    out = []
    for f in dataclasses.fields(config):
        hint, value = hints[f.name], getattr(config, f.name)
        allowed = choices(hint)
        if not allowed or value in allowed or _plain_member(hint, value):
            continue
        if value is None and type(None) in typing.get_args(hint):
            continue  # an optional choice left out
        plain = "".join(f", nor a {a.__name__}" for a in _plain_types(hint))
        out.append(f"{f.name}: {value!r} is not one of {', '.join(map(str, allowed))}{plain}")
    return out


def _plain_types(hint: Any) -> list[type]:
    """The types beside the choices of a union such as `float | Literal["off"]`."""
    return [a for a in typing.get_args(hint) if isinstance(a, type) and a is not type(None)]


def _plain_member(hint: Any, value: Any) -> bool:
    """Whether ``value`` is of a non-choice type of a union that also has choices (a number
    where `float | Literal["off"]` is asked for): its own field checks its range."""
    return any(isinstance(value, a) for a in _plain_types(hint))


def field_docs(cls: type) -> dict[str, str]:
    """Each field's docstring (the string literal under it in the class body), one line."""
    import ast
    import inspect
    import itertools
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):  # installed without its sources: no help, the flags still work
        return {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, after in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs
