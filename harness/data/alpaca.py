"""Alpaca-style instruction data: a JSON array or JSONL file of flat objects.

Each record is rendered through a format file (see ``formatfile``): its non-empty string keys pick
the template, and the text before the response placeholder becomes the (masked) prompt.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from harness.data.formatfile import FormatFile, fill
from harness.data.records import Problem, Record
from harness.data.textfile import JsonItem, read_json_records
from harness.yamlfile import short


def load_alpaca(
    path: Path,
    formats: FormatFile,
    *,
    response_key: str = "output",
    ignore_keys: Collection[str] = (),
) -> tuple[list[Record], list[Problem]]:
    items, problems = read_json_records(path)
    records: list[Record] = []
    for item in items:
        result = _record(path, item, formats, response_key, ignore_keys)
        if isinstance(result, Problem):
            problems.append(result)
        else:
            records.append(result)
    return records, problems


def _record(
    path: Path,
    item: JsonItem,
    formats: FormatFile,
    response_key: str,
    ignore_keys: Collection[str],
) -> Record | Problem:
    value, index = item.value, item.index

    def problem(reason: str, detail: str) -> Problem:
        return Problem(reason, str(path), detail + item.where(), index)

    if not isinstance(value, dict):
        return problem("not_an_object", f"is a JSON {type(value).__name__}, expected an object "
                       "of text fields")
    fields: dict[str, str] = {}
    for key, v in value.items():
        if key in ignore_keys or v is None:
            continue
        if not isinstance(v, str):
            return problem("non_string_value", f"key {key!r} holds a {type(v).__name__} "
                           f"({short(v)}), not text; make it a string, or list it in "
                           "data.ignore_keys to leave it out")
        if v.strip():
            fields[key] = v
    keys = frozenset(fields)
    template = formats.template_for(keys)
    if template is None:
        shown = ",".join(sorted(keys)) or "(none)"
        return problem("no_template", f"no template for its non-empty keys {shown}; "
                       f"{formats.path} has key sets: {'; '.join(formats.key_sets())}. Add a "
                       "template for these keys to the format file, or fix the record")
    return Record(path=str(path), index=index, group=f"{path}#{index}",
                  segments=fill(template, fields, response_key), content=tuple(fields.values()))
