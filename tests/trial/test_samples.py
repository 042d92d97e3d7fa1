"""Comparison samples: batched generation gives the completions of one prompt at a time, and the
base model's completions are cached by everything they depend on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from harness.cache import write_json
from harness.config import SampleSettings
from harness.trial.answers import read_cached_answers
from harness.trial.generation import GENERATE_BATCH, generate
from harness.trial.prompts import Prompt
from harness.trial.samples import base_samples_entry

PROMPTS = ["What are the symptoms of influenza?", "Hello", "The quick brown fox jumps over",
           "Instruction: answer the question. Response:", "user assistant system"]


def tiny_lora(model_dir: Path) -> tuple[Any, Any]:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                            init_lora_weights=False))
    return model, AutoTokenizer.from_pretrained(model_dir)


@torch.no_grad()
def one_at_a_time(model: Any, tokenizer: Any, prompts: list[Prompt],
                  settings: SampleSettings) -> list[str]:
    """The reference: one `generate` call per prompt, no padding anywhere."""
    out = []
    for p in prompts:
        enc = tokenizer(p.text, return_tensors="pt")
        ids = model.generate(**enc, max_new_tokens=settings.max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, temperature=None, top_p=None,
                             top_k=None)
        out.append(tokenizer.decode(ids[0][enc["input_ids"].shape[1]:],
                                    skip_special_tokens=True).strip())
    return out


def test_batched_greedy_completions_are_those_of_one_prompt_at_a_time(
        tiny_model_dir: Path) -> None:
    model, tokenizer = tiny_lora(tiny_model_dir)
    model.eval()
    settings = SampleSettings(count=len(PROMPTS), max_new_tokens=12)
    prompts = [Prompt(text, text, "", f"p{i}") for i, text in enumerate(PROMPTS)]
    # stop on a token the first completion makes early, so rows of one batch end apart
    first = model.generate(**tokenizer(PROMPTS[0], return_tensors="pt"), max_new_tokens=4,
                           do_sample=False, pad_token_id=tokenizer.pad_token_id)
    model.generation_config.eos_token_id = int(first[0, -2])
    alone = one_at_a_time(model, tokenizer, prompts, settings)
    lengths = {len(a) for a in alone}
    assert len(lengths) > 1, alone  # the rows really did end at different lengths
    batched = generate(model, tokenizer, [p.text for p in prompts],
                       max_new_tokens=settings.max_new_tokens, chat=False, device="cpu")
    assert batched == alone


def test_more_prompts_than_a_batch_keep_their_order(tiny_model_dir: Path) -> None:
    model, tokenizer = tiny_lora(tiny_model_dir)
    settings = SampleSettings(count=GENERATE_BATCH + 3, max_new_tokens=4)
    # of every length, so that taking them longest first reorders them across batches
    prompts = [Prompt(" ".join(PROMPTS[:1 + i % len(PROMPTS)]) + "!" * i, "", "", str(i))
               for i in range(GENERATE_BATCH + 3)]
    batched = generate(model, tokenizer, [p.text for p in prompts], max_new_tokens=4,
                       chat=False, device="cpu", batch_size=GENERATE_BATCH)
    assert batched == one_at_a_time(model, tokenizer, prompts, settings)


def test_the_base_samples_cache_is_keyed_by_all_they_depend_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.config import TrainConfig, from_mapping

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    config = from_mapping(TrainConfig, {"data": {"path": "d.json"}})
    prompts = [Prompt("a question", "a question", "an answer", "d.json#0")]
    path = base_samples_entry(config, prompts=prompts, chat=True)
    assert path == base_samples_entry(config, prompts=prompts, chat=True)
    assert path.is_relative_to(tmp_path)
    config.lora.r = 64  # the adapter's settings never change the base model's outputs
    config.training.learning_rate = 1.0
    assert path == base_samples_entry(config, prompts=prompts, chat=True)
    others = []
    for change in ("quantization", "decoding", "prompts", "model"):
        changed = from_mapping(TrainConfig, {"data": {"path": "d.json"}})
        p = prompts
        if change == "quantization":
            changed.quantization.mode = "8bit"
        elif change == "decoding":
            changed.samples.max_new_tokens += 1
        elif change == "prompts":
            p = [Prompt("another question", "another question", "an answer", "d.json#1")]
        else:
            changed.model = "another-model"
        others.append(base_samples_entry(changed, prompts=p, chat=True))
    assert len({path, *others}) == 5

    assert read_cached_answers(path, 1) is None
    write_json(path, {"outputs": ["an output"]})
    assert read_cached_answers(path, 1) == ["an output"]
    assert read_cached_answers(path, 2) is None  # a count that does not match is not trusted
    path.write_text("{torn")
    assert read_cached_answers(path, 1) is None


def _qa(group: str, index: int) -> Any:
    from harness.data.records import Message, Record

    return Record(f"{group}.xml", index, group, messages=(
        Message("user", f"Question {index} of {group}?"),
        Message("assistant", f"Answer {index}.")))


def test_samples_show_the_question_and_a_clean_reference_from_distinct_documents() -> None:
    from harness.data.render import ChatRenderer
    from harness.trial.prompts import sample_prompts

    records = [_qa("a", 0), _qa("a", 1), _qa("a", 2), _qa("b", 0), _qa("c", 0), _qa("c", 1)]
    prompts = sample_prompts(records, ChatRenderer(None), 4, special=["<|im_end|>"])
    # one from each document before a second from any
    assert [p.origin for p in prompts] == ["a.xml#0", "b.xml#0", "c.xml#0", "a.xml#1"]
    first = prompts[0]
    assert first.question == "Question 0 of a?"
    assert first.text.endswith("<|im_start|>assistant\n") and "<|im_start|>user" in first.text
    assert first.reference == "Answer 0."  # no <|im_end|>


def test_mean_rouge_of_base_and_adapter_and_the_gain() -> None:
    from harness.trial.samples import comparison_rows, rouge_summary

    prompts = [Prompt("p", "q", "the flu is a virus", "x#0"), Prompt("p", "q", "rest", "x#1")]
    rows = comparison_rows(prompts, ["xyz", "rest"], ["the flu is a virus", "rest"])
    assert list(rows[0])[:4] == ["question", "reference", "base", "adapter"]
    summary = rouge_summary(rows)
    assert summary["rougeL_adapter"] == pytest.approx(1.0)
    assert summary["rougeL_base"] == pytest.approx(0.5)
    assert summary["rougeL_gain"] == pytest.approx(0.5)
