"""`data.system_prompt` through the chat template: the template's default, none, or a text,
for templates that insert a default system turn of their own and for those that do not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.random_llama import CHAT_TEMPLATE
from harness.data.records import Message, Record
from harness.data.render import ChatRenderer, render

DEFAULTING = (  # SmolLM2's layout: a system turn of its own when the conversation has none
    "{% for m in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "<|im_start|>system\nYou are SmolLM.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

CONVERSATION = Record("q.json", 0, "q.json", messages=(
    Message("user", "What is flu?"), Message("assistant", "A virus.")))
OWN_SYSTEM = Record("q.json", 1, "q.json", messages=(
    Message("system", "Be brief."), Message("user", "Hi"), Message("assistant", "Hello.")))


def tokenizer(model_dir: Path, template: str) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.chat_template = template
    return tok


def rendered(record: Record, renderer: ChatRenderer) -> str:
    return "".join(s.text for s in render(record, renderer))


@pytest.mark.parametrize("setting, expected", [
    ("default", "<|im_start|>system\nYou are SmolLM.<|im_end|>\n"),
    ("none", "<|im_start|>system\n<|im_end|>\n"),  # the template allows no less
    ("You answer medical questions.",
     "<|im_start|>system\nYou answer medical questions.<|im_end|>\n"),
])
def test_a_template_with_a_default_system_turn(tiny_model_dir: Path, setting: str,
                                               expected: str) -> None:
    renderer = ChatRenderer(tokenizer(tiny_model_dir, DEFAULTING), system_prompt=setting)
    text = rendered(CONVERSATION, renderer)
    assert text == expected + "<|im_start|>user\nWhat is flu?<|im_end|>\n" \
        "<|im_start|>assistant\nA virus.<|im_end|>\n"
    # the answer alone is trainable, whatever the system turn
    assert [s.text for s in render(CONVERSATION, renderer) if s.trainable] == [
        "A virus.<|im_end|>\n"]
    # a conversation's own system turn is kept
    assert rendered(OWN_SYSTEM, renderer).startswith("<|im_start|>system\nBe brief.")


@pytest.mark.parametrize("setting, expected", [
    ("default", ""), ("none", ""),
    ("Be kind.", "<|im_start|>system\nBe kind.<|im_end|>\n"),
])
def test_a_template_without_one(tiny_model_dir: Path, setting: str, expected: str) -> None:
    for renderer in (ChatRenderer(tokenizer(tiny_model_dir, CHAT_TEMPLATE),
                                  system_prompt=setting),
                     ChatRenderer(None, system_prompt=setting)):  # the ChatML stand-in
        assert rendered(CONVERSATION, renderer) == expected + (
            "<|im_start|>user\nWhat is flu?<|im_end|>\n<|im_start|>assistant\nA virus."
            "<|im_end|>\n")
