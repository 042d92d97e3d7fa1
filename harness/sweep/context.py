"""What every part of a sweep shares: the command's options, the opened study, and the control
that stops the sweep (Ctrl-C, SIGTERM, a full disk)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from harness.errors import DiskFullError
from harness.space.file import SpaceFile
from harness.sweep.view import SweepView

if TYPE_CHECKING:
    import optuna

    from harness.tracking.promotion import Promotion


@dataclass
class SweepOptions:
    """Command-line overrides of the space file, and how this process runs trials."""

    trials: int | None = None
    """The study's total (sweep); at most this many trials in this process (worker)."""
    timeout: float | None = None
    """Seconds after which this process starts no new trial (else the space file's)."""
    study: str | None = None
    """The study's name (else the space file's)."""
    storage: str | None = None
    """The study storage's URL (else HARNESS_STORAGE, else mlruns/optuna.journal)."""
    tracking_uri: str | None = None
    """The MLflow tracking URI (else MLFLOW_TRACKING_URI, else the local store)."""
    enqueue_best_from: str | None = None
    """Another study whose best parameters become this study's first trial."""
    promote: bool | None = None
    """Promote the best adapter at the end (None: as the space file's registry says)."""
    parallel: int = 1
    """Trials run at once by this process, on the CPU or sharing the visible GPUs."""
    gpus: list[str] = field(default_factory=list)
    """The GPUs this process's trials run on (the CUDA_VISIBLE_DEVICES of each child);
    ["auto"] claims GPUs no other worker here holds."""
    per_gpu: int = 4
    """Trials at most on one GPU at once, placed by their memory estimates (1: each trial
    holds whole GPUs, one per training.num_processes)."""


@dataclass
class SweepOutcome:
    """How this process's part of the sweep ended."""

    study: optuna.Study
    """The Optuna study."""
    interrupted: bool
    """Whether Ctrl-C or a stop signal ended it."""
    promotion: Promotion | None = None
    """The promotion made at the end, if any."""
    failed: list[str] = field(default_factory=list)
    """Why the study's trials ended, when none of them completed."""


class Control:
    """Stops the sweep. Ctrl-C and stop signals set ``stop``; a full disk also records the
    first error, which the sweep reports at its end (trial after trial would fail on it)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.stop = threading.Event()
        self.halted: DiskFullError | None = None
        self._lock = threading.Lock()

    def halt(self, error: DiskFullError) -> None:
        """Stop for a full disk: running trials are stopped and queued again."""
        with self._lock:
            first = self.halted is None
            if first:
                self.halted = error
        if first:
            self.console.print(f"[red]disk full at {error.where or 'a disk'}[/]: stopping the "
                               "sweep (its running trials are queued again)")
        self.stop.set()


@dataclass
class SweepContext:
    """The opened study and what this process knows about it."""

    space: SpaceFile
    """The search space (a worker's comes from the study)."""
    options: SweepOptions
    """The command's options."""
    console: Console
    """Where messages go (stderr)."""
    name: str
    """The study's name."""
    uri: str
    """The MLflow tracking URI."""
    url: str
    """The study storage's URL."""
    study: optuna.Study
    """The Optuna study."""
    joining: bool
    """A worker joining a study a sweep created, rather than the sweep itself."""
    total: int
    """The study's total number of trials."""
    control: Control
    """Stops the sweep."""
    view: SweepView = field(init=False)
    """The live table of this process's trials."""

    def __post_init__(self) -> None:
        self.view = SweepView(self.name, plain=None if self.console.is_terminal
                              else self.console, objective=self.objectives[0])

    @property
    def objectives(self) -> list[str]:
        return self.space.study.objectives

    @property
    def out_root(self) -> Path:
        """Where the study's trial directories and plots go."""
        return (Path(self.space.study.output_dir) / self.name).resolve()

    @property
    def own_limit(self) -> int | None:
        """At most this many trials in this process (a worker's --trials)."""
        return self.options.trials if self.joining else None

