"""Shapes of popular base models, from the config.json each publishes on the Hugging Face hub:
the estimate sizes a sweep of them before (or without) downloading anything."""

from __future__ import annotations

from typing import Any

from harness.config import DEFAULT_MODEL


def _shape(vocab: int, hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int,
           *, tied: bool) -> dict[str, Any]:
    return {"vocab_size": vocab, "hidden_size": hidden, "intermediate_size": intermediate,
            "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kv_heads, "tie_word_embeddings": tied}


_SMOLLM2_135M = _shape(49152, 576, 1536, 30, 9, 3, tied=True)
_QWEN25_7B = _shape(152064, 3584, 18944, 28, 28, 4, tied=False)
_LLAMA31_8B = _shape(128256, 4096, 14336, 32, 32, 8, tied=False)
_MISTRAL_7B_V03 = _shape(32768, 4096, 14336, 32, 32, 8, tied=False)

KNOWN: dict[str, dict[str, Any]] = {
    DEFAULT_MODEL: _SMOLLM2_135M,
    "HuggingFaceTB/SmolLM2-135M-Instruct": _SMOLLM2_135M,
    "HuggingFaceTB/SmolLM2-1.7B-Instruct": _shape(49152, 2048, 8192, 24, 32, 32, tied=True),
    "Qwen/Qwen2.5-0.5B-Instruct": _shape(151936, 896, 4864, 24, 14, 2, tied=True),
    "Qwen/Qwen2.5-7B": _QWEN25_7B,
    "Qwen/Qwen2.5-7B-Instruct": _QWEN25_7B,
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": _shape(32000, 2048, 5632, 22, 32, 4, tied=False),
    "meta-llama/Llama-3.1-8B": _LLAMA31_8B,
    "meta-llama/Llama-3.1-8B-Instruct": _LLAMA31_8B,
    "mistralai/Mistral-7B-v0.3": _MISTRAL_7B_V03,
    "mistralai/Mistral-7B-Instruct-v0.3": _MISTRAL_7B_V03,
}
"""Model id -> the fields of its config.json the estimate reads."""
