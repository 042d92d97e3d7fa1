"""Conversations: ShareGPT (``conversations: [{from, value}]``) and OpenAI-style
(``messages: [{role, content}]``) records, rendered later by the tokenizer's chat template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.data.records import Message, Problem, Record
from harness.data.textfile import JsonItem, read_json_records

# ShareGPT speaker names seen in the wild, and OpenAI roles, mapped onto our three roles.
ROLE_NAMES = {
    "system": "system",
    "developer": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
}

STYLES = {"conversations": ("from", "value"), "messages": ("role", "content")}


def is_conversation(value: Any) -> bool:
    return isinstance(value, dict) and any(k in value for k in STYLES)


def load_conversations(path: Path) -> tuple[list[Record], list[Problem]]:
    items, problems = read_json_records(path)
    records: list[Record] = []
    for item in items:
        try:
            records.append(_record(path, item))
        except _Bad as bad:
            problems.append(Problem(bad.reason, str(path), bad.detail + item.where(), item.index))
    return records, problems


class _Bad(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _record(path: Path, item: JsonItem) -> Record:
    value = item.value
    if not is_conversation(value):
        raise _Bad("not_a_conversation", "has neither a 'conversations' nor a 'messages' list")
    style = "conversations" if "conversations" in value else "messages"
    turns = value[style]
    if not isinstance(turns, list) or not turns:
        raise _Bad("not_a_conversation", f"'{style}' must be a non-empty list of turns")
    messages = [_message(turn, i, style) for i, turn in enumerate(turns)]
    system = value.get("system")
    if isinstance(system, str) and system.strip() and messages[0].role != "system":
        messages.insert(0, Message("system", system))
    if not any(m.role == "assistant" and m.content.strip() for m in messages):
        raise _Bad("empty_response", "has no non-empty assistant turn to learn from")
    conv_id = value.get("id")
    group = str(conv_id) if isinstance(conv_id, str | int) else f"{path}#{item.index}"
    return Record(path=str(path), index=item.index, group=group, messages=tuple(messages))


def _message(turn: Any, i: int, style: str) -> Message:
    role_key, text_key = STYLES[style]
    if not isinstance(turn, dict):
        raise _Bad("bad_turn", f"turn {i} is a {type(turn).__name__}, expected an object with "
                   f"'{role_key}' and '{text_key}'")
    name = turn.get(role_key)
    role = ROLE_NAMES.get(name.lower()) if isinstance(name, str) else None
    if role is None:
        raise _Bad("bad_turn", f"turn {i} has {role_key} {name!r}; expected one of "
                   f"{', '.join(sorted(ROLE_NAMES))}")
    return Message(role, _text(turn.get(text_key), i, text_key))


def _text(content: Any, i: int, key: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in content
    ):
        return "".join(p["text"] for p in content)
    raise _Bad("bad_turn", f"turn {i} '{key}' must be text (a string, or a list of "
               f"{{'type': 'text', 'text': ...}} parts), got {type(content).__name__}")
