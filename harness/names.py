"""Names from user input that end up in MLflow and on disk: studies, experiments, run names,
registered models, tag values used as paths.

A study name becomes a directory (OUTPUT_DIR/STUDY), an MLflow experiment, part of a search
filter and of artifact paths, so it must not be able to climb out of a directory, start a URL
fragment or query, or smuggle an encoded separator.
"""

from __future__ import annotations

import string

from harness.errors import HarnessError

MAX_LENGTH = 200
ALLOWED = frozenset(string.ascii_letters + string.digits + "._-")
"""With `..` refused as well, no name can make a path, a URL part or a filter clause."""


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot be used as a name, or None when it can."""
    if not value:
        return "must not be empty"
    if len(value) > MAX_LENGTH:
        return f"is {len(value)} characters long; keep it under {MAX_LENGTH}"
    if ".." in value:
        return "contains '..'"
    bad = next((c for c in value if c not in ALLOWED), None)
    if bad is not None:
        return f"contains {bad!r}"
    if not value[0].isalnum():
        return "must start with a letter or digit"
    return None


def check_name(value: str, what: str) -> str:
    """``value`` when it is a safe name; otherwise a HarnessError naming ``what``."""
    problem = name_problem(value)
    if problem:
        raise HarnessError(f"{what} {value!r} {problem}: use letters, digits and ._- "
                           "(e.g. medquad-r16)")
    return value
