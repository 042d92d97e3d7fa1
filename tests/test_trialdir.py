"""The trial directory's rule: the harness deletes or replaces only what it recorded writing."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.trial.checkpoint import STATE, checkpoints
from harness.trialdir import (
    ADAPTER_DIR,
    prepare,
    prepare_for_sweep,
    put_in_place,
    record,
    recorded,
    remove_recorded,
    scratch,
    write_file,
)


def write_adapter(trial: Path, text: str = "weights") -> None:
    written = scratch(trial, ADAPTER_DIR)
    (written / "adapter_model.safetensors").write_text(text)
    (written / "components").mkdir()
    (written / "components" / "tokenizer.json").write_text("{}")
    put_in_place(trial, written, entry=ADAPTER_DIR)


def test_replacing_an_entry_removes_only_recorded_files(tmp_path: Path) -> None:
    write_adapter(tmp_path, "first")
    (tmp_path / ADAPTER_DIR / "notes.txt").write_text("mine")
    write_adapter(tmp_path, "second")

    assert (tmp_path / ADAPTER_DIR / "adapter_model.safetensors").read_text() == "second"
    assert not (tmp_path / ADAPTER_DIR / "notes.txt").exists()  # not mixed with new files
    (kept,) = tmp_path.glob(f"{ADAPTER_DIR}.kept-*")
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]  # moved, never deleted
    assert recorded(tmp_path)[ADAPTER_DIR] == ["adapter_model.safetensors",
                                              "components/tokenizer.json"]


def test_a_non_empty_directory_needs_resume_or_force(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(HarnessError, match=r"--resume to continue.*--force to start it over"):
        prepare(tmp_path, resume=False, force=False)
    prepare(tmp_path, resume=False, force=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(HarnessError, match="is a file"):
        prepare(tmp_path / "notes.txt", resume=False, force=True)


def test_force_removes_the_earlier_trial_and_keeps_the_rest(tmp_path: Path) -> None:
    write_file(tmp_path, "train_config.json", text="{}")
    write_adapter(tmp_path)
    stale = tmp_path / "checkpoint-7"
    written = scratch(tmp_path, stale.name)
    (written / STATE).write_text("state")
    put_in_place(tmp_path, written, entry=stale.name)
    (tmp_path / ADAPTER_DIR / "notes.txt").write_text("mine")

    prepare(tmp_path, resume=False, force=True)
    assert not stale.exists() and not (tmp_path / "train_config.json").exists()
    assert [p.name for p in (tmp_path / ADAPTER_DIR).iterdir()] == ["notes.txt"]
    assert recorded(tmp_path) == {}


def test_force_refuses_what_it_did_not_write_where_it_would_write(tmp_path: Path) -> None:
    (tmp_path / "checkpoint-7").mkdir()  # copied in by hand, or by a harness with no record
    (tmp_path / "checkpoint-7" / STATE).write_text("state")
    with pytest.raises(HarnessError, match="checkpoint-7 was not written by the harness"):
        prepare(tmp_path, resume=False, force=True)
    assert (tmp_path / "checkpoint-7" / STATE).exists()


def test_resume_never_picks_a_checkpoint_outside_the_record(tmp_path: Path) -> None:
    legacy = tmp_path / "checkpoint-3"
    legacy.mkdir()
    (legacy / STATE).write_text("from a harness that kept no record")
    record(tmp_path, "train_config.json", source=tmp_path)  # the record begins: legacy is taken on
    assert checkpoints(tmp_path) == [legacy]
    stray = tmp_path / "checkpoint-9"
    stray.mkdir()
    (stray / STATE).write_text("copied in later")
    assert checkpoints(tmp_path) == [legacy]


def test_a_sweep_trial_directory_left_by_an_earlier_study_is_set_aside(tmp_path: Path) -> None:
    trial = tmp_path / "trial-0003"
    assert prepare_for_sweep(trial) is None
    write_adapter(trial)
    (trial / "unknown.bin").write_text("?")
    moved = prepare_for_sweep(trial)  # results and all: nothing of an earlier study is lost
    assert moved is not None and not trial.exists()
    assert (moved / "unknown.bin").read_text() == "?"
    assert (moved / ADAPTER_DIR / "adapter_model.safetensors").is_file()


def test_resume_needs_a_trial_and_refuses_what_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(HarnessError, match="holds no trial to resume"):
        prepare(tmp_path, resume=True, force=False)
    write_file(tmp_path, "train_config.json", text="{}")
    prepare(tmp_path, resume=True, force=False)
    (tmp_path / "trial.log").write_text("someone else's log")
    with pytest.raises(HarnessError, match=r"trial\.log was not written by the harness"):
        prepare(tmp_path, resume=True, force=False)


def test_removing_an_unrecorded_entry_touches_nothing(tmp_path: Path) -> None:
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "mine.md").write_text("x")
    assert remove_recorded(tmp_path, "samples") == [str(tmp_path / "samples" / "mine.md")]
    assert (tmp_path / "samples" / "mine.md").exists()
