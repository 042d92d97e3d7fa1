"""Command-line flags made from a config dataclass: one flag per field, its type, choices and
default taken from the field and its help from the field's docstring, so a new config field is
a new flag without a second list to keep in step."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from harness.config import choices
from harness.config.coerce import field_docs


def add_flags(parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = (),
              singular: dict[str, str] | None = None, prefix: str = "") -> None:
    """A flag for each field of ``cls`` but ``skip``: `--cutoff-len` for `cutoff_len`. A list
    field takes a repeatable flag (named by ``singular``: `--source` for `sources`) whose values
    replace the default list; booleans take `--name/--no-name`. ``prefix`` keeps the values of
    a second dataclass's flags apart from the first's (see `values`)."""
    hints, docs = typing.get_type_hints(cls), field_docs(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or dataclasses.is_dataclass(hints[f.name]):
            continue  # a nested section has flags of its own, where a command offers them
        flag = "--" + (singular or {}).get(f.name, f.name).replace("_", "-")
        repeat = (" Repeatable; the values replace the default list ('' for none)."
                  if typing.get_origin(hints[f.name]) is list else "")
        help_text = (docs.get(f.name, "") + _shown_default(f) + repeat).replace("%", "%%")
        parser.add_argument(flag, dest=prefix + f.name, help=help_text, **_kind(hints[f.name]))


def values(args: argparse.Namespace, cls: type, *, skip: tuple[str, ...] = (),
           prefix: str = "") -> dict[str, Any]:
    """The fields given on the command line (empty strings in a list are left out, so `''`
    clears a list); the others keep the dataclass's defaults."""
    given = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, prefix + f.name, None)
        if f.name in skip or value is None:
            continue
        given[f.name] = [v for v in value if v.strip()] if isinstance(value, list) else value
    return given


def _kind(hint: Any) -> dict[str, Any]:
    allowed = choices(hint)
    plain = [a for a in typing.get_args(hint) if a is not type(None) and not choices(a)]
    if allowed and plain:  # a number or a word (near_dup: 0.8 or off): the config checks it
        return {"type": str, "default": None}
    if allowed:
        return {"choices": list(allowed), "default": None}
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction, "default": None}
    if typing.get_origin(hint) is list:
        return {"action": "append", "default": None, "metavar": "VALUE"}
    plain = plain or [hint]
    return {"type": plain[0] if plain[0] in (int, float) else str, "default": None}


def _shown_default(f: dataclasses.Field) -> str:
    if f.default is dataclasses.MISSING or f.default is None:
        return ""
    return f" (default: {f.default!r})"
