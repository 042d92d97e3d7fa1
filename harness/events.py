"""The child→parent event channel: JSON lines appended to a file the parent follows.

A file rather than a pipe because a data-parallel trial runs under `accelerate launch` (its
processes are grandchildren of the parent), because a file survives the child's death with every
event it managed to write, and because it stays in the run's output directory as a record. Both
sides import this module and nothing else crosses between them.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.trialdir import TrialDir, record

# Exit codes of a trial, one per way it can end; documented in the README.
EXIT_CODES = {"finished": 0, "crash": 10, "nan": 11, "oom": 12, "killed": 13, "disk_full": 14}


class EventWriter:
    """Appends one JSON object per line and flushes it, so the parent sees it at once."""

    def __init__(self, path: str | Path) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (lives as long as the trial)

    def emit(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": time.time(), **fields}
        self._file.write(json.dumps(record, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


@dataclass
class EventReader:
    """Follows an events file: each poll returns the complete lines written since the last."""

    path: Path
    _offset: int = 0
    _partial: bytes = field(default=b"", repr=False)

    def poll(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        events = []
        for line in lines:
            if line.strip():
                try:
                    events.append(json.loads(line))
                except ValueError:
                    events.append({"event": "garbled", "line": line[:200].decode(errors="replace")})
        return events


def events_path(output_dir: str | Path) -> Path:
    return TrialDir(Path(output_dir)).events


def fresh_events_file(output_dir: str | Path) -> Path:
    """Start an empty events file (a resumed run keeps the old one under a numbered name)."""
    path = events_path(output_dir)
    if path.exists():
        n = 1
        while path.with_suffix(f".{n}.jsonl").exists():
            n += 1
        os.replace(path, path.with_suffix(f".{n}.jsonl"))
        record(path.parent, path.with_suffix(f".{n}.jsonl").name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    record(path.parent, path.name)
    return path
