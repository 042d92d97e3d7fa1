"""Reading data files as text and JSON with errors that name the file, the record and a fix."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.records import Problem
from harness.decoding import decode
from harness.errors import DataError

MAX_FILE_BYTES = 2 * 1024**3


def read_text(path: Path) -> str:
    """The file's text: UTF-8 (or UTF-16/32 with a byte-order mark), never guessed."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DataError(path, f"file is {size / 1024**3:.1f} GiB, over the 2 GiB limit",
                            hint="split it into several files in one directory")
        data = path.read_bytes()
    except OSError as err:
        raise DataError(path, f"cannot read the file: {err.strerror or err}") from err
    return decode(path, data)


@dataclass(frozen=True)
class JsonItem:
    """One record of a JSON array or JSONL file: its index and, for JSONL, its line."""

    index: int
    value: Any
    line: int | None = None

    def where(self) -> str:
        return f" (line {self.line})" if self.line is not None else ""


def read_json_records(path: Path) -> tuple[list[JsonItem], list[Problem]]:
    """Records of a JSON array or a JSONL file; unparseable JSONL lines become problems."""
    text = read_text(path)
    stripped = text.lstrip()
    if not stripped:
        raise DataError(path, "file is empty", hint="point the harness at a file with records")
    if stripped[0] == "[":
        return _json_array(path, text), []
    if stripped[0] == "{":
        return _json_lines(path, text)
    raise DataError(
        path,
        f"does not look like JSON: it starts with {stripped[:20]!r}",
        hint="use a JSON array of objects or one JSON object per line (JSONL)",
    )


def load_json(path: Path, text: str) -> Any:
    """``json.loads`` whose every failure is a DataError naming line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(path, f"malformed JSON at line {err.lineno}, column {err.colno}: "
                        f"{err.msg}", hint="fix the JSON syntax there (a validator such as "
                        "`python -m json.tool FILE` points at it)") from None
    except (ValueError, RecursionError) as err:
        raise DataError(path, f"JSON cannot be read: {err}") from None


def _json_array(path: Path, text: str) -> list[JsonItem]:
    value = load_json(path, text)
    if not isinstance(value, list):
        raise DataError(path, f"expected a JSON array of records, got {type(value).__name__}")
    if not value:
        raise DataError(path, "the JSON array holds no records")
    return [JsonItem(i, v) for i, v in enumerate(value)]


def _json_lines(path: Path, text: str) -> tuple[list[JsonItem], list[Problem]]:
    items: list[JsonItem] = []
    problems: list[Problem] = []
    # Only "\n" ends a line: JSON strings may hold U+2028 and friends that splitlines() splits on.
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if not line.strip():
            continue
        index = len(items) + len(problems)
        try:
            items.append(JsonItem(index, json.loads(line), lineno))
        except (ValueError, RecursionError) as err:
            problems.append(Problem("invalid_json", str(path),
                                    f"line {lineno} is not valid JSON: {err}", index))
    if not items:
        _no_records(path, text)
    return items, problems


def _no_records(path: Path, text: str) -> None:
    """Every line failed: say whether it is one multi-line JSON value or just not JSON."""
    value = load_json(path, text)
    raise DataError(path, f"holds a single JSON {type(value).__name__}, not records",
                    hint="wrap the records in a JSON array, or write one object per line")
