"""`harness export REF --merged DIR`: a registered (or a run's) adapter merged into its base
model, written as a plain transformers model directory: `AutoModelForCausalLM.from_pretrained`
loads it with neither the harness nor peft installed.

An adapter trained on a 4- or 8-bit base learnt its deltas against the de-quantized weights the
quantized layers computed with, so it is merged into exactly those (the base loaded as the trial
loaded it, then de-quantized), not into the original full-precision weights. Before anything is
written to DIR, the exported model's greedy answers to a few prompts are compared with those of
base + adapter unmerged: in float32 they must agree token for token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from harness.config import ComputeDtype, TrainConfig
from harness.errors import HarnessError
from harness.tracking.download import deliver, download, staging
from harness.tracking.refs import adapter_location
from harness.tracking.store import tracking_uri as resolve_uri

CHECK_PROMPTS = ("What are the symptoms of glaucoma?", "Explain what a vaccine does.",
                 "Give one tip for sleeping better.")


@dataclass
class Exported:
    out: Path
    base_model: str
    quantization: str
    dtype: str
    agreed: int
    """Prompts whose greedy answer the exported model gives exactly as base + adapter does."""
    checked: int


def export_merged(ref: str, out: str | Path, *, tracking_uri: str | None = None,
                  dtype: ComputeDtype = "auto", force: bool = False,
                  console: Console | None = None) -> Exported:
    """Download ``ref``'s adapter, merge it, check it, and write the model to ``out``."""
    console = console or Console(stderr=True)
    store = resolve_uri(tracking_uri)
    with staging(out, force=force, purpose="export") as (target, tmp):
        adapter = download(lambda: adapter_location(ref, store), store=store,
                           into=tmp / "adapter", ref=ref)
        exported = merge(adapter, tmp / "merged", dtype=dtype)
        if exported.dtype == "float32" and exported.agreed < exported.checked:
            raise HarnessError(
                f"the merged model answered {exported.checked - exported.agreed} of "
                f"{exported.checked} check prompts differently from base + adapter in float32: "
                f"nothing was written to {target}")
        deliver(tmp / "merged", target)
    exported.out = target
    print_export(console, exported)
    return exported


def merge(adapter: Path, out: Path, *, dtype: ComputeDtype) -> Exported:
    """Merge ``adapter`` into its de-quantized base and save to ``out``, then compare the saved
    model's greedy answers with base + adapter's."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.config import from_mapping
    from harness.models import device, load_model
    from harness.tracking.answers import greedy
    from harness.trialdir import TrialDir

    config = from_mapping(TrainConfig, TrialDir(adapter).read_config())
    on = device()
    chosen = resolve_dtype(dtype, config, on=on)
    base = load_model(config.model, config.quantization, on=on)
    if config.quantization.mode != "none":
        base = base.dequantize()  # the weights the adapter was trained against
    base = base.to(getattr(torch, chosen))
    tokenizer = AutoTokenizer.from_pretrained(str(adapter))
    unmerged = PeftModel.from_pretrained(base, str(adapter)).eval()
    expected = [greedy(unmerged, tokenizer, p) for p in CHECK_PROMPTS]
    merged = unmerged.merge_and_unload()
    if getattr(merged.config, "quantization_config", None) is not None:
        del merged.config.quantization_config
    merged.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    del merged, unmerged, base
    reloaded = AutoModelForCausalLM.from_pretrained(str(out), dtype=getattr(torch, chosen))
    reloaded = reloaded.to(on).eval()
    got = [greedy(reloaded, tokenizer, p) for p in CHECK_PROMPTS]
    agreed = sum(a == b for a, b in zip(got, expected, strict=True))
    return Exported(out, config.model, config.quantization.mode, chosen, agreed,
                    len(CHECK_PROMPTS))


def resolve_dtype(dtype: ComputeDtype, config: TrainConfig, *, on: str) -> str:
    """`auto`: the precision the adapter was trained in (bfloat16 for an unquantized base on a
    GPU, a 4-bit base's compute dtype, float32 otherwise)."""
    if dtype != "auto":
        return dtype
    quant = config.quantization
    if quant.mode == "4bit" and quant.compute_dtype != "auto":
        return quant.compute_dtype
    return "bfloat16" if on == "cuda" and quant.mode in ("none", "4bit") else "float32"


def print_export(console: Console, exported: Exported) -> None:
    trained = "" if exported.quantization == "none" else (
        f" (trained on a {exported.quantization} base: merged into its de-quantized weights)")
    console.print(f"[green]exported[/] {exported.out}: {exported.base_model} + adapter, merged"
                  f"{trained}, {exported.dtype}; greedy answers match base + adapter on "
                  f"{exported.agreed} of {exported.checked} check prompts")
    if exported.agreed < exported.checked:
        console.print(f"  at {exported.dtype} the merged weights round differently from base +"
                      " adapter; --dtype float32 gives an exact export")
    console.print(f"""
Load it with transformers alone:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained("{exported.out}")
    tokenizer = AutoTokenizer.from_pretrained("{exported.out}")
For llama.cpp / Ollama (GGUF), convert it with llama.cpp's script:
    python convert_hf_to_gguf.py {exported.out} --outfile model.gguf --outtype q8_0""",
                  highlight=False)
