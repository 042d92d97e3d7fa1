"""The channel events travel through: a file the child appends to, one JSON line per event,
and the parent follows."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.protocol.events import Event, Failed, decode, encode


class EventWriter:
    """Appends one JSON line per event and flushes it, so the parent sees it at once."""

    def __init__(self, path: str | Path) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (lives as long as the trial)

    def emit(self, event: Event) -> None:
        self._file.write(encode(event) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class RankEvents:
    """The event channel of a data-parallel process other than the main one: it reports only
    how it failed, with its rank."""

    def __init__(self, writer: EventWriter, rank: int) -> None:
        self._writer = writer
        self._rank = rank

    def emit(self, event: Event) -> None:
        if isinstance(event, Failed):
            self._writer.emit(replace(event, rank=self._rank))

    def close(self) -> None:
        self._writer.close()


Events = EventWriter | RankEvents
"""A trial's event channel, whichever process it runs in."""


class EventReader:
    """Follows an events file: each poll returns the events of the complete lines written
    since the last."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def poll(self) -> list[Event]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        return [decode(line) for line in lines if line.strip()]
