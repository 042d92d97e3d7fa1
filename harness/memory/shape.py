"""The shape of a base model, read from its config.json without loading a weight: a local
directory, the embedded model's converted copy, the local Hugging Face cache, the hub when it is
reachable, and, last, the shapes of a few popular bases kept here (`KNOWN`) so that a sweep of a
7B model can be sized on a machine that has never downloaded it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, first_line

LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""The linear layers of a Llama-style decoder block, as `lora.target_modules` names them."""


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs of a decoder-only transformer."""

    vocab: int
    """Tokens in the vocabulary (rows of the embedding and of the output head)."""
    hidden: int
    """Width of the residual stream."""
    intermediate: int
    """Width of the MLP's inner layer."""
    layers: int
    """Decoder blocks."""
    heads: int
    """Attention (query) heads."""
    kv_heads: int
    """Key and value heads (fewer than ``heads`` with grouped-query attention)."""
    head_dim: int
    """Width of one head."""
    tied: bool
    """The output head shares the embedding's weights."""
    source: str = ""
    """Where the shape was read (a config.json, or "known shape of NAME")."""

    def linear(self, module: str) -> tuple[int, int]:
        """(in, out) features of one of `LINEAR_MODULES`."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return {"q_proj": (self.hidden, q), "k_proj": (self.hidden, kv),
                "v_proj": (self.hidden, kv), "o_proj": (q, self.hidden),
                "gate_proj": (self.hidden, self.intermediate),
                "up_proj": (self.hidden, self.intermediate),
                "down_proj": (self.intermediate, self.hidden)}[module]

    def block_parameters(self) -> int:
        """Weights of one decoder block's linear layers."""
        return sum(i * o for i, o in map(self.linear, LINEAR_MODULES))

    def parameters(self) -> int:
        """All weights: the blocks, the embedding and (untied) the output head."""
        head = 0 if self.tied else self.vocab * self.hidden
        return self.layers * (self.block_parameters() + 2 * self.hidden) + \
            self.vocab * self.hidden + head + self.hidden


def shape_from_config(config: dict[str, Any], *, source: str) -> ModelShape:
    """A shape from the fields of a transformers config.json."""
    try:
        heads = int(config["num_attention_heads"])
        hidden = int(config["hidden_size"])
        return ModelShape(
            vocab=int(config["vocab_size"]), hidden=hidden,
            intermediate=int(config["intermediate_size"]),
            layers=int(config["num_hidden_layers"]), heads=heads,
            kv_heads=int(config.get("num_key_value_heads") or heads),
            head_dim=int(config.get("head_dim") or hidden // heads),
            tied=bool(config.get("tie_word_embeddings", False)), source=source)
    except (KeyError, TypeError, ValueError) as err:
        raise HarnessError(f"{source}: not the config of a decoder model the memory estimate "
                           f"knows (missing or bad {first_line(err)}); it reads Llama-style "
                           "configs (Llama, Qwen2, Mistral, SmolLM)") from None


def model_shape(name: str) -> ModelShape:
    """The shape of base model ``name`` (embedded name, directory or hub id), from its config
    alone."""
    from harness.memory.known import KNOWN

    path = _local_config(name)
    if path is None and name in KNOWN:  # known before the hub: no wait on a network
        return shape_from_config(KNOWN[name], source=f"known shape of {name}")
    path = path or _hub_config(name)
    if path is not None:
        try:
            return shape_from_config(json.loads(path.read_text()), source=str(path))
        except (OSError, ValueError) as err:
            raise HarnessError(f"{path}: cannot read the model's config ({first_line(err)})") \
                from None
    raise HarnessError(f"cannot size {name!r}: no config.json in a local directory, the "
                       "Hugging Face cache or the hub. Download the model (or only its "
                       "config.json) into a directory and name that as the model")


def _local_config(name: str) -> Path | None:
    """The config.json of an embedded model's converted copy, a directory, or a model in the
    local Hugging Face cache."""
    from harness.models import EMBEDDED, model_cache

    if name in EMBEDDED:
        converted = model_cache(name) / "hf" / "config.json"
        return converted if converted.is_file() else None
    if Path(name).is_dir():
        return Path(name) / "config.json"
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, "config.json")
    except ValueError:  # not a repository id
        return None
    return Path(cached) if isinstance(cached, str) else None


def _hub_config(name: str) -> Path | None:
    """The config.json alone, from the hub, when this machine may reach it."""
    from harness.models import hub_offline

    if hub_offline():
        return None
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(name, "config.json"))
    except Exception:  # unreachable, unknown or gated: said by the caller's error
        return None
