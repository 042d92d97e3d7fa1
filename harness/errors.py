"""The harness's own error types: every failure a user can cause ends as one of these."""

from __future__ import annotations

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
