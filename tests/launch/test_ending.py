"""How a trial ended, from its exit code, its events and the state of its disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from events import failed, finished

from harness.launch.ending import classify, has_room, log_tail


def test_the_parents_reason_wins_and_the_childs_words_are_kept(tmp_path: Path) -> None:
    result = classify(13, [failed("killed", "stopped by SIGTERM after step 3")], "pruned",
                      tmp_path / "trial.log")
    assert (result.reason, result.message) == ("pruned", "stopped by SIGTERM after step 3")


def test_a_finished_trial_has_no_message(tmp_path: Path) -> None:
    result = classify(0, [finished()], None, tmp_path / "trial.log")
    assert result.ok and result.message == ""


def test_a_trial_that_could_not_say_why_on_a_full_disk_ended_disk_full(
        tmp_path: Path, small_disk: Any) -> None:
    disk = small_disk("1m")
    disk.fill()
    assert not has_room(disk.path) and has_room(tmp_path)
    result = classify(1, [], None, disk.path / "trial.log")
    assert result.reason == "disk_full" and str(disk.path) in result.message
    disk.free()
    assert classify(1, [], None, disk.path / "trial.log").reason == "crash"


def test_the_log_tail_is_the_end_of_the_log(tmp_path: Path) -> None:
    log = tmp_path / "trial.log"
    log.write_bytes(b"x" * 9000 + "the end \u2713".encode())
    assert log_tail(log).endswith("the end \u2713") and len(log_tail(log)) < 8100
    assert log_tail(tmp_path / "missing.log") == ""
    result = classify(1, [], None, log)
    assert result.log_tail.endswith("the end \u2713")
