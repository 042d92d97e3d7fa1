"""`harness pull NAME[@alias|/version] --out DIR`: a registered adapter, checked, ready."""

from __future__ import annotations

import os
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from harness.errors import HarnessError
from harness.tracking.registry import parse_ref, peft_snippet
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


def version_location(uri: str, store: str) -> str:
    """Where the model version ``uri`` (models:/NAME@ALIAS or models:/NAME/VERSION) keeps its
    files, asked of the registry at ``store``. Resolved here rather than by MLflow because its
    download of a models:/ URI reads the process-wide registry URI, which a library call must
    not change; another form of URI is returned as it is."""
    import re

    from harness.tracking.runs import client_for

    match = re.fullmatch(r"models:/([^/@]+)(?:@([^/@]+)|/(\d+))", uri)
    if match is None:
        return uri
    name, alias, number = match.groups()
    client = client_for(store)
    version = client.get_model_version_by_alias(name, alias).version if alias else number
    return client.get_model_version_download_uri(name, version)


def pull(ref: str, out: str | Path, *, tracking_uri: str | None = None,
         prompt: str = CHECK_PROMPT, force: bool = False,
         console: Console | None = None) -> Pulled:
    """Download the version ``ref`` points at into ``out``, load it onto its base model,
    generate a few tokens, and print how to use it. ``out`` must be empty (or missing) unless
    ``force``: then files of the adapter's names are replaced and everything else is kept."""
    import mlflow

    from harness.tracking.runs import tracking_uri as resolve_uri
    from harness.urls import redact

    console = console or Console(stderr=True)
    uri, target = parse_ref(ref), Path(out)
    check_target(target, force=force)
    store = resolve_uri(tracking_uri)  # passed, not set: a library call leaves the global alone
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.pull-", dir=target.parent) as tmp:
        try:
            got = Path(mlflow.artifacts.download_artifacts(
                artifact_uri=version_location(uri, store), dst_path=tmp, tracking_uri=store))
        except mlflow.exceptions.MlflowException as err:
            raise HarnessError(f"cannot download {uri} from {redact(store)}: "
                               f"{err.message}") from None
        missing = [name for name in REQUIRED if not (got / name).is_file()]
        if missing:
            raise HarnessError(f"{uri} lacks {', '.join(missing)}: it is not a harness "
                               f"adapter; nothing was written to {target}")
        target.mkdir(exist_ok=True)
        merge_into(got, target)
    base = TrialDir(target).read_config()["model"]  # the adapter keeps its trial's config
    sample = check_generates(base, target, prompt)
    pulled = Pulled(uri, target, base, prompt, sample)
    print_usage(console, pulled)
    return pulled


def check_target(target: Path, *, force: bool) -> None:
    """``target`` may receive the adapter: a directory that is empty, missing, or ``force``."""
    if target.exists() and not target.is_dir():
        raise HarnessError(f"--out {target} is a file: give a directory for the adapter's files")
    found = sorted(p.name for p in target.iterdir()) if target.is_dir() else []
    if found and not force:
        shown = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
        raise HarnessError(f"--out {target} is not empty ({shown}): choose an empty directory, "
                           "or pass --force to write the adapter's files into it (files of the "
                           "same names are replaced, everything else is kept)")


def merge_into(source: Path, target: Path) -> None:
    """Move the tree ``source`` into ``target``, replacing files of the same names only (a
    file where a directory goes, or the other way round, stops it before anything moves)."""
    clash = _clash(source, target)
    if clash is not None:
        raise HarnessError(f"{clash} is in the way of the adapter's files (a file where a "
                           "directory goes, or a directory where a file goes): move it away, "
                           "or choose another --out")
    for item in source.iterdir():
        there = target / item.name
        if _is_dir(item):
            there.mkdir(exist_ok=True)
            merge_into(item, there)
        else:
            os.replace(item, there)


def _is_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _clash(source: Path, target: Path) -> Path | None:
    for item in source.iterdir():
        there = target / item.name
        if not there.exists() and not there.is_symlink():
            continue
        if _is_dir(item) != _is_dir(there):
            return there
        if _is_dir(item):
            inner = _clash(item, there)
            if inner is not None:
                return inner
    return None


def check_generates(base: str, adapter: Path, prompt: str) -> str:
    """Load base + adapter and generate greedily; returns the generated text."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.models import device, resolve_model

    on = device()
    model = AutoModelForCausalLM.from_pretrained(
        resolve_model(base), dtype=torch.bfloat16 if on == "cuda" else torch.float32).to(on)
    model = PeftModel.from_pretrained(model, str(adapter)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(adapter))
    messages = [{"role": "user", "content": prompt}]
    if tokenizer.chat_template:
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
    else:
        ids = tokenizer(prompt, return_tensors="pt")
    ids = {k: v.to(on) for k, v in ids.items()}
    with torch.no_grad():
        output = model.generate(**ids, max_new_tokens=24, do_sample=False,
                                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    return tokenizer.decode(output[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


def print_usage(console: Console, pulled: Pulled) -> None:
    console.print(f"[green]pulled[/] {pulled.uri} to {pulled.out}: loads onto {pulled.base_model} "
                  "and generates:")
    console.print(f"  Q: {pulled.prompt}\n  A: {pulled.sample.strip()[:200]}")
    console.print(f"""
Use it with peft:
{textwrap.indent(peft_snippet(pulled.base_model, str(pulled.out)), "    ")}
(`harness models` shows where the embedded base model lives.)
Or as an MLflow pipeline: mlflow.transformers.load_model("{pulled.uri}")""", highlight=False)
