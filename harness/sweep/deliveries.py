"""The MLflow writes of a sweep's trials that the tracking server has not taken yet: retried
while the sweep runs, drained at its end, and reported when they could not all be made."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.errors import DiskFullError
from harness.tracking.outbox import Outbox, drain
from harness.urls import redact

DRAIN_SECONDS = float(os.environ.get("HARNESS_MLFLOW_DRAIN_SECONDS", "120"))
"""How long the end of a sweep waits for writes held while the tracking server was away."""


class Deliveries:
    """The outboxes of this process's trial runs, until each is fully delivered."""

    def __init__(self) -> None:
        self._boxes: list[Outbox] = []
        self._lock = threading.Lock()

    def add(self, box: Outbox) -> None:
        with self._lock:
            self._boxes.append(box)

    def boxes(self) -> list[Outbox]:
        with self._lock:
            return list(self._boxes)

    def retry(self) -> None:
        """Try the held writes again; forget the runs fully delivered."""
        for box in self.boxes():
            box.flush()
        with self._lock:
            self._boxes = [box for box in self._boxes if not box.done]

    def disk_full(self) -> DiskFullError | None:
        """The first full disk a run's writes met (a local store on a full disk)."""
        return next((box.disk_full for box in self.boxes() if box.disk_full), None)

    def drain(self, console: Console, *, also: list[Outbox], uri: str, out_root: Path) -> None:
        """Last chance for the held writes (and those of ``also``), then say what was lost."""
        boxes = [*self.boxes(), *also]
        report_undelivered(console, boxes, drain(boxes, DRAIN_SECONDS), uri=uri,
                           out_root=out_root)


def report_undelivered(console: Console, boxes: list[Outbox], waiting: list[Outbox], *,
                       uri: str, out_root: Path) -> None:
    """What the tracking server refused (``boxes``) or never took (``waiting``), and why."""
    dropped = sum(len(box.dropped) for box in boxes)
    if dropped:
        console.print(f"[red]the MLflow server refused {dropped} write(s)[/] (see the "
                      "warnings above): check the user's permissions")
    full = [box for box in waiting if box.disk_full]
    if full:
        where = full[0].disk_full.where  # type: ignore[union-attr]
        console.print(f"[red]{_pending(full)} MLflow write(s) of {len(full)} run(s) could not "
                      f"be made: {where} is full[/]; the next sweep closes the runs they leave "
                      "open")
    away = [box for box in waiting if not box.disk_full]
    if away:
        console.print(f"[red]the MLflow tracking server at {redact(uri)} is still "
                      f"unreachable: {_pending(away)} write(s) of {len(away)} run(s) were "
                      "not delivered[/]; the trials' results are in the study and "
                      f"their files under {out_root}")


def _pending(boxes: list[Any]) -> int:
    return sum(len(box.pending) for box in boxes)
