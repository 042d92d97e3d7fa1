"""Promotion of a study's best adapter to the MLflow Model Registry.

Promotion registers the best COMPLETE trial's logged adapter (an MLflow transformers model that
is also a plain PEFT adapter directory) as a new version. The study chose that trial by its eval
loss; against the current champion it is measured on the test split, which no sweep ever
decided by (`harness.tracking.gate` has the verdicts). The version takes alias `champion` when
it passes the gate, otherwise `challenger`. Registering the same trial again changes nothing.

Several promoters may race (the last workers of a study, or two studies on one model): each
records whether its version passed the gate when it was registered, then settles the alias,
so that `champion` ends on the best version that passed, whatever the interleaving.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Console

from harness.errors import HarnessError
from harness.study.record import RUN_ID, StudyRecord
from harness.study.storage import best_trial
from harness.tracking.gate import (
    ALIAS,
    CHALLENGER,
    CHAMPION,
    GATE,
    Tags,
    best_passed,
    forgetting,
    verdict,
)
from harness.tracking.store import as_process_store, client_for
from harness.tracking.usage import version_description
from harness.tracking.version_tags import Candidate, kept_eval_loss, version_tags

if TYPE_CHECKING:
    import optuna
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion


@dataclass
class Promotion:
    model: str
    version: str | int
    """The version's number, as the registry gave it."""
    alias: str
    why: str
    new: bool
    """False when this trial was registered before (nothing changed)."""


def promote_study(study: optuna.Study, *, console: Console | None = None,
                  tracking_uri: str | None = None) -> Promotion:
    """Register the study's best trial in its registered model, through the gate."""
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


def _find_run(client: MlflowClient, study: optuna.Study, number: int) -> str:
    """A trial's run by its tags, for a trial that ended while the tracking server was away
    (so its run id never reached the study)."""
    experiment = client.get_experiment_by_name(study.study_name)
    found = client.search_runs([experiment.experiment_id] if experiment else [], filter_string=(
        f"tags.`optuna.study` = '{study.study_name}' and tags.`optuna.trial` = '{number}'"))
    if not found:
        raise HarnessError(f"trial {number} of study {study.study_name!r} has no MLflow run")
    run_id: str = found[0].info.run_id
    return run_id


def promote_run(client: MlflowClient, run: Run, candidate: Candidate, *, model: str,
                margin: float, max_forgetting: float | None = None) -> Promotion:
    """Register ``run``'s adapter once and give it `champion` or `challenger`. A version whose
    promotion was cut short (Ctrl-C, a crash between registering it and settling its gate) is
    settled now."""
    eval_loss = kept_eval_loss(run.data.metrics)
    if run.info.status != "FINISHED" or not math.isfinite(eval_loss):
        raise HarnessError(f"run {run.info.run_id} is {run.info.status} with eval loss "
                           f"{eval_loss}: only finished trials with a finite loss are promoted")
    _ensure_registered_model(client, model)
    existing = _version_of(client, model, candidate.study, candidate.trial)
    if existing is not None:
        return _again(client, model, existing, margin=margin, max_forgetting=max_forgetting)
    tags = version_tags(run, candidate)
    tags["retention_verdict"] = forgetting(tags, max_forgetting)[1]
    version = create_version(client, model, run, tags=tags)
    first = _version_of(client, model, candidate.study, candidate.trial)
    if first is not None and first.version != version.version:
        client.delete_model_version(model, version.version)  # another promoter was first
        return Promotion(model, first.version, first.tags.get(ALIAS, ""), "no change",
                         new=False)
    _link(client, model, version)
    alias, why = _settle_gate(client, model, version=version.version, tags=tags, margin=margin,
                              max_forgetting=max_forgetting)
    return Promotion(model, version.version, alias, why, new=True)


def _link(client: MlflowClient, model: str, version: ModelVersion) -> None:
    """The version named on its logged model, as `mlflow.register_model` would name it."""
    from harness.tracking.logged_model import link_version, version_model_id

    model_id = version_model_id(version)
    if model_id:
        link_version(client, model_id, name=model, version=version.version)


def _again(client: MlflowClient, model: str, existing: ModelVersion, *, margin: float,
           max_forgetting: float | None) -> Promotion:
    """A trial registered before: nothing changes, but a promotion cut short is settled (and
    a version registered before versions were linked to their logged model is linked)."""
    _link(client, model, existing)
    if _settled(client, model, existing):
        # Its gate and tags were recorded; `champion` may still lag behind them (a promotion
        # cut short just before moving it): settling again is harmless and mends that.
        settle(client, model)
        return Promotion(model, existing.version, existing.tags.get(ALIAS, ""), "no change",
                         new=False)
    alias, why = _settle_gate(client, model, version=existing.version, tags=existing.tags,
                              margin=margin, max_forgetting=max_forgetting)
    return Promotion(model, existing.version, alias,
                     f"its interrupted promotion settled now: {why}", new=False)


def create_version(client: MlflowClient, model: str, run: Run, *, tags: Tags) -> ModelVersion:
    """A new version of ``model`` from the run's logged adapter model (from its `adapter`
    artifact for a run logged before adapters were models), described with how to load it."""
    from harness.tracking.logged_model import adapter_model_id

    model_id = adapter_model_id(client, run)
    if model_id is None:
        version = client.create_model_version(model, source=f"{run.info.artifact_uri}/adapter",
                                              run_id=run.info.run_id, tags=tags)
    else:
        with as_process_store(client.tracking_uri):
            version = client.create_model_version(model, source=f"models:/{model_id}",
                                                  run_id=run.info.run_id, tags=tags,
                                                  model_id=model_id)
    client.update_model_version(model, version.version, description=version_description(
        model, version.version, tags=tags, experiment_id=run.info.experiment_id))
    return version


def _settled(client: MlflowClient, model: str, version: ModelVersion) -> bool:
    """Whether ``version``'s promotion ran to its end: the gate's verdict and alias recorded,
    and a version that passed is not left without a champion."""
    from mlflow.exceptions import MlflowException

    alias = version.tags.get(ALIAS)
    if not version.tags.get(GATE) or not alias:
        return False
    try:
        client.get_model_version_by_alias(model, alias)  # the alias it was given exists
    except MlflowException:
        return False
    return True


def _settle_gate(client: MlflowClient, model: str, *, version: str | int, tags: Tags,
                 margin: float, max_forgetting: float | None) -> tuple[str, str]:
    """Judge ``version`` at the gate, record the verdict, move the alias; (alias, why)."""
    alias, why = verdict(tags, champion_of(client, model), margin=margin,
                         max_forgetting=max_forgetting)
    client.set_model_version_tag(model, version, GATE, "passed" if alias == CHAMPION
                                 else "held")
    client.set_model_version_tag(model, version, ALIAS, alias)
    client.set_registered_model_alias(model, alias, version)
    settled = settle(client, model)
    if alias == CHAMPION and settled is not None and settled != str(version):
        why = f"a racing promoter's version {settled} is better; {why}"
        client.set_model_version_tag(model, version, ALIAS, CHALLENGER)
        return CHALLENGER, why
    return alias, why


def champion_of(client: MlflowClient, model: str) -> ModelVersion | None:
    """The version `champion` points at, if any."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model, CHAMPION)
    except MlflowException:
        return None


def settle(client: MlflowClient, model: str) -> str | None:
    """Point `champion` at the best version that passed the gate, on the champion's eval data;
    its version. Repeats until a read confirms it, so a racing promoter's stale write is mended
    by whichever settles last."""
    champion = None
    for _ in range(10):
        champion = champion_of(client, model)
        if champion is None:
            return None
        # Every version tags its gate result before it writes the alias, so the last writer's
        # settle sees every version that passed.
        best = best_passed(champion, list(client.search_model_versions(f"name = '{model}'")))
        if best.version == champion.version:
            return str(champion.version)
        client.set_registered_model_alias(model, CHAMPION, best.version)
    return str(champion.version) if champion is not None else None


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
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


def _version_of(client: MlflowClient, model: str, study: str, trial: int) -> ModelVersion | None:
    """The first (lowest) version registered for this study and trial."""
    found = [v for v in client.search_model_versions(f"name = '{model}'")
             if v.tags.get("study") == study and v.tags.get("trial") == str(trial)]
    if not found:
        return None
    return client.get_model_version(model, min(found, key=lambda v: int(v.version)).version)
