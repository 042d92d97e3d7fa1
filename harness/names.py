"""Names from user input that end up in MLflow and on disk: studies, experiments, run names,
registered models, tag values used as paths.

A study name becomes a directory (OUTPUT_DIR/STUDY), an MLflow experiment, part of a search
filter and of artifact paths, so it must not be able to climb out of a directory, start a URL
fragment or query, or smuggle an encoded separator.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from harness.errors import HarnessError

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_LENGTH = 200


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot be used as a name, or None when it can."""
    if not value:
        return "must not be empty"
    if len(value) > MAX_LENGTH:
        return f"is {len(value)} characters long; keep it under {MAX_LENGTH}"
    decoded = unquote(unquote(value))
    if decoded != value:
        return "contains URL-encoded characters (%..)"
    if ".." in value:
        return "contains '..'"
    if value.startswith(("/", "\\", "~")) or re.match(r"[A-Za-z]:[\\/]", value):
        return "is an absolute path"
    for bad in "/\\#;?'\"`\x00\n\r\t":
        if bad in value:
            return f"contains {bad!r}"
    if not _SAFE.fullmatch(value):
        return "must start with a letter or digit and use only letters, digits and ._-"
    return None


def check_name(value: str, what: str) -> str:
    """``value`` when it is a safe name; otherwise a HarnessError naming ``what``."""
    problem = name_problem(value)
    if problem:
        raise HarnessError(f"{what} {value!r} {problem}: use letters, digits and ._- "
                           "(e.g. medquad-r16)")
    return value
