"""The runner against a stand-in trial process that speaks the protocol (tests/launch/
stand_in.py): every way a trial can end classified, the watcher told each event and asked when
to stop, stops that reach a trial ignoring SIGTERM, and nothing of the trial left behind. Real
processes in their own sessions, in well under a second each."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import Recording

from harness.config import DataConfig, TrainConfig
from harness.launch.command import write_trial_config
from harness.launch.runner import Launch, fresh_events_file, run_trial
from harness.protocol import Event, Failed, Finished, Garbled, Started, Step, TrialResult
from harness.trialdir import recorded

STAND_IN = Path(__file__).with_name("stand_in.py")
STARTED = {"event": "started", "pid": 1, "total_steps": 4, "train_examples": 8,
           "eval_examples": 2, "test_examples": 2, "fingerprint": "f", "eval_fingerprint": "e",
           "test_fingerprint": "t", "profile": {}, "device": "cpu", "processes": 1,
           "trainable_parameters": 10}
FINISHED = {"event": "finished", "adapter_dir": "adapter", "peak_memory_mb": 1.0}


def stand_in(tmp_path: Path, script: list[dict[str, Any]],
             watcher: Recording | None = None, **launch: Any) -> TrialResult:
    """The stand-in run as a trial in ``tmp_path/trial`` through the runner."""
    out = tmp_path / "trial"
    write_trial_config(TrainConfig(data=DataConfig(path="data.json")), out)
    return run_trial(Launch(out, command=[sys.executable, str(STAND_IN)],
                            env={"STAND_IN": json.dumps(script)}, poll_seconds=0.02,
                            **{"grace": 5.0, **launch}), watcher)


def test_a_trial_is_followed_event_by_event_to_its_end(tmp_path: Path) -> None:
    seen: list[Event] = []
    watcher = Recording(seen.append)
    result = stand_in(tmp_path, [{"emit": STARTED}, {"sleep": 0.1}, {"emit": FINISHED}],
                      watcher)
    assert (result.reason, result.exit_code, result.message) == ("finished", 0, "")
    assert [type(e) for e in result.events] == [Started, Finished] and seen == result.events
    assert watcher.pgid is not None and watcher.pgid != os.getpgid(0)  # a session of its own
    assert {"events.jsonl", "trial.log"} <= set(recorded(tmp_path / "trial"))


@pytest.mark.parametrize(("script", "reason", "said"), [
    ([{"emit": {"event": "failed", "reason": "nan", "message": "loss became nan"}},
      {"exit": 11}], "nan", "loss became nan"),
    ([{"emit": {"event": "failed", "reason": "oom", "message": "first"}},
      {"emit": {"event": "failed", "reason": "crash", "message": "then", "rank": 1}},
      {"exit": 12}], "oom", "first"),  # in a data-parallel trial the first failure is the cause
    ([{"exit": 1}], "crash", "trial process ended with exit code 1"),  # no word from it
    ([{"exit": 0}], "crash", "exit code 0"),  # ended without finishing: no success
    ([{"emit": FINISHED}, {"exit": 1}], "crash", "exit code 1"),  # failed on its way out
    ([{"emit": STARTED}, {"kill": signal.SIGKILL}], "killed", "exit code -9"),
])
def test_every_ending_is_classified_by_its_events_and_exit_code(
        tmp_path: Path, script: list[dict[str, Any]], reason: str, said: str) -> None:
    result = stand_in(tmp_path, script)
    assert result.reason == reason and said in result.message
    assert not result.interrupted


def test_a_trial_the_watcher_stops_ends_for_the_watchers_reason(tmp_path: Path) -> None:
    seen: list[Event] = []
    result = stand_in(tmp_path, [{"train": True}], Recording(
        seen.append, lambda: "pruned" if any(isinstance(e, Step) for e in seen) else None))
    assert result.reason == "pruned" and result.exit_code == 13
    failed = result.last(Failed)  # the child's own last word is kept
    assert failed is not None and failed.reason == "killed"
    assert result.message == "stopped by SIGTERM" and not result.interrupted


def test_an_interrupted_parent_ends_its_trial_killed(tmp_path: Path) -> None:
    result = stand_in(tmp_path, [{"train": True}], Recording(stop=lambda: "interrupted"))
    assert result.reason == "killed" and result.interrupted


def test_ctrl_c_while_following_stops_the_trial_and_says_so(tmp_path: Path) -> None:
    def interrupt(event: Event) -> None:
        if isinstance(event, Step):
            raise KeyboardInterrupt

    result = stand_in(tmp_path, [{"train": True}], Recording(interrupt))
    assert result.reason == "killed" and result.interrupted
    assert isinstance(result.last(Failed), Failed)  # stopped cleanly, its event read after


def test_a_trial_past_its_timeout_is_stopped(tmp_path: Path) -> None:
    result = stand_in(tmp_path, [{"train": True}], timeout=0.3)
    assert result.reason == "timeout"


def test_a_trial_that_ignores_sigterm_is_killed_after_its_grace(tmp_path: Path) -> None:
    seen: list[Event] = []
    result = stand_in(tmp_path, [{"ignore_sigterm": True}, {"train": True}], Recording(
        seen.append, lambda: "pruned" if seen else None), grace=0.3)
    assert result.reason == "pruned" and result.exit_code == -signal.SIGKILL
    assert result.last(Failed) is None  # it never said a word


def test_nothing_the_trial_started_outlives_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    result = stand_in(tmp_path, [{"grandchild": str(pid_file)}, {"exit": 0}])
    assert result.reason == "crash"
    grandchild = int(pid_file.read_text())
    for _ in range(200):  # SIGKILL is delivered at once; the kernel may take a moment to reap
        if ended(grandchild):
            break
        time.sleep(0.05)
    assert ended(grandchild)


def ended(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_line_that_is_no_event_reaches_the_watcher_as_garbled(tmp_path: Path) -> None:
    seen: list[Event] = []
    stand_in(tmp_path, [{"raw": "Traceback (most recent call last):"}, {"emit": FINISHED}],
             Recording(seen.append))
    assert seen[0] == Garbled(line="Traceback (most recent call last):")
    assert isinstance(seen[1], Finished)


def test_a_resumed_run_keeps_the_earlier_events_under_a_numbered_name(tmp_path: Path) -> None:
    first = fresh_events_file(tmp_path)
    first.write_text('{"event": "started"}\n')
    again = fresh_events_file(tmp_path)
    assert again == first and again.read_text() == ""
    assert (tmp_path / "events.1.jsonl").read_text() == '{"event": "started"}\n'
    assert {"events.jsonl", "events.1.jsonl"} <= set(recorded(tmp_path))
