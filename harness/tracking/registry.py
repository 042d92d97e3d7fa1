"""Promotion of a study's best adapter to the MLflow Model Registry, and pulling it back.

Promotion registers the best COMPLETE trial's adapter directory (an MLflow transformers model
that is also a plain PEFT adapter directory) as a new version. The study chose that trial by its
eval loss; against the current champion it is measured on the test split, which no sweep ever
decided by (the eval split where either version has no test figure). The version takes alias
`champion` only when it beats the champion's loss on the same held-out data (same split
fingerprint) by the configured relative margin; otherwise `challenger`. Registering the same
trial again changes nothing. A version that forgets (its loss on general text more than
`max_forgetting` above the base model's) becomes `challenger` whatever its held-out loss.

Several promoters may race (the last workers of a study, or two studies on one model): each
records whether its version passed the gate when it was registered, then settles the alias,
so that `champion` ends on the best version that passed, whatever the interleaving.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from harness.errors import HarnessError
from harness.tracking.provenance import git_commit
from harness.tracking.runs import short_fingerprint

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass
class Promotion:
    model: str
    version: str
    alias: str
    why: str
    new: bool
    """False when this trial was registered before (nothing changed)."""


def promote_study(study: Any, *, console: Console | None = None,
                  tracking_uri: str | None = None) -> Promotion:
    from harness.study.record import RUN_ID, StudyRecord
    from harness.study.storage import best_trial
    from harness.tracking.runs import client_for

    console = console or Console(stderr=True)
    best = best_trial(study)
    if best is None:
        raise HarnessError(f"study {study.study_name!r} has no COMPLETE trial to promote")
    record = StudyRecord.load(study)
    if not record.registry_model:
        raise HarnessError(f"study {study.study_name!r} names no registered model: it was not "
                           "created by `harness sweep`")
    client = client_for(tracking_uri or record.tracking_uri or None)
    run = client.get_run(best.user_attrs.get(RUN_ID) or _find_run(client, study, best.number))
    candidate = Candidate(study.study_name, best.number,
                          (record.objectives or ["eval_loss"])[0], best.values[0])
    promotion = promote_run(client, run, candidate, model=record.registry_model,
                            margin=float(record.registry_margin),
                            max_forgetting=record.registry_max_forgetting)
    verb = "registered" if promotion.new else "already registered as"
    console.print(f"trial {best.number} {verb} {promotion.model} version {promotion.version}: "
                  f"@{promotion.alias} ({promotion.why})")
    return promotion


def _find_run(client: Any, study: Any, number: int) -> str:
    """A trial's run by its tags, for a trial that ended while the tracking server was away
    (so its run id never reached the study)."""
    experiment = client.get_experiment_by_name(study.study_name)
    found = client.search_runs([experiment.experiment_id] if experiment else [], filter_string=(
        f"tags.`optuna.study` = '{study.study_name}' and tags.`optuna.trial` = '{number}'"))
    if not found:
        raise HarnessError(f"trial {number} of study {study.study_name!r} has no MLflow run")
    return found[0].info.run_id


@dataclass(frozen=True)
class Candidate:
    """The trial a run belongs to, as its model version records it."""

    study: str
    """The study's name."""
    trial: int
    """The trial's number in the study."""
    objective: str
    """The study's first objective."""
    value: float
    """The trial's value of that objective."""


def promote_run(client: Any, run: Any, candidate: Candidate, *, model: str,
                margin: float, max_forgetting: float | None = None) -> Promotion:
    """Register ``run``'s adapter once and give it `champion` or `challenger`. A version whose
    promotion was cut short (Ctrl-C, a crash between registering it and settling its gate) is
    settled now."""
    eval_loss = _eval_loss(run.data.metrics)
    if run.info.status != "FINISHED" or not math.isfinite(eval_loss):
        raise HarnessError(f"run {run.info.run_id} is {run.info.status} with eval loss "
                           f"{eval_loss}: only finished trials with a finite loss are promoted")
    _ensure_registered_model(client, model)
    study, trial = candidate.study, candidate.trial
    existing = _version_of(client, model, study, trial)
    if existing is not None and _settled(client, model, existing):
        # Its gate and tags were recorded; `champion` may still lag behind them (a promotion
        # cut short just before moving it): settling again is harmless and mends that.
        settle(client, model)
        alias = existing.tags.get("harness.alias", "")
        return Promotion(model, existing.version, alias, "no change", new=False)
    if existing is not None:
        alias, why = _settle_gate(client, model, version=existing.version,
                                  tags=existing.tags, margin=margin,
                                  max_forgetting=max_forgetting)
        return Promotion(model, existing.version, alias,
                         f"its interrupted promotion settled now: {why}", new=False)
    tags = version_tags(run, candidate)
    tags["retention_verdict"] = forgetting(tags, max_forgetting)[1]
    version = create_version(client, model, run, tags=tags)
    first = _version_of(client, model, study, trial)
    if first is not None and first.version != version.version:
        client.delete_model_version(model, version.version)  # another promoter was first
        return Promotion(model, first.version, first.tags.get("harness.alias", ""),
                         "no change", new=False)
    alias, why = _settle_gate(client, model, version=version.version, tags=tags, margin=margin,
                              max_forgetting=max_forgetting)
    return Promotion(model, version.version, alias, why, new=True)


def create_version(client: Any, model: str, run: Any, *, tags: dict[str, str]) -> Any:
    """A new version of ``model`` from the run's logged adapter model (from its `adapter`
    artifact for a run logged before adapters were models), described with how to load it."""
    from harness.tracking.logged_model import adapter_model_id

    model_id = adapter_model_id(client, run)
    if model_id is None:
        version = client.create_model_version(model, source=f"{run.info.artifact_uri}/adapter",
                                              run_id=run.info.run_id, tags=tags)
    else:
        with _resolvable_models_uri(client.tracking_uri):
            version = client.create_model_version(model, source=f"models:/{model_id}",
                                                  run_id=run.info.run_id, tags=tags,
                                                  model_id=model_id)
    client.update_model_version(model, version.version, description=version_description(
        model, version.version, tags=tags))
    return version


@contextlib.contextmanager
def _resolvable_models_uri(uri: str) -> Iterator[None]:
    """MLflow's SQL registry store looks a models:/ source up with a client on the process-wide
    tracking URI, not its own (a TODO in its code), and would create ./mlflow.db: for that one
    call the process-wide URI is the store's. A server resolves it with its own."""
    if uri.startswith(("http://", "https://", "databricks")):
        yield
        return
    before = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before


def version_description(model: str, version: str, *, tags: dict[str, str]) -> str:
    """The version's description in the registry: what it is, and three ways to load it."""
    test = float(tags.get("test_loss", "nan"))
    figures = f"{tags.get('objective', 'eval_loss')} {float(tags['objective_value']):.4f}" + (
        f", test loss {test:.4f}" if math.isfinite(test) else "")
    base = tags.get("base_model", "")
    return f"""LoRA adapter on `{base}` from study `{tags.get('study')}`, trial \
{tags.get('trial')} ({figures}).

Pull it, checked on its base model:

```
harness pull {model}/{version} --out adapters/{model}
```

Load base + adapter as a text-generation pipeline with MLflow:

```python
import mlflow
pipe = mlflow.transformers.load_model("models:/{model}/{version}")
print(pipe("What are the symptoms of glaucoma?", max_new_tokens=60)[0]["generated_text"])
```

Or with PEFT, from the pulled directory:

```python
{peft_snippet(base, f"adapters/{model}")}
```
"""


def peft_snippet(base: str, adapter_dir: str) -> str:
    """Python that loads ``base`` + the adapter in ``adapter_dir`` with peft."""
    return f"""from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer
base = AutoModelForCausalLM.from_pretrained("<{base} directory or hub id>")  # `harness models`
model = PeftModel.from_pretrained(base, "{adapter_dir}")
tokenizer = AutoTokenizer.from_pretrained("{adapter_dir}")"""


def _settled(client: Any, model: str, version: Any) -> bool:
    """Whether ``version``'s promotion ran to its end: the gate's verdict and alias recorded,
    and a version that passed is not left without a champion."""
    from mlflow.exceptions import MlflowException

    alias = version.tags.get("harness.alias")
    if not version.tags.get(GATE) or not alias:
        return False
    try:
        client.get_model_version_by_alias(model, alias)  # the alias it was given exists
    except MlflowException:
        return False
    return True


def _settle_gate(client: Any, model: str, *, version: str, tags: dict[str, str],
                 margin: float, max_forgetting: float | None) -> tuple[str, str]:
    """Judge ``version`` at the gate, record the verdict, move the alias; (alias, why)."""
    forgets, verdict = forgetting(tags, max_forgetting)
    alias, why = (CHALLENGER, verdict) if forgets else gate(client, model, tags, margin)
    client.set_model_version_tag(model, version, GATE, "passed" if alias == CHAMPION
                                 else "held")
    client.set_model_version_tag(model, version, "harness.alias", alias)
    client.set_registered_model_alias(model, alias, version)
    settled = settle(client, model)
    if alias == CHAMPION and settled is not None and settled != version:
        alias, why = CHALLENGER, f"a racing promoter's version {settled} is better; {why}"
        client.set_model_version_tag(model, version, "harness.alias", alias)
    return alias, why


GATE = "harness.gate"


def settle(client: Any, model: str) -> str | None:
    """Point `champion` at the best version that passed the gate, on the champion's eval data;
    its version. Repeats until a read confirms it, so a racing promoter's stale write is mended
    by whichever settles last."""
    from mlflow.exceptions import MlflowException

    champion = None
    for _ in range(10):
        try:
            champion = client.get_model_version_by_alias(model, CHAMPION)
        except MlflowException:
            return None
        # Every version tags its gate result before it writes the alias, so the last writer's
        # settle sees every version that passed.
        split = "test" if _loss(champion.tags, "test") is not None else "eval"
        passed = [v for v in client.search_model_versions(f"name = '{model}'")
                  if v.tags.get(GATE) == "passed"
                  and _loss(v.tags, split, like=champion.tags) is not None]
        best = min([champion, *passed], key=lambda v: (_loss(v.tags, split), int(v.version)))
        if best.version == champion.version:
            return champion.version
        client.set_registered_model_alias(model, CHAMPION, best.version)
    return champion.version if champion is not None else None


def _ensure_registered_model(client: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(name, description=(
                "LoRA adapters promoted by harness sweeps. Each version is a PEFT adapter "
                "directory and an MLflow transformers model; @champion is the best on its eval "
                "data."))
        except MlflowException:
            client.get_registered_model(name)  # a racing promoter created it first


def _version_of(client: Any, model: str, study: str, trial: int) -> Any:
    """The first (lowest) version registered for this study and trial."""
    found = [v for v in client.search_model_versions(f"name = '{model}'")
             if v.tags.get("study") == study and v.tags.get("trial") == str(trial)]
    if not found:
        return None
    return client.get_model_version(model, min(found, key=lambda v: int(v.version)).version)


def version_tags(run: Any, candidate: Candidate) -> dict[str, str]:
    from harness import __version__

    metrics, run_tags = run.data.metrics, run.data.tags
    return {
        "study": candidate.study, "trial": str(candidate.trial),
        "objective": candidate.objective, "objective_value": repr(candidate.value),
        "eval_loss": repr(_eval_loss(metrics)),
        "selected_epoch": repr(metrics.get("selected/epoch", math.nan)),
        "perplexity_ratio_to_base": repr(metrics.get("eval/perplexity_ratio_to_base",
                                                     math.nan)),
        "test_loss": repr(metrics.get("test/loss", math.nan)),
        "retention_loss": repr(metrics.get("retention/loss", math.nan)),
        "base_retention_loss": repr(metrics.get("base/retention_loss", math.nan)),
        "base_test_loss": repr(metrics.get("base/test_loss", math.nan)),
        "dataset_fingerprint": run_tags.get("dataset.fingerprint", ""),
        "eval_fingerprint": run_tags.get("dataset.eval_fingerprint", ""),
        "test_fingerprint": run_tags.get("dataset.test_fingerprint", ""),
        "base_model": run_tags.get("base_model", ""),
        "quantization": run_tags.get("quantization", ""),
        "harness_version": __version__, "git_commit": git_commit(),
        "run_id": run.info.run_id,
    }


def _eval_loss(metrics: dict[str, float]) -> float:
    """The eval loss of the adapter a trial kept: its best epoch's, else its last eval's."""
    return metrics.get("selected/eval_loss", metrics.get("eval/loss", math.nan))


def _loss(tags: dict[str, str], split: str, *, like: dict[str, str] | None = None
          ) -> float | None:
    """A version's loss on ``split`` (test or eval), if it has a finite one there, measured
    on the same data as the version ``like`` (same split fingerprint), when given."""
    value = float(tags.get(f"{split}_loss", "nan"))
    data = tags.get(f"{split}_fingerprint")
    if not (math.isfinite(value) and data):
        return None
    # versions registered before fingerprints were shortened hold all 64 digits
    theirs = like.get(f"{split}_fingerprint", "") if like is not None else ""
    if like is not None and short_fingerprint(theirs) != short_fingerprint(data):
        return None
    return value


def compared_on(tags: dict[str, str], champion: dict[str, str]) -> str | None:
    """The split two versions are compared on: test where both have a figure on the same test
    data, else eval on the same eval data; None when they share neither."""
    for split in ("test", "eval"):
        if _loss(tags, split, like=champion) is not None and _loss(champion, split) is not None:
            return split
    return None


def forgetting(tags: dict[str, str], limit: float | None) -> tuple[bool, str]:
    """Whether a version forgets more than ``limit`` allows, and the verdict in words."""
    loss = float(tags.get("retention_loss", "nan"))
    base = float(tags.get("base_retention_loss", "nan"))
    if not (math.isfinite(loss) and math.isfinite(base) and base > 0):
        return False, "not measured (retention off for this trial)"
    share = loss / base - 1
    if limit is None:
        return False, f"general-text loss {share:+.1%} against the base model (no limit set)"
    if share > limit:
        return True, (f"forgets: its general-text loss {loss:.4f} is {share:+.1%} against the "
                      f"base model's {base:.4f}, over the {limit:.0%} allowed")
    return False, (f"passed: general-text loss {share:+.1%} against the base model "
                   f"(limit {limit:.0%})")


def gate(client: Any, model: str, tags: dict[str, str], margin: float) -> tuple[str, str]:
    """`champion` when there is none, or when this beats it on the same held-out data."""
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(model, CHAMPION)
    except MlflowException:
        return CHAMPION, "first champion"
    split = compared_on(tags, champion.tags)
    if split is None:
        return CHALLENGER, (f"version {champion.version} is champion on different eval and "
                            "test data; compare them on one held-out set before moving the "
                            "alias")
    new, old = float(tags[f"{split}_loss"]), float(champion.tags[f"{split}_loss"])
    if new < old * (1 - margin):
        return CHAMPION, (f"{split} loss {new:.4f} beats version {champion.version}'s "
                          f"{old:.4f}")
    return CHALLENGER, (f"{split} loss {new:.4f} does not beat version {champion.version}'s "
                        f"{old:.4f} by the {margin:.1%} margin")


def parse_ref(ref: str) -> str:
    """NAME, NAME@alias or NAME/version as a models:/ URI (NAME alone means @champion)."""
    from harness.names import name_problem

    if ref.startswith("models:/"):
        return ref
    name, at, alias = ref.partition("@")
    name, slash, version = name.partition("/")
    problem = name_problem(name)
    if at and slash:
        problem = "gives both an alias and a version"
    elif at and (not alias or name_problem(alias)):
        problem = f"has an alias {alias!r} that {name_problem(alias) or 'is empty'}"
    elif slash and not (version.isdigit() and int(version) >= 1):
        problem = f"has a version {version!r}; versions are whole numbers from 1"
    elif problem:
        problem = f"names a model that {problem}"
    if problem:
        raise HarnessError(f"{ref!r} {problem}: give NAME@ALIAS (e.g. medquad-demo@champion), "
                           "NAME/VERSION (e.g. medquad-demo/3) or NAME (its @champion)")
    if at:
        return f"models:/{name}@{alias}"
    return f"models:/{name}/{version}" if slash else f"models:/{name}@{CHAMPION}"
