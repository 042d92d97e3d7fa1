"""Prompts cut from records where the model's answer begins, with the reference answer and what
was asked, for the comparison samples and the answer metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.data.records import Record
from harness.data.render import ChatRenderer, render


@dataclass(frozen=True)
class Prompt:
    text: str
    """The prompt as the model sees it (chat template, system prompt and all)."""
    question: str
    """What was asked, as a person reads it: the last user turn, or the prompt's own text."""
    reference: str
    """The record's answer, without the template's special tokens."""
    origin: str
    """file#index of the record."""


def sample_prompts(records: Sequence[Record], renderer: ChatRenderer, count: int, *,
                   special: Sequence[str] = ()) -> list[Prompt]:
    """``count`` eval records cut where the model's answer begins, one per source document
    before a second from any (`spread`). ``special`` are the tokenizer's special tokens,
    taken off the reference's ends."""
    prompts: list[Prompt] = []
    for rec in spread(records):
        if len(prompts) == count:
            break
        segments = render(rec, renderer)
        first = next((i for i, s in enumerate(segments) if s.trainable), None)
        if first is None or first == 0:
            continue
        text = "".join(s.text for s in segments[:first])
        prompts.append(Prompt(text, question_of(rec, text),
                              strip_special(segments[first].text, special),
                              f"{rec.path}#{rec.index}"))
    return prompts


def spread(records: Sequence[Record]) -> list[Record]:
    """The records in rounds: each document's first, then each one's second, ... (in the order
    documents first appear), so that a few samples cover as many documents as they can."""
    by_group: dict[str, list[Record]] = {}
    for rec in records:
        by_group.setdefault(rec.group, []).append(rec)
    rounds = max((len(g) for g in by_group.values()), default=0)
    return [g[i] for i in range(rounds) for g in by_group.values() if i < len(g)]


def question_of(record: Record, prompt: str) -> str:
    """The last user turn before the first answer; a text prompt (a format file's) as it is."""
    if record.messages:
        first = next(i for i, m in enumerate(record.messages) if m.role == "assistant")
        asked = [m.content for m in record.messages[:first] if m.role == "user"]
        if asked:
            return asked[-1]
    return prompt.strip()


def strip_special(text: str, special: Sequence[str]) -> str:
    """``text`` without special tokens (``<|im_end|>``, ``</s>``) at its ends."""
    tokens = sorted((t for t in special if t), key=len, reverse=True)
    text = text.strip()
    changed = True
    while changed:
        changed = False
        for token in tokens:
            if text.endswith(token):
                text, changed = text[:-len(token)].rstrip(), True
            if text.startswith(token):
                text, changed = text[len(token):].lstrip(), True
    return text


