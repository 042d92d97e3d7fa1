"""Conversations to text, through the tokenizer's chat template.

Each assistant turn is located by rendering the conversation up to it (with the generation prompt)
and up to its end: the difference is the turn, trainable; what lies between turns is prompt. Without
a model (or with one that has no chat template) the ChatML layout stands in, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.data.records import Message, Record, Segment
from harness.errors import HarnessError


def chatml(messages: Sequence[Message], *, generation_prompt: bool) -> str:
    text = "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if generation_prompt else "")


class ChatRenderer:
    """Renders conversations with a tokenizer's chat template, or ChatML when there is none;
    ``system_prompt`` is `data.system_prompt` (default, none or a text)."""

    def __init__(self, tokenizer: Any = None, *, system_prompt: str = "default") -> None:
        self.tokenizer = tokenizer if getattr(tokenizer, "chat_template", None) else None
        self.name = "the model's chat template" if self.tokenizer else "ChatML (stand-in)"
        self.system = None if system_prompt == "default" else \
            "" if system_prompt == "none" else system_prompt
        """The system text given to conversations without one; None: the template decides."""
        self._default: bool | None = None
        """Whether the template inserts a system turn of its own (found when first asked)."""

    def with_system(self, messages: Sequence[Message]) -> Sequence[Message]:
        """``messages`` with the configured system turn first, unless they have their own."""
        if self.system is None or (messages and messages[0].role == "system"):
            return messages
        if not self.system and not self._inserts_default():
            return messages  # no system turn at all is what "none" means
        return (Message("system", self.system), *messages)

    def _inserts_default(self) -> bool:
        """Whether the template renders a system turn of its own when given none: its render
        of a lone user turn begins as a render with a system turn does, up to that turn's text."""
        if self.tokenizer is None:
            return False  # ChatML inserts nothing
        if self._default is None:
            system, user = "\x02", "\x01"
            given = self._render([Message("system", system), Message("user", user)])
            alone = self._render([Message("user", user)])
            self._default = system in given and alone.startswith(given[:given.index(system)])
        return self._default

    def text(self, messages: Sequence[Message], *, generation_prompt: bool) -> str:
        if not messages and not generation_prompt:
            return ""
        messages = self.with_system(messages)
        if self.tokenizer is None:
            return chatml(messages, generation_prompt=generation_prompt)
        return self._render(messages, generation_prompt=generation_prompt)

    def _render(self, messages: Sequence[Message], *, generation_prompt: bool = False) -> str:
        assert self.tokenizer is not None  # `text` renders ChatML itself without one
        rendered = self.tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in messages],
            tokenize=False, add_generation_prompt=generation_prompt)
        return rendered if isinstance(rendered, str) else str(rendered)

    def segments(self, messages: Sequence[Message]) -> tuple[Segment, ...]:
        out: list[Segment] = []
        done = ""
        for i, message in enumerate(messages):
            if message.role != "assistant":
                continue
            prompt = self.text(messages[:i], generation_prompt=True)
            full = self.text(messages[: i + 1], generation_prompt=False)
            if not (prompt.startswith(done) and full.startswith(prompt)):
                raise HarnessError(
                    f"{self.name} does not render conversations turn by turn (a later render "
                    "does not extend an earlier one), so the assistant turns cannot be located "
                    "for masking; set data.train_on: all")
            out += [Segment(prompt[len(done):], False), Segment(full[len(prompt):], True)]
            done = full
        whole = self.text(messages, generation_prompt=False)
        if whole.startswith(done) and len(whole) > len(done):
            out.append(Segment(whole[len(done):], False))
        return tuple(s for s in out if s.text)


def render(record: Record, renderer: ChatRenderer) -> tuple[Segment, ...]:
    """The record as the text segments the model sees."""
    return record.segments if record.segments else renderer.segments(record.messages)
