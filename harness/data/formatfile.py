"""Format files, the convention of text-generation-webui's training tab.

A format file is a JSON object. Each key is a comma-joined set of record keys; its value is a
template in which ``%key%`` stands for that key's value. A record uses the template whose key set
equals the set of its non-empty keys. The text before the response placeholder is the prompt.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.data.records import Segment
from harness.data.textfile import load_json, read_text
from harness.errors import DataError

FORMATS_DIR = Path(__file__).resolve().parents[2] / "datasets" / "formats"


@dataclass(frozen=True)
class FormatFile:
    path: str
    templates: dict[frozenset[str], str]

    def template_for(self, keys: frozenset[str]) -> str | None:
        return self.templates.get(keys)

    def key_sets(self) -> list[str]:
        return sorted(",".join(sorted(k)) for k in self.templates)


def resolve_format_file(name: str) -> Path:
    """A path, or the name of a shipped format (``alpaca`` → datasets/formats/alpaca.json)."""
    path = Path(name)
    if path.is_file() or path.suffix == ".json" or "/" in name:
        return path
    shipped = FORMATS_DIR / f"{name}.json"
    if shipped.exists():
        return shipped
    available = ", ".join(sorted(p.stem for p in FORMATS_DIR.glob("*.json")))
    raise DataError(name, "no such format file", hint=f"give a path, or one of: {available}")


def load_format_file(name: str | Path, extra_fields: Collection[str] = ()) -> FormatFile:
    """A format file, checked: every ``%name%`` in a template must be one of its key set's
    keys (or one of ``extra_fields``, which the format's reader fills in as well)."""
    path = resolve_format_file(str(name))
    if not path.is_file():
        raise DataError(path, "format file not found",
                        hint="check the path, or use a shipped one from datasets/formats/")
    value = load_json(path, read_text(path))
    if not isinstance(value, dict) or not value:
        raise DataError(path, "a format file must be a non-empty JSON object mapping key sets "
                        "to templates", hint='e.g. {"instruction,output": "%instruction%\\n'
                        '%output%"}')
    templates: dict[frozenset[str], str] = {}
    for spec, template in value.items():
        keys = frozenset(k.strip() for k in spec.split(",") if k.strip())
        if not keys:
            raise DataError(path, f"key set {spec!r} names no keys")
        if not isinstance(template, str):
            raise DataError(path, f"the template for {spec!r} is a {type(template).__name__}, "
                            "not a string")
        if keys in templates:
            raise DataError(path, f"key set {spec!r} appears twice (keys are a set: order "
                            "does not matter)")
        unknown = unknown_placeholders(template, keys | set(extra_fields))
        if unknown:
            also = f", nor one of {', '.join(sorted(extra_fields))}" if extra_fields else ""
            raise DataError(path, f"the template for {spec!r} uses "
                            f"{', '.join(f'%{u}%' for u in unknown)}, which is not one of its "
                            f"keys ({', '.join(sorted(keys))}){also}: it would stay in every "
                            "example as written", hint="fix the placeholder's name, or add the "
                            "key to the template's key set")
        templates[keys] = template
    return FormatFile(str(path), templates)


_PLACEHOLDER = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)%")


def unknown_placeholders(template: str, known: Collection[str]) -> list[str]:
    """Names written as placeholders in ``template`` that are not in ``known``, read the way
    `fill` reads it: known placeholders first, in one pass, then what text lies between."""
    if known:
        pieces = re.split("%(?:" + "|".join(re.escape(k) for k in known) + ")%", template)
    else:
        pieces = [template]
    return sorted({m.group(1) for piece in pieces for m in _PLACEHOLDER.finditer(piece)})


def fill(template: str, fields: Mapping[str, str], response_key: str) -> tuple[Segment, ...]:
    """Fill ``%key%`` placeholders in one pass; the prompt ends at the response placeholder.

    Values are never scanned for placeholders themselves. (Placeholders naming no field are
    refused when the format file is loaded.)
    """
    if not fields:
        return (Segment(template, False),)
    pattern = re.compile("%(" + "|".join(re.escape(k) for k in fields) + ")%")

    def sub(text: str) -> str:
        return pattern.sub(lambda m: fields[m.group(1)], text)

    # The cut is the first placeholder the one-pass scan meets for the response key.
    cut = next((m for m in pattern.finditer(template) if m.group(1) == response_key), None)
    if cut is None:
        return (Segment(sub(template), False),)
    prompt = sub(template[: cut.start()])
    rest = fields[response_key] + sub(template[cut.end():])
    return tuple(s for s in (Segment(prompt, False), Segment(rest, True)) if s.text)
