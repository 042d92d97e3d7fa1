"""`harness pull NAME[@alias|/version] --out DIR`: a registered adapter, checked, ready."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from harness.errors import HarnessError
from harness.models import peft_snippet
from harness.tracking.download import deliver, download, staging
from harness.tracking.refs import parse_ref, version_location
from harness.tracking.store import tracking_uri as resolve_uri
from harness.trialdir import TrialDir

CHECK_PROMPT = "What are the symptoms of glaucoma?"
REQUIRED = ("adapter_config.json", "adapter_model.safetensors")


@dataclass
class Pulled:
    uri: str
    out: Path
    base_model: str
    prompt: str
    sample: str


def pull(ref: str, out: str | Path, *, tracking_uri: str | None = None,
         prompt: str = CHECK_PROMPT, force: bool = False,
         console: Console | None = None) -> Pulled:
    """Download the version ``ref`` points at into ``out``, load it onto its base model,
    generate a few tokens, and print how to use it. ``out`` must be empty (or missing) unless
    ``force``: then files of the adapter's names are replaced and everything else is kept."""
    console = console or Console(stderr=True)
    uri = parse_ref(ref)
    store = resolve_uri(tracking_uri)  # passed, not set: a library call leaves the global alone
    with staging(out, force=force, purpose="pull") as (target, tmp):
        got = download(lambda: version_location(uri, store), store=store, into=tmp, ref=uri)
        missing = [name for name in REQUIRED if not (got / name).is_file()]
        if missing:
            raise HarnessError(f"{uri} lacks {', '.join(missing)}: it is not a harness "
                               f"adapter; nothing was written to {target}")
        deliver(got, target)
    base = TrialDir(target).read_config()["model"]  # the adapter keeps its trial's config
    sample = check_generates(base, target, prompt)
    pulled = Pulled(uri, target, base, prompt, sample)
    print_usage(console, pulled)
    return pulled


def check_generates(base: str, adapter: Path, prompt: str) -> str:
    """Load base + adapter and generate greedily; returns the generated text."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.models import device, resolve_model
    from harness.tracking.answers import greedy

    on = device()
    model = AutoModelForCausalLM.from_pretrained(
        resolve_model(base), dtype=torch.bfloat16 if on == "cuda" else torch.float32).to(on)
    model = PeftModel.from_pretrained(model, str(adapter)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(adapter))
    answer: str = tokenizer.decode(greedy(model, tokenizer, prompt), skip_special_tokens=True)
    return answer


def print_usage(console: Console, pulled: Pulled) -> None:
    console.print(f"[green]pulled[/] {pulled.uri} to {pulled.out}: loads onto {pulled.base_model} "
                  "and generates:")
    console.print(f"  Q: {pulled.prompt}\n  A: {pulled.sample.strip()[:200]}")
    console.print(f"""
Use it with peft:
{textwrap.indent(peft_snippet(pulled.base_model, str(pulled.out)), "    ")}
(`harness models` shows where the embedded base model lives.)
Or as an MLflow pipeline: mlflow.transformers.load_model("{pulled.uri}")""", highlight=False)
