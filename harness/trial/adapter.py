"""The final adapter directory: plain PEFT adapter files and an MLflow transformers model in one.

One directory serves both uses without storing the weights twice:

- ``adapter_model.safetensors``, ``adapter_config.json``, tokenizer files and
  ``train_config.json`` at its root, so ``PeftModel.from_pretrained(base, DIR)`` works on it
  (and on what ``mlflow artifacts download`` returns for it);
- ``MLmodel`` and ``components/`` written by ``mlflow.transformers.save_model``, with the flavor's
  PEFT adapter directory pointed at the root, so ``mlflow.transformers.load_model`` returns a
  text-generation pipeline of base + adapter. A base model that lives in a local directory is
  referenced by path (``base_model_path``; pass another one to ``load_model`` on other machines);
  a hub model is referenced by its id.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.config import TrainConfig
from harness.trialdir import ADAPTER_DIR, CONFIG_FILE, config_json, put_in_place, scratch

REQUIREMENTS = ("torch", "transformers", "peft", "accelerate", "mlflow", "safetensors")


def save_adapter(config: TrainConfig, model: Any, tokenizer: Any, out: Path,
                 base_path: str, card: str | None = None) -> Path:
    """Write ``out/adapter`` atomically: a temp directory renamed into place when complete;
    ``card`` is its README.md (in place of PEFT's blank template)."""
    tmp = scratch(out, ADAPTER_DIR)
    tmp.rmdir()  # MLflow wants to create the model directory itself
    save_mlflow_model(model, tokenizer, tmp, base_path)
    tokenizer.save_pretrained(tmp)
    if card is not None:
        (tmp / "README.md").write_text(card)
    (tmp / CONFIG_FILE).write_text(config_json(config))  # names the base model for pull
    put_in_place(out, tmp, entry=ADAPTER_DIR)
    return out / ADAPTER_DIR


def save_mlflow_model(model: Any, tokenizer: Any, path: Path, base_path: str) -> None:
    """``mlflow.transformers.save_model`` of base + adapter, its PEFT files moved to the root
    of ``path`` (MLflow writes them to a subdirectory)."""
    import mlflow.transformers
    from mlflow.models import Model

    local_base = base_path if Path(base_path, "config.json").is_file() else None
    mlflow.transformers.save_model(
        transformers_model={"model": model, "tokenizer": tokenizer}, path=str(path),
        task="text-generation", base_model_path=local_base,
        pip_requirements=pip_requirements())
    mlmodel = Model.load(str(path))
    flavor = mlmodel.flavors["transformers"]
    saved = path / flavor["peft_adaptor"]
    for file in saved.iterdir():  # the adapter files move to the root: stored once
        os.replace(file, path / file.name)
    saved.rmdir()
    flavor["peft_adaptor"] = "."
    mlmodel.save(str(path / "MLmodel"))


def pip_requirements() -> list[str]:
    """Pinned to what trained the adapter; given explicitly so MLflow need not load the model
    again in a subprocess to infer them."""
    return [f"{name}=={metadata.version(name)}" for name in REQUIREMENTS]
