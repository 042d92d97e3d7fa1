"""A Llama of a given size with random weights, saved as a local model directory the harness can
train: speed and memory do not depend on the weights, and no model hub is needed.

Sizes: ``1b`` is TinyLlama-1.1B's shape (22 layers, hidden 2048, 32 heads, 4 KV heads); ``tiny``
(2 layers, hidden 64) is the dry run's. The tokenizer is the embedded model's, so the data
encodes exactly as for SmolLM2.

Usage: python bench/random_llama.py DIR [--size 1b|tiny]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

SHAPES: dict[str, dict[str, int]] = {
    "1b": {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
           "num_attention_heads": 32, "num_key_value_heads": 4},
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2},
}


def build(path: Path, *, size: str = "1b") -> Path:
    """Write the model (bf16 where CUDA is, else fp32) and tokenizer to ``path``; returns it."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from harness.models import training_tokenizer

    tokenizer = training_tokenizer("smollm2-135m-instruct")
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=2048,
                         bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
                         **SHAPES[size])
    torch.manual_seed(0)
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model: Any = LlamaForCausalLM(config).to(dtype)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def parameters(path: Path) -> int:
    """The parameter count a model directory's config describes (without loading weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path))
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--size", choices=sorted(SHAPES), default="1b")
    args = parser.parse_args()
    build(args.path, size=args.size)
    print(f"{args.path}: {parameters(args.path) / 1e9:.2f} B parameters")


if __name__ == "__main__":
    main()
