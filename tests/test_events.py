"""The child-to-parent event channel: complete lines only, in order, across torn writes, and
earlier runs' events kept when a trial is resumed."""

from __future__ import annotations

import json
from pathlib import Path

from harness.events import EventReader, EventWriter, fresh_events_file
from harness.trialdir import recorded


def test_a_poll_returns_the_complete_lines_written_since_the_last(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    reader = EventReader(path)
    assert reader.poll() == []  # the child has not created it yet
    writer = EventWriter(path)
    writer.emit("started", total_steps=4)
    writer.emit("step", step=1, loss=2.5)
    assert [e["event"] for e in reader.poll()] == ["started", "step"]
    assert reader.poll() == []
    writer.emit("step", step=2, loss=2.4)
    (event,) = reader.poll()
    assert event["step"] == 2 and event["loss"] == 2.4
    writer.close()


def test_a_line_written_in_two_parts_is_read_once_whole(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    line = json.dumps({"event": "eval", "step": 8, "loss": 2.3}) + "\n"
    reader = EventReader(path)
    with open(path, "w") as f:
        f.write(line[:10])
        f.flush()
        assert reader.poll() == []
        f.write(line[10:] + '{"event": "ste')
        f.flush()
        assert reader.poll() == [{"event": "eval", "step": 8, "loss": 2.3}]
        f.write('p", "step": 9}\n')
    assert reader.poll() == [{"event": "step", "step": 9}]


def test_a_garbled_line_is_reported_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"event": "started"}\nnot json\n')
    events = EventReader(path).poll()
    assert events[0] == {"event": "started"}
    assert events[1]["event"] == "garbled" and events[1]["line"] == "not json"


def test_a_resumed_run_keeps_the_earlier_events_under_a_numbered_name(tmp_path: Path) -> None:
    first = fresh_events_file(tmp_path)
    first.write_text('{"event": "started"}\n')
    again = fresh_events_file(tmp_path)
    assert again == first and again.read_text() == ""
    assert (tmp_path / "events.1.jsonl").read_text() == '{"event": "started"}\n'
    assert {"events.jsonl", "events.1.jsonl"} <= set(recorded(tmp_path))
