from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.data.messages import load_conversations
from harness.data.records import Message


def write_jsonl(tmp_path: Path, rows: list[object]) -> Path:
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_sharegpt_and_openai_styles_become_the_same_messages(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path, [
        {"id": "c1", "system": "Be brief.",
         "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
        {"messages": [{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                      {"role": "assistant", "content": "Hello"}]},
    ])
    records, problems = load_conversations(path)
    assert problems == []
    expected = (Message("system", "Be brief."), Message("user", "Hi"),
                Message("assistant", "Hello"))
    assert records[0].messages == expected and records[1].messages == expected
    assert records[0].group == "c1" and records[1].group == f"{path}#1"


@pytest.mark.parametrize("row, reason, fragment", [
    ({"conversations": [{"from": "robot", "value": "x"}]}, "bad_turn", "turn 0 has from 'robot'"),
    ({"messages": [{"role": "user", "content": 5}]}, "bad_turn", "must be text"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "bad_turn",
     "must be text"),
    ({"messages": ["hello"]}, "bad_turn", "turn 0 is a str"),
    ({"messages": []}, "not_a_conversation", "non-empty list"),
    ({"text": "x"}, "not_a_conversation", "neither"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": " "}]},
     "empty_response", "no non-empty assistant turn"),
])
def test_bad_conversations_name_record_and_turn(tmp_path: Path, row: object, reason: str,
                                                fragment: str) -> None:
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    records, problems = load_conversations(write_jsonl(tmp_path, [good, row]))
    assert len(records) == 1
    (p,) = problems
    assert (p.reason, p.record) == (reason, 1)
    assert fragment in p.detail and "line 2" in p.detail
