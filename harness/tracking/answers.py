"""A model's greedy answer to a question asked as a user turn: how `harness pull` and `harness
export` check that an adapter loads and answers, and that a merged model answers as base +
adapter does."""

from __future__ import annotations

from typing import Any

NEW_TOKENS = 24
"""Tokens of each check answer: enough to tell two models apart, few enough for a CPU."""


def greedy(model: Any, tokenizer: Any, prompt: str, *, new_tokens: int = NEW_TOKENS) -> list[int]:
    """The token ids of ``model``'s greedy answer to ``prompt`` (through the chat template when
    the tokenizer has one)."""
    import torch

    if tokenizer.chat_template:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                            add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
    else:
        ids = tokenizer(prompt, return_tensors="pt")
    ids = {k: v.to(model.device) for k, v in ids.items()}
    with torch.no_grad():
        output = model.generate(**ids, max_new_tokens=new_tokens, do_sample=False,
                                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    answer: list[int] = output[0, ids["input_ids"].shape[1]:].tolist()
    return answer
