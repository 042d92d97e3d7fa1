"""The study journal under torn writes: a failed append leaves the file as it was, and a file a
failed write left torn (by an older writer, or plain Optuna) is repaired on open, losing no
complete record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from harness.config import StudySettings
from harness.errors import DiskFullError, HarnessError
from harness.study.journal import torn_path
from harness.study.storage import open_storage, open_study

TORN = b'{"op_code":6,"worker_id":"w-1","trial_id":1,"state":1,"val'


def a_study(journal: Path, trials: int = 2) -> Any:
    study = open_study("s", open_storage(str(journal)), StudySettings(sampler="random"))
    for _ in range(trials):
        trial = study.ask()
        study.tell(trial, trial.suggest_float("x", 0.0, 1.0))
    return study


def values(journal: Path) -> list[float]:
    return [t.value for t in optuna.load_study(study_name="s",
                                               storage=open_storage(str(journal))).trials]


def test_a_torn_last_record_is_set_aside_and_every_study_still_opens(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "optuna.journal"
    before = [t.value for t in a_study(journal).trials]
    with open(journal, "ab") as f:
        f.write(TORN)  # the write a full disk cut short

    assert values(journal) == before
    assert "cut short" in capsys.readouterr().err
    assert TORN in torn_path(journal).read_bytes()
    assert journal.read_bytes().endswith(b"\n")
    a_study(journal, trials=1)  # and it takes new trials
    assert len(values(journal)) == 3


def test_a_torn_record_glued_to_the_next_is_cut_out(tmp_path: Path) -> None:
    journal = tmp_path / "optuna.journal"
    a_study(journal)
    with open(journal, "ab") as f:
        f.write(TORN)
    # Optuna's own backend glues the next record to the torn one, without a word ...
    plain = optuna.load_study(study_name="s", storage=JournalStorage(
        JournalFileBackend(str(journal))))
    plain.set_user_attr("after", "the torn record")
    with pytest.raises(ValueError):  # ... and from then on cannot read the file at all
        plain.set_user_attr("and", "one more")

    study = optuna.load_study(study_name="s", storage=open_storage(str(journal)))
    assert len(study.trials) == 2
    assert study.user_attrs == {"after": "the torn record", "and": "one more"}
    assert TORN in torn_path(journal).read_bytes()


def test_a_line_that_is_no_torn_record_is_named_and_nothing_changes(tmp_path: Path) -> None:
    journal = tmp_path / "optuna.journal"
    a_study(journal)
    damaged = journal.read_bytes().replace(b'{"op_code":', b"garbage", 1)
    journal.write_bytes(damaged)
    with pytest.raises(HarnessError, match="damaged at line 1"):
        open_storage(str(journal))
    assert journal.read_bytes() == damaged


def test_an_append_on_a_full_disk_takes_itself_back(tmp_path: Path, small_disk: Any) -> None:
    disk = small_disk("1m")
    journal = disk.path / "optuna.journal"
    study = a_study(journal)
    trial = study.ask()
    disk.fill()
    size = journal.stat().st_size
    with pytest.raises(DiskFullError, match=f"disk full at {journal}"):
        trial.set_user_attr("long", "x" * 200_000)  # more than the last page holds
    assert journal.stat().st_size == size
    assert all(json.loads(line) for line in journal.read_bytes().splitlines())

    disk.free()
    study.tell(trial, 0.25)
    assert values(journal)[-1] == 0.25


def test_a_blank_line_inside_the_journal_is_removed(tmp_path: Path) -> None:
    journal = tmp_path / "optuna.journal"
    before = [t.value for t in a_study(journal).trials]
    lines = journal.read_bytes().split(b"\n")
    journal.write_bytes(b"\n".join([*lines[:2], b"", *lines[2:]]))  # Optuna stops at it
    with pytest.raises(ValueError):
        optuna.load_study(study_name="s", storage=JournalStorage(
            JournalFileBackend(str(journal))))
    assert values(journal) == before
