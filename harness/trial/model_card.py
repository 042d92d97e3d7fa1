"""The adapter's README.md: a model card in place of PEFT's blank template. It names the base
model as people know it (not this machine's path to it), the data by path and fingerprint, the
settings, every figure with the split it was measured on, and how to load the adapter."""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.config import TrainConfig
from harness.models import EMBEDDED, hub_id, peft_snippet
from harness.protocol import HeldOut, HeldOutTest, Retention
from harness.trial.selection import Choice


@dataclass(frozen=True)
class Figure:
    """A number the card reports, and where it was measured."""

    name: str
    shown: str
    """The value as the card writes it."""
    split: str
    """eval, test or general text."""
    note: str = ""


def figures_of(*, choice: Choice | None, held_out: list[HeldOut]) -> list[Figure]:
    """The figures of the adapter kept: its epoch's eval loss, its test loss (with its
    interval) and task metrics beside the base model's, and its general-text loss change."""
    out = []
    if choice is not None:
        out.append(Figure("loss", f"{choice.loss:.4f}", "eval", f"epoch {choice.epoch:g} kept"))
        for name, value in (choice.answers or {}).items():
            out.append(Figure(name, f"{value:.4f}", "eval", f"epoch {choice.epoch:g} kept"))
    for event in held_out:
        if isinstance(event, HeldOutTest):
            ci = f"±{event.ci95:.4f} (95 %), " if math.isfinite(event.ci95) else ""
            out.append(Figure("loss", f"{event.loss:.4f}", "test", f"{ci}base model "
                              f"{event.base_loss:.4f}, {event.examples} examples"))
            for name, value in (event.answers or {}).items():
                base = (event.base_answers or {}).get(name, math.nan)
                out.append(Figure(name, f"{value:.4f}", "test", f"base model {base:.4f}"))
        elif isinstance(event, Retention):
            out.append(Figure("loss change against the base model", f"{event.change:+.1%}",
                              "general text", f"{event.loss:.4f} against {event.base_loss:.4f}"))
    return out


def model_card(config: TrainConfig, *, fingerprint: str, figures: list[Figure]) -> str:
    """The card's Markdown, with front matter the Hugging Face hub reads."""
    hub = hub_id(config.model)
    rows = "\n".join(f"| {f.name} | {f.shown} | {f.split} | {f.note} |" for f in figures)
    return f"""---
base_model: {hub}
library_name: peft
pipeline_tag: text-generation
tags:
- lora
- harness
---

# LoRA adapter on {config.model}

{_what(config, fingerprint=fingerprint)}

## Figures

| figure | value | measured on | note |
| --- | ---: | --- | --- |
{rows}

The eval split chose the epoch kept; the test split decided nothing and is the honest figure.

## Use

```python
{peft_snippet(config.model, "path/to/this/directory")}
```

Or, with the harness: `harness pull NAME@champion --out DIR`, or `harness eval base DIR --data
FILE` to score it against its base model on data of your own.
"""


def _what(config: TrainConfig, *, fingerprint: str) -> str:
    """The base model, the data, the adapter and the training, as a list."""
    hub = hub_id(config.model)
    base_line = (f"`{config.model}`, the harness's embedded copy of [{hub}]"
                 f"(https://huggingface.co/{hub}) (converted from its GGUF file)"
                 if config.model in EMBEDDED else f"`{config.model}`")
    quant = config.quantization
    loaded = "full precision" if quant.mode == "none" else (
        "8-bit (LLM.int8)" if quant.mode == "8bit" else f"4-bit {quant.quant_type}")
    lora, t = config.lora, config.training
    targets = lora.target_modules if isinstance(lora.target_modules, str) else \
        ", ".join(lora.target_modules)
    return f"""- **Base model:** {base_line}, loaded in {loaded} for training.
- **Data:** `{config.data.path}` (format {config.data.format}), dataset fingerprint
  `{fingerprint[:32]}`; split into train, eval and test by source document (seed
  {config.data.seed}).
- **Adapter:** LoRA r={lora.r}, alpha={lora.alpha:g}, dropout={lora.dropout:g} on {targets}.
- **Training:** learning rate {t.learning_rate:g}, {_length(config)}, micro-batch
  {t.micro_batch_size} x {t.gradient_accumulation} accumulation, {t.scheduler} schedule, seed
  {t.seed}. Every setting is in `train_config.json` beside this file."""


def _length(config: TrainConfig) -> str:
    t = config.training
    return f"{t.max_steps} steps" if t.max_steps > 0 else f"up to {t.epochs:g} epochs"
