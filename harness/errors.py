"""The harness's own error types: every failure a user can cause ends as one of these."""

from __future__ import annotations

import errno
from pathlib import Path


class HarnessError(Exception):
    """A problem the user can fix; the CLI prints it without a traceback."""


class ConfigError(HarnessError):
    """One or more problems in a configuration, all reported at once."""

    def __init__(self, problems: list[str], *, source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = [f"{len(self.problems)} problem(s){where}:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class DataError(HarnessError):
    """Data that cannot be read: names the file, the record (when there is one) and a fix."""

    def __init__(
        self,
        path: str | Path,
        what: str,
        *,
        record: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = str(path)
        self.record = record
        self.what = what
        self.hint = hint
        where = self.path if record is None else f"{self.path}: record {record}"
        message = f"{where}: {what}"
        if hint:
            message += f"\n  What to do: {hint}"
        super().__init__(message)


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DISK_FULL_TEXT = ("no space left on device", "database or disk is full", "disk quota exceeded",
                  "storagefull", "could not extend file")
"""How a full disk reads where no errno survives: SQLite, PostgreSQL, safetensors (Rust)."""


class DiskFullError(HarnessError):
    """A write failed for want of space: the sweep or command stops instead of failing trial
    after trial. Nothing already written is lost; freeing space and running the same command
    again continues."""

    def __init__(self, where: str | Path | None, detail: str = "") -> None:
        self.where = str(where or "")
        why = f" ({detail})" if detail else ""
        if self.where:
            head = (f"disk full at {self.where}{why}: free some space there (`df -h "
                    f"{self.where}` shows how much is left)")
        else:
            head = f"a disk this command writes to is full{why}: free some space"
        super().__init__(f"{head}, then run the same command again; what was recorded so far "
                         "is kept")


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err``, or an exception it was raised from, is a full disk or quota."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DiskFullError):
            return True
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return True
        if any(text in str(current).lower() for text in DISK_FULL_TEXT):
            return True
        current = current.__cause__ or current.__context__
    return False


def disk_full(err: BaseException, where: str | Path | None) -> DiskFullError:
    """``err`` as a DiskFullError at ``where`` (or at the file the error names)."""
    if isinstance(err, DiskFullError):
        return err
    named = getattr(err, "filename", None)
    return DiskFullError(named or where, first_line(err))


def first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
