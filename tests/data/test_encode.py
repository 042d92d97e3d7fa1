from __future__ import annotations

from typing import Any

import pytest

from harness.data.encode import IGNORE_INDEX, encode_all, encode_record
from harness.data.records import Message, Record, Segment
from harness.data.render import ChatRenderer, chatml
from harness.errors import HarnessError

PROMPT = "Instruction: answer the question.\nResponse: "
RESPONSE = "yes, the quick fox."


def alpaca_record() -> Record:
    return Record("f", 0, "g", segments=(Segment(PROMPT, False), Segment(RESPONSE, True)))


def trained_text(tok: Any, ids: list[int], labels: list[int]) -> str:
    return tok.decode([i for i, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX])


def test_prompt_tokens_are_masked_and_response_trained(tiny_tokenizer) -> None:
    enc = encode_record(alpaca_record(), tiny_tokenizer, ChatRenderer(tiny_tokenizer),
                        cutoff_len=256, train_on="response")
    assert enc.input_ids[0] == tiny_tokenizer.bos_token_id
    assert enc.labels[0] == IGNORE_INDEX
    assert enc.input_ids[-1] == tiny_tokenizer.eos_token_id == enc.labels[-1]
    # The token that straddles the boundary (" yes") is trained: the response's first word
    # is never lost to masking.
    assert trained_text(tiny_tokenizer, enc.input_ids, enc.labels) == " " + RESPONSE + "</s>"
    assert tiny_tokenizer.decode(enc.input_ids[1:]) == PROMPT + RESPONSE + "</s>"


def test_train_on_all_trains_every_text_token(tiny_tokenizer) -> None:
    enc = encode_record(alpaca_record(), tiny_tokenizer, ChatRenderer(tiny_tokenizer),
                        cutoff_len=256, train_on="all")
    assert enc.labels[0] == IGNORE_INDEX  # the BOS the tokenizer adds
    assert enc.labels[1:] == enc.input_ids[1:]


def test_truncation_keeps_the_start_and_counts_the_full_length(tiny_tokenizer) -> None:
    enc = encode_record(alpaca_record(), tiny_tokenizer, ChatRenderer(tiny_tokenizer),
                        cutoff_len=8, train_on="all")
    assert len(enc.input_ids) == len(enc.labels) == 8 and enc.truncated and enc.length > 8


def test_a_prompt_past_the_cutoff_leaves_nothing_to_train(tiny_tokenizer) -> None:
    kept, dropped = encode_all([alpaca_record()], tiny_tokenizer, ChatRenderer(tiny_tokenizer),
                               cutoff_len=8, train_on="response")
    assert kept == [] and dropped[0].reason == "no_trainable_tokens"


def test_raw_text_chunks_get_no_end_of_sequence(tiny_tokenizer) -> None:
    chunk = Record("t", 0, "g", segments=(Segment("Lines\nwith", True),), ends_text=False)
    enc = encode_record(chunk, tiny_tokenizer, ChatRenderer(tiny_tokenizer), cutoff_len=64,
                        train_on="response")
    assert tiny_tokenizer.eos_token_id not in enc.input_ids


CONVERSATION = (Message("system", "Be brief."), Message("user", "hello"),
                Message("assistant", "world"), Message("user", "question"),
                Message("assistant", "answer"))


def test_every_assistant_turn_is_trained_and_nothing_else(tiny_tokenizer) -> None:
    record = Record("c", 0, "g", messages=CONVERSATION)
    enc = encode_record(record, tiny_tokenizer, ChatRenderer(tiny_tokenizer), cutoff_len=256,
                        train_on="response")
    whole = tiny_tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in CONVERSATION], tokenize=False)
    assert tiny_tokenizer.decode(enc.input_ids) == whole
    assert trained_text(tiny_tokenizer, enc.input_ids, enc.labels) == (
        "world<|im_end|>\nanswer<|im_end|>\n")
    assert tiny_tokenizer.bos_token_id not in enc.input_ids  # the template owns special tokens


def test_without_a_model_chatml_stands_in() -> None:
    renderer = ChatRenderer(None)
    segs = renderer.segments(CONVERSATION[1:3])
    assert "".join(s.text for s in segs) == chatml(CONVERSATION[1:3], generation_prompt=False)
    assert [s.text for s in segs if s.trainable] == ["world<|im_end|>\n"]
    assert "stand-in" in renderer.name


class UnstableTemplate:
    """A template that drops earlier assistant turns, as some 'thinking' templates do."""

    chat_template = "x"

    def apply_chat_template(self, messages: list[dict[str, str]], *, tokenize: bool,
                            add_generation_prompt: bool) -> str:
        kept = [m for m in messages[:-1] if m["role"] != "assistant"] + messages[-1:]
        text = "".join(f"[{m['role']}]{m['content']}" for m in kept)
        return text + ("[assistant]" if add_generation_prompt else "")


def test_a_template_that_is_not_turn_by_turn_is_a_clear_error() -> None:
    with pytest.raises(HarnessError, match="train_on: all"):
        ChatRenderer(UnstableTemplate()).segments(CONVERSATION)
