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

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console

from harness.errors import HarnessError
from harness.tracking.pull import check_target, merge_into, version_location
from harness.tracking.registry import parse_ref

ExportDtype = Literal["auto", "float32", "bfloat16", "float16"]
CHECK_PROMPTS = ("What are the symptoms of glaucoma?", "Explain what a vaccine does.",
                 "Give one tip for sleeping better.")
NEW_TOKENS = 24
RUN_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class Exported:
    out: Path
    base_model: str
    quantization: str
    dtype: str
    agreed: int
    """Prompts whose greedy answer the exported model gives exactly as base + adapter does."""
    checked: int


def adapter_location(ref: str, store: str) -> str:
    """Where the adapter ``ref`` names keeps its files: a model version (NAME@alias,
    NAME/version, NAME), or a run id (its logged adapter model, or its `adapter` artifact)."""
    if not RUN_ID.fullmatch(ref):
        return version_location(parse_ref(ref), store)
    from harness.tracking.logged_model import adapter_model_id
    from harness.tracking.runs import client_for

    client = client_for(store)
    run = client.get_run(ref)
    model_id = adapter_model_id(client, run)
    if model_id is None:
        return f"{run.info.artifact_uri}/adapter"
    return client.get_logged_model(model_id).artifact_location


def export_merged(ref: str, out: str | Path, *, tracking_uri: str | None = None,
                  dtype: ExportDtype = "auto", force: bool = False,
                  console: Console | None = None) -> Exported:
    """Download ``ref``'s adapter, merge it, check it, and write the model to ``out``."""
    import mlflow

    from harness.tracking.runs import tracking_uri as resolve_uri
    from harness.urls import redact

    console = console or Console(stderr=True)
    target = Path(out)
    check_target(target, force=force)
    store = resolve_uri(tracking_uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.export-", dir=target.parent) as tmp:
        try:
            adapter = Path(mlflow.artifacts.download_artifacts(
                artifact_uri=adapter_location(ref, store), dst_path=f"{tmp}/adapter",
                tracking_uri=store))
        except mlflow.exceptions.MlflowException as err:
            raise HarnessError(f"cannot download {ref} from {redact(store)}: "
                               f"{err.message}") from None
        exported = merge(adapter, Path(tmp, "merged"), dtype=dtype)
        if exported.dtype == "float32" and exported.agreed < exported.checked:
            raise HarnessError(
                f"the merged model answered {exported.checked - exported.agreed} of "
                f"{exported.checked} check prompts differently from base + adapter in float32: "
                f"nothing was written to {target}")
        target.mkdir(exist_ok=True)
        merge_into(Path(tmp, "merged"), target)
    exported.out = target
    print_export(console, exported)
    return exported


def merge(adapter: Path, out: Path, *, dtype: ExportDtype) -> Exported:
    """Merge ``adapter`` into its de-quantized base and save to ``out``, then compare the saved
    model's greedy answers with base + adapter's."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.config import TrainConfig, from_mapping
    from harness.models import device, load_model
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


def resolve_dtype(dtype: ExportDtype, config: Any, *, on: str) -> str:
    """`auto`: the precision the adapter was trained in (bfloat16 for an unquantized base on a
    GPU, a 4-bit base's compute dtype, float32 otherwise)."""
    if dtype != "auto":
        return dtype
    quant = config.quantization
    if quant.mode == "4bit" and quant.compute_dtype != "auto":
        return quant.compute_dtype
    return "bfloat16" if on == "cuda" and quant.mode in ("none", "4bit") else "float32"


def greedy(model: Any, tokenizer: Any, prompt: str) -> list[int]:
    """The greedy answer's token ids to ``prompt`` asked as a user turn."""
    import torch

    if tokenizer.chat_template:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                            add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
    else:
        ids = tokenizer(prompt, return_tensors="pt")
    ids = {k: v.to(model.device) for k, v in ids.items()}
    with torch.no_grad():
        output = model.generate(**ids, max_new_tokens=NEW_TOKENS, do_sample=False,
                                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    return output[0, ids["input_ids"].shape[1]:].tolist()


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
