"""Checkpoints written atomically (temporary directory, fsync, rename) and found again on resume.

A checkpoint holds the adapter weights, optimizer and scheduler state, the RNG states and the
step counter. Only directories that were renamed into place count, so a crash mid-write leaves
the previous checkpoint as the last complete one.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import torch

from harness.protocol import CheckpointDamaged, Events, Resumed
from harness.trialdir import (
    CHECKPOINT_PREFIX,
    CHECKPOINT_STATE,
    has_record,
    put_in_place,
    recorded,
    remove_recorded,
    scratch,
)

PREFIX = CHECKPOINT_PREFIX
STATE = CHECKPOINT_STATE


def _fsync_tree(path: Path) -> None:
    for item in sorted(path.rglob("*")):
        if item.is_file():
            with open(item, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(
    output_dir: Path, *, step: int, model: Any, optimizer: Any, scheduler: Any,
    progress: dict[str, int], keep: int = 2,
) -> Path:
    final = output_dir / f"{PREFIX}{step}"
    tmp = scratch(output_dir, final.name)
    model.save_pretrained(tmp)
    torch.save({
        "step": step,
        "progress": progress,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
    }, tmp / STATE)
    _fsync_tree(tmp)
    put_in_place(output_dir, tmp, entry=final.name)
    _fsync_dir(output_dir)
    for old in checkpoints(output_dir)[:-keep]:
        remove_recorded(output_dir, old.name)
    return final


def checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints of this trial, oldest first: in a directory with the harness's
    record of what it wrote, only the recorded ones (a stale copy is never resumed from)."""
    mine = recorded(output_dir) if has_record(output_dir) else None
    found = [p for p in output_dir.glob(f"{PREFIX}*") if (p / STATE).is_file()
             and p.name[len(PREFIX):].isdigit() and (mine is None or p.name in mine)]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


class DamagedCheckpoint(Exception):
    """A checkpoint whose files cannot be read back (cut short, overwritten, corrupted)."""


def read_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The adapter weights and trainer state of ``path``, read whole before anything is
    restored, so a damaged checkpoint leaves the model as it was."""
    from safetensors.torch import load_file

    try:
        weights = load_file(str(path / "adapter_model.safetensors"))
        state = torch.load(path / STATE, weights_only=False)
        missing = {"step", "progress", "optimizer", "scheduler", "rng"} - set(state)
    except Exception as err:  # safetensors, pickle and zip errors alike
        raise DamagedCheckpoint(f"{type(err).__name__}: {str(err)[:200]}") from err
    if missing:
        raise DamagedCheckpoint(f"its state lacks {', '.join(sorted(missing))}")
    return weights, state


def load_checkpoint(path: Path, *, model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Restore weights and states in place; returns the saved step and progress. Raises
    DamagedCheckpoint, with the model untouched, when its files cannot be read."""
    from peft import set_peft_model_state_dict

    weights, state = read_checkpoint(path)
    set_peft_model_state_dict(model, weights)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    random.setstate(state["rng"]["python"])
    if state["rng"]["cuda"]:
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return {"step": state["step"], "progress": state["progress"]}


def resume_from(out: Path, *, model: Any, optimizer: Any, scheduler: Any,
                events: Events) -> tuple[int, dict[str, int]]:
    """Restore the newest intact checkpoint in ``out``: a damaged one is named (a
    `checkpoint_damaged` event) and the one before it tried; (step, progress) to go on from,
    step 0 when none is intact."""
    for path in reversed(checkpoints(out)):
        try:
            state = load_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler)
        except DamagedCheckpoint as err:
            events.emit(CheckpointDamaged(checkpoint=str(path), message=str(err)))
            continue
        events.emit(Resumed(step=state["step"], checkpoint=str(path)))
        return state["step"], state["progress"]
    return 0, {"epoch": 0, "batch": 0}
