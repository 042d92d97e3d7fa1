"""The parent-child protocol: events round-trip through their JSON lines, complete lines only,
in order, across torn writes; what is not an event is reported, not dropped; every way a trial
ends has its own exit code."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import get_args

from harness.protocol import (
    EXIT_CODES,
    KINDS,
    Ending,
    Eval,
    EventReader,
    EventWriter,
    Failed,
    Failure,
    Garbled,
    HeldOutTest,
    RankEvents,
    Reason,
    Started,
    Step,
    TrialResult,
    decode,
    encode,
    exit_code,
)


def test_a_poll_returns_the_events_written_since_the_last(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    reader = EventReader(path)
    assert reader.poll() == []  # the child has not created it yet
    writer = EventWriter(path)
    writer.emit(Eval(step=4, loss=2.5, perplexity=12.2, perplexity_ratio_to_base=0.9))
    writer.emit(Failed(reason="nan", message="loss became nan"))
    assert [type(e) for e in reader.poll()] == [Eval, Failed]
    assert reader.poll() == []
    writer.emit(Eval(step=8, loss=2.4, perplexity=11.0, perplexity_ratio_to_base=0.8))
    (event,) = reader.poll()
    assert isinstance(event, Eval) and event.step == 8 and event.loss == 2.4
    assert event.time > 0  # stamped when written
    writer.close()


def test_a_line_holds_the_kind_the_time_and_the_fields_set() -> None:
    line = json.loads(encode(Failed(reason="oom", message="out of memory"), now=12.5))
    assert line == {"event": "failed", "time": 12.5, "reason": "oom",
                    "message": "out of memory"}  # fields left None are not written


def test_every_kind_round_trips_through_its_line() -> None:
    for kind, cls in KINDS.items():
        fields: dict[str, object] = {name: 1 for name in cls.__dataclass_fields__
                                     if name != "time"}
        if cls is Failed:
            fields["reason"] = "oom"
        event = decode(json.dumps({"event": kind, "time": 3.0, **fields}).encode())
        assert type(event) is cls and event.time == 3.0, kind
        assert decode(encode(event).encode()) == event


def test_a_line_written_in_two_parts_is_read_once_whole(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    line = encode(Eval(step=8, loss=2.3, perplexity=10.0, perplexity_ratio_to_base=1.0),
                  now=1.0) + "\n"
    reader = EventReader(path)
    with open(path, "w") as f:
        f.write(line[:10])
        f.flush()
        assert reader.poll() == []
        f.write(line[10:] + '{"event": "fail')
        f.flush()
        assert reader.poll() == [Eval(step=8, loss=2.3, perplexity=10.0,
                                      perplexity_ratio_to_base=1.0, time=1.0)]
        f.write('ed", "reason": "crash", "message": "x"}\n')
    assert reader.poll() == [Failed(reason="crash", message="x")]


def test_what_is_not_an_event_is_reported_garbled_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('not json\n{"event": "eval", "step": 1}\n{"event": "unheard-of"}\n'
                    '[1, 2]\n{"event": ["started"]}\n')
    events = EventReader(path).poll()
    assert all(isinstance(e, Garbled) for e in events) and len(events) == 5
    assert events[0].line == "not json"  # type: ignore[attr-defined]


def test_a_nan_loss_survives_the_line() -> None:
    event = decode(encode(Step(step=1, total_steps=2, loss=math.nan, learning_rate=1e-4,
                               grad_norm=1.0, tokens=8, padding_efficiency=1.0,
                               tokens_per_second=10.0, epoch=0.5)).encode())
    assert isinstance(event, Step) and math.isnan(event.loss)


def test_other_ranks_report_only_how_they_failed(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    rank = RankEvents(EventWriter(path), 3)
    rank.emit(Eval(step=1, loss=1.0, perplexity=2.7, perplexity_ratio_to_base=1.0))
    rank.emit(Failed(reason="crash", message="boom"))
    rank.close()
    (event,) = EventReader(path).poll()
    assert isinstance(event, Failed) and event.rank == 3 and event.message == "boom"


def test_every_ending_has_an_exit_code_and_each_process_ending_its_own() -> None:
    assert set(EXIT_CODES) == set(get_args(Ending)) == {"finished", *get_args(Failure)}
    assert EXIT_CODES["finished"] == 0
    assert len(set(EXIT_CODES.values())) == len(EXIT_CODES)
    codes = {reason: exit_code(reason) for reason in get_args(Reason)}
    assert codes["pruned"] == codes["timeout"] == codes["killed"]  # stopped as SIGTERM stops


def test_a_failure_that_is_no_failure_is_no_event() -> None:
    line = b'{"event": "failed", "reason": "bored", "message": "x"}'
    assert isinstance(decode(line), Garbled)


def test_a_result_finds_its_first_and_last_event_of_a_kind() -> None:
    first = HeldOutTest(step=4, loss=2.0, perplexity=7.4, base_loss=2.5, base_perplexity=12.2,
                 change=-0.2)
    last = HeldOutTest(step=8, loss=1.9, perplexity=6.7, base_loss=2.5, base_perplexity=12.2,
                change=-0.24)
    result = TrialResult("finished", 0, [first, Garbled(line="x"), last])
    assert result.last(HeldOutTest) == last and result.first(HeldOutTest) == first
    assert result.last(Started) is None and result.ok
