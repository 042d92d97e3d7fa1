"""A trial directory: what the harness writes there, and the rule that it never deletes or
overwrites anything it did not write itself.

Layout (each entry recorded when written):

    train_config.json   the resolved config the trial runs (written by the parent)
    events.jsonl        the child's events; events.N.jsonl the events of earlier runs
    trial.log           the child's output, appended by every run
    checkpoint-N/       resumable state, rotated
    samples/            base versus adapter comparison
    adapter/            the final adapter (PEFT + MLflow model)
    best-epoch/         the best epoch end's adapter weights (what adapter/ holds at the end)
    .harness-files.json what of the above the harness wrote: the record below

Every file the harness writes is listed in ``.harness-files.json`` under its entry. Replacing an
entry (a newer checkpoint of the same step, the adapter of a resumed or restarted trial)
removes only the files listed for it; anything else found in its place is moved aside to
``NAME.kept-TIMESTAMP`` and reported, never deleted and never mixed with the new files.
Directories written before this record existed are left alone entirely.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

CONFIG_FILE = "train_config.json"
EVENTS_FILE = "events.jsonl"
LOG_FILE = "trial.log"
ADAPTER_DIR = "adapter"
SAMPLES_DIR = "samples"
BEST_DIR = "best-epoch"
CHECKPOINT_PREFIX = "checkpoint-"
CHECKPOINT_STATE = "trainer_state.pt"
"""The harness's own file in every checkpoint: optimizer, scheduler, RNG states, position."""
MANIFEST = ".harness-files.json"
SCRATCH_SUFFIX = ".tmp"
"""`.NAME.tmp` directories are the harness's scratch space while it writes NAME."""


@dataclass(frozen=True)
class TrialDir:
    """Where each part of a trial lives (the functions below guard what is written there)."""

    path: Path
    """The trial directory."""

    @property
    def config(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def events(self) -> Path:
        return self.path / EVENTS_FILE

    @property
    def log(self) -> Path:
        return self.path / LOG_FILE

    @property
    def adapter(self) -> Path:
        return self.path / ADAPTER_DIR

    @property
    def samples(self) -> Path:
        return self.path / SAMPLES_DIR

    def write_config(self, config: Any) -> Path:
        """The resolved config the trial runs, as the parent writes it."""
        return write_file(self.path, CONFIG_FILE, text=config_json(config))

    def read_config(self) -> dict[str, Any]:
        return json.loads(self.config.read_text())


def config_json(config: Any) -> str:
    """A config dataclass as `train_config.json` holds it (the trial's, and the adapter's copy
    that names its base model)."""
    return json.dumps(asdict(config), indent=2)


def scratch(trial_dir: Path, entry: str) -> Path:
    """An empty scratch directory in which ``entry`` is written before it is put in place."""
    path = trial_dir / f".{entry}{SCRATCH_SUFFIX}"
    shutil.rmtree(path, ignore_errors=True)  # a scratch left by a crash: the harness's own
    path.mkdir(parents=True)
    return path


def recorded(trial_dir: Path) -> dict[str, list[str]]:
    """Entry name -> the files (relative to the entry) the harness wrote there."""
    try:
        value = json.loads((trial_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def has_record(trial_dir: Path) -> bool:
    return (trial_dir / MANIFEST).is_file()


def _files_of(path: Path) -> list[str]:
    if path.is_file():
        return [""]
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if not p.is_dir())


def _save(trial_dir: Path, entries: dict[str, list[str]]) -> None:
    tmp = trial_dir / f"{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(entries, indent=1, sort_keys=True))
    os.replace(tmp, trial_dir / MANIFEST)


def record(trial_dir: Path, entry: str, *, source: Path | None = None) -> None:
    """Note ``entry`` as written by the harness, with the files now in ``source`` (default:
    the entry itself)."""
    entries = recorded(trial_dir) if has_record(trial_dir) else _legacy(trial_dir)
    entries[entry] = _files_of(source or trial_dir / entry)
    _save(trial_dir, entries)


def _legacy(trial_dir: Path) -> dict[str, list[str]]:
    """The checkpoints a harness that kept no record left here (each holds the harness's own
    state file), taken on when the record begins, so that `--resume` still finds them."""
    return {p.name: _files_of(p) for p in trial_dir.glob(f"{CHECKPOINT_PREFIX}*")
            if harness_named(p) and (p / CHECKPOINT_STATE).is_file()}


def remove_recorded(trial_dir: Path, entry: str) -> list[str]:
    """Delete the files the harness wrote for ``entry`` (and directories left empty); the
    paths of what remains there, which the harness did not write."""
    entries = recorded(trial_dir)
    path = trial_dir / entry
    if entry in entries:
        for name in entries.pop(entry):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
                (path / name if name else path).unlink()
        _save(trial_dir, entries)
    if path.is_dir():
        for sub in sorted((p for p in path.rglob("*") if p.is_dir()), reverse=True):
            with contextlib.suppress(OSError):
                sub.rmdir()  # only when empty
        with contextlib.suppress(OSError):
            path.rmdir()
    if not path.exists():
        return []
    return [str(path)] if path.is_file() else [str(p) for p in path.rglob("*")]


def put_in_place(trial_dir: Path, written: Path, *, entry: str) -> None:
    """Make the finished scratch directory ``written`` the entry ``entry``: the old entry's
    recorded files go, anything else there is moved aside (see the module docstring)."""
    target = trial_dir / entry
    if remove_recorded(trial_dir, entry) or target.exists():
        kept = set_aside(target)
        print(f"harness: {target} held files the harness did not write: moved to {kept}",
              file=sys.stderr)
    record(trial_dir, entry, source=written)
    os.replace(written, target)


def set_aside(path: Path) -> Path:
    """Rename ``path`` to NAME.kept-TIMESTAMP beside it; the new path."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.kept-{stamp}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.kept-{stamp}-{n}")
        n += 1
    os.replace(path, aside)
    return aside


def write_file(trial_dir: Path, name: str, *, text: str) -> Path:
    """Write (or replace) the harness's file ``name`` atomically and record it."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    path = trial_dir / name
    tmp = trial_dir / f".{name}.{os.getpid()}{SCRATCH_SUFFIX}"
    tmp.write_text(text)
    os.replace(tmp, path)
    record(trial_dir, name)
    return path


def entries(trial_dir: Path) -> list[Path]:
    """What the directory holds, the record itself aside."""
    if not trial_dir.is_dir():
        return []
    return sorted(p for p in trial_dir.iterdir() if p.name != MANIFEST)


def start_over(trial_dir: Path, *, keep: Callable[[str], bool] = lambda name: False
               ) -> list[Path]:
    """Remove what the harness wrote for an earlier trial here, but the entries ``keep``
    names; what remains."""
    for entry in list(recorded(trial_dir)):
        if not keep(entry):
            remove_recorded(trial_dir, entry)
    return entries(trial_dir)


def start_again(trial_dir: Path) -> None:
    """Clear what a run of the trial here produced (checkpoints, epoch adapters, the adapter,
    samples) for a fresh run of it; its config, log and events stay (the events go aside when
    the run starts)."""
    start_over(trial_dir, keep=lambda name: name in (CONFIG_FILE, LOG_FILE)
               or name.startswith("events"))


def harness_named(path: Path) -> bool:
    """Whether ``path`` has a name the harness writes in a trial directory."""
    name = path.name
    return (name in (CONFIG_FILE, LOG_FILE, ADAPTER_DIR, SAMPLES_DIR, BEST_DIR)
            or (name.startswith("events") and name.endswith(".jsonl"))
            or (name.startswith(CHECKPOINT_PREFIX) and name[len(CHECKPOINT_PREFIX):].isdigit()))


def prepare(trial_dir: Path, *, resume: bool, force: bool) -> None:
    """Check that a trial may be written into ``trial_dir`` (see `harness train --help`).

    Empty or missing: fine. Otherwise ``resume`` continues the trial there, and ``force``
    starts it over: the files the harness wrote for the earlier trial are removed, the rest
    stays, unless it is in the way of what the harness writes."""
    if trial_dir.exists() and not trial_dir.is_dir():
        raise HarnessError(f"{trial_dir} is a file, not a directory: give --output-dir a "
                           "directory")
    found = entries(trial_dir)
    if not found:
        return
    shown = ", ".join(p.name for p in found[:4]) + (", ..." if len(found) > 4 else "")
    a_trial = has_record(trial_dir) or (trial_dir / CONFIG_FILE).is_file()
    if resume and not a_trial:
        raise HarnessError(f"{trial_dir} holds no trial to resume ({shown}): give the "
                           "directory of a trial, or leave out --resume")
    if resume and not has_record(trial_dir):
        return  # a trial written before the harness kept a record: its files are its own
    if not (resume or force):
        what = "holds a trial" if a_trial else "is not empty"
        raise HarnessError(f"{trial_dir} {what} ({shown}): pass --resume to continue the trial "
                           "in it, --force to start it over (only files the harness wrote are "
                           "removed), or choose another --output-dir")
    mine = recorded(trial_dir)
    in_the_way = [p for p in found if harness_named(p) and p.name not in mine]
    if in_the_way:
        raise HarnessError(f"{trial_dir}: {', '.join(p.name for p in in_the_way)} "
                           f"{'was' if len(in_the_way) == 1 else 'were'} not written by the "
                           "harness (or by a harness that kept no record), and the trial "
                           "would write there: move them away, or choose another --output-dir")
    if force:
        start_over(trial_dir)


def prepare_for_sweep(trial_dir: Path) -> Path | None:
    """A sweep's trial directory left over from an earlier study of the same name (a deleted
    journal, another storage) is moved aside whole, results and all; where it went, if
    anywhere."""
    return set_aside(trial_dir) if entries(trial_dir) else None
