"""The models `harness eval` compares, as the user names them: `base`, a registered version
(NAME@alias, NAME/3), a trial's run id, an adapter directory or a merged model directory; each
resolved to files on this machine and, where the tracking store has one, its logged model."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.config import DEFAULT_MODEL, QuantConfig, TrainConfig, from_mapping
from harness.errors import HarnessError
from harness.tracking.download import download
from harness.tracking.refs import RUN_ID, adapter_location, parse_ref
from harness.trialdir import TrialDir

Kind = Literal["base", "adapter", "merged"]
BASE = "base"
_REF = re.compile(r"[^/@\s]+(@[^/@\s]+|/\d+)")


@dataclass
class Subject:
    """One model to evaluate."""

    label: str
    """How the user named it (the table's row)."""
    kind: Kind
    """The base model alone, base + a LoRA adapter, or a merged model directory."""
    base_model: str
    """The base model (embedded name, hub id or directory); for a merged model, its dir."""
    quantization: QuantConfig
    """How the base model is loaded (as the adapter was trained on it)."""
    path: Path | None = None
    """The adapter or merged model's files (None for the base model)."""
    model_id: str | None = None
    """Its logged model in the tracking store, when it has one (a version or a run's)."""


def resolve(specs: list[str], *, store: str, into: Path,
            base_model: str | None = None) -> list[Subject]:
    """Each spec as a Subject; adapters from the store are downloaded under ``into``. `base`
    is ``base_model`` if given, else the base of the adapters named (loaded as the first was
    trained), else the embedded default."""
    resolved = [None if s == BASE else _resolved(s, store=store, into=into / str(i))
                for i, s in enumerate(specs)]
    adapters = [s for s in resolved if s is not None and s.kind == "adapter"]
    base = base_model or (adapters[0].base_model if adapters else DEFAULT_MODEL)
    quant = adapters[0].quantization if adapters and adapters[0].base_model == base \
        else QuantConfig()
    return [Subject(BASE, "base", base, quant) if s is None else s for s in resolved]


def _resolved(spec: str, *, store: str, into: Path) -> Subject:
    local = Path(spec)
    if local.is_dir():
        return local_subject(spec, local)
    if RUN_ID.fullmatch(spec) or _REF.fullmatch(spec):
        got = download(lambda: adapter_location(spec, store), store=store, into=into, ref=spec)
        subject = local_subject(spec, got)
        subject.model_id = _logged_model(spec, store)
        return subject
    raise HarnessError(f"cannot tell what {spec!r} is: give base, NAME@ALIAS, NAME/VERSION, a "
                       "run id, or an adapter or merged model directory (it is not a directory "
                       "here)")


def local_subject(label: str, path: Path) -> Subject:
    """A directory as an adapter (adapter_config.json; its trial's config names the base) or
    a merged model (config.json)."""
    if (path / "adapter_config.json").is_file():
        try:
            config = from_mapping(TrainConfig, TrialDir(path).read_config())
        except (OSError, ValueError) as err:
            raise HarnessError(f"{path}: an adapter without the harness's train_config.json "
                               f"({err}): its base model and quantization are unknown") from None
        return Subject(label, "adapter", config.model, config.quantization, path)
    if (path / "config.json").is_file():
        return Subject(label, "merged", str(path), QuantConfig(), path)
    raise HarnessError(f"{path} holds neither an adapter (adapter_config.json) nor a model "
                       "(config.json)")


def _logged_model(spec: str, store: str) -> str | None:
    """The logged model a version or run stands for, for metrics linked to it."""
    from harness.tracking.logged_model import adapter_model_id, version_model_id
    from harness.tracking.refs import VERSION_URI
    from harness.tracking.store import client_for

    client = client_for(store)
    if RUN_ID.fullmatch(spec):
        return adapter_model_id(client, client.get_run(spec))
    match = VERSION_URI.fullmatch(parse_ref(spec))
    if match is None:
        return None
    name, alias, number = match.groups()
    version = client.get_model_version_by_alias(name, alias) if alias else \
        client.get_model_version(name, number)
    return version_model_id(version)
