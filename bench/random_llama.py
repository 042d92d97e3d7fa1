"""A Llama of a given size with random weights, saved as a local model directory the harness can
train: speed and memory do not depend on the weights, and no model hub is needed.

Sizes: ``1b`` is TinyLlama-1.1B's shape (22 layers, hidden 2048, 32 heads, 4 KV heads); ``400m``
has 16 layers of hidden 1024 (the memory bench's middle size); ``tiny``
(2 layers, hidden 64) is the dry run's. The tokenizer is the embedded model's, so the data
encodes exactly as for SmolLM2. `build_tiny_model` is smaller still: the tiny shape with a
tokenizer of 400 tokens trained in milliseconds, the test suite's model and the fault benches'.

Usage: python bench/random_llama.py DIR [--size 1b|tiny]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

SHAPES: dict[str, dict[str, int]] = {
    "1b": {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
           "num_attention_heads": 32, "num_key_value_heads": 4},
    "400m": {"hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 16,
             "num_attention_heads": 16, "num_key_value_heads": 4},
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2},
}


def llama_config(size: str) -> Any:
    """The transformers config of the Llama of ``size``, with the embedded model's tokens."""
    from transformers import LlamaConfig

    from harness.models import training_tokenizer

    tokenizer = training_tokenizer("smollm2-135m-instruct")
    return LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=2048,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
                       **SHAPES[size])


def build(path: Path, *, size: str = "1b") -> Path:
    """Write the model (bf16 where CUDA is, else fp32) and tokenizer to ``path``; returns it."""
    import torch
    from transformers import LlamaForCausalLM

    from harness.models import training_tokenizer

    tokenizer = training_tokenizer("smollm2-135m-instruct")
    config = llama_config(size)
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


CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

TINY_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "What are the symptoms of influenza? Fever, cough and aches.",
    "Instruction: answer the question. Response: yes, no, maybe.",
    "user assistant system hello world question answer",
    "Lines\nwith\nnewlines\nand more text for the tokenizer to learn.",
]


def build_tiny_tokenizer() -> Any:
    """A byte-level BPE tokenizer trained in milliseconds, with BOS, EOS and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TINY_CORPUS, trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos)]),
    ])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>",
                                   additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(path: Path) -> Path:
    """A 2-layer Llama built from LlamaConfig, saved with the tiny tokenizer: a real Hugging
    Face directory in a second (the tests' model, and the fault benches' trials)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tiny_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--size", choices=sorted(SHAPES), default="1b")
    args = parser.parse_args()
    build(args.path, size=args.size)
    print(f"{args.path}: {parameters(args.path) / 1e9:.2f} B parameters")


if __name__ == "__main__":
    main()
