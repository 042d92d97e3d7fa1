"""Comparison samples: batched generation gives the completions of one prompt at a time, and the
base model's completions are cached by everything they depend on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from harness.cache import write_json
from harness.config import SampleSettings
from harness.trial.samples import (
    SAMPLE_BATCH,
    Prompt,
    base_samples_entry,
    generate,
    read_base_samples,
)

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
    prompts = [Prompt(text, "", f"p{i}") for i, text in enumerate(PROMPTS)]
    # stop on a token the first completion makes early, so rows of one batch end apart
    first = model.generate(**tokenizer(PROMPTS[0], return_tensors="pt"), max_new_tokens=4,
                           do_sample=False, pad_token_id=tokenizer.pad_token_id)
    model.generation_config.eos_token_id = int(first[0, -2])
    alone = one_at_a_time(model, tokenizer, prompts, settings)
    lengths = {len(a) for a in alone}
    assert len(lengths) > 1, alone  # the rows really did end at different lengths
    batched = generate(model, tokenizer, prompts, settings, chat=False, device="cpu")
    assert batched == alone


def test_more_prompts_than_a_batch_keep_their_order(tiny_model_dir: Path) -> None:
    model, tokenizer = tiny_lora(tiny_model_dir)
    settings = SampleSettings(count=SAMPLE_BATCH + 3, max_new_tokens=4)
    prompts = [Prompt(PROMPTS[i % len(PROMPTS)] + " " * (i // len(PROMPTS)), "", str(i))
               for i in range(SAMPLE_BATCH + 3)]
    batched = generate(model, tokenizer, prompts, settings, chat=False, device="cpu")
    assert batched == one_at_a_time(model, tokenizer, prompts, settings)


def test_the_base_samples_cache_is_keyed_by_all_they_depend_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.config import TrainConfig, from_mapping

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    config = from_mapping(TrainConfig, {"data": {"path": "d.json"}})
    prompts = [Prompt("a question", "an answer", "d.json#0")]
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
            p = [Prompt("another question", "an answer", "d.json#1")]
        else:
            changed.model = "another-model"
        others.append(base_samples_entry(changed, prompts=p, chat=True))
    assert len({path, *others}) == 5

    assert read_base_samples(path, 1) is None
    write_json(path, {"outputs": ["an output"]})
    assert read_base_samples(path, 1) == ["an output"]
    assert read_base_samples(path, 2) is None  # a count that does not match is not trusted
    path.write_text("{torn")
    assert read_base_samples(path, 1) is None
