"""MLflow for a study: its parent run (found again on resume, the trial runs nested under it),
and the runs of trials that no running sweep will end (their worker died, or a full disk
refused the write)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.study.record import RUN_ID, StudyRecord
from harness.tracking.outbox import RUN, Outbox
from harness.tracking.provenance import source_tags
from harness.tracking.store import client_for, experiment_id
from harness.tracking.trial_run import status_of

if TYPE_CHECKING:
    import optuna
    from mlflow import MlflowClient
    from optuna.trial import FrozenTrial

ROLE_TAG = "harness.role"
"""`study` on a study's parent run."""


class StudyRun:
    """The parent MLflow run of a study: found again on resume, nested trial runs under it."""

    def __init__(self, *, uri: str | None, study: str, space_text: str,
                 params: dict[str, str]) -> None:
        self.client: MlflowClient = client_for(uri)
        self.experiment_id = experiment_id(self.client, study)
        self.outbox = Outbox(self.client)
        self.run_id = self._found(study) or self._created(study, space_text, params)
        self.outbox.run_id = self.run_id

    def _found(self, study: str) -> str | None:
        """The study's run from an earlier sweep, running again."""
        found = self.client.search_runs(
            [self.experiment_id], max_results=1,
            filter_string=f"tags.`{ROLE_TAG}` = 'study' and tags.`optuna.study` = '{study}'")
        if not found:
            return None
        run_id: str = found[0].info.run_id
        self.client.update_run(run_id, status="RUNNING")
        return run_id

    def _created(self, study: str, space_text: str, params: dict[str, str]) -> str:
        from mlflow.entities import Param

        run = self.client.create_run(self.experiment_id, run_name=f"study {study}", tags={
            ROLE_TAG: "study", "optuna.study": study, **source_tags()})
        run_id: str = run.info.run_id
        self.client.log_batch(run_id, params=[Param(k, v[:6000]) for k, v in params.items()])
        self.client.log_text(run_id, space_text, "space.yaml")
        return run_id

    def end(self, status: str, *, tags: dict[str, str], metrics: dict[str, float],
            plots: Path | None) -> None:
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        self.outbox.send("log_batch", RUN, tags=[RunTag(k, v) for k, v in tags.items()],
                         metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
        if plots is not None and plots.is_dir() and any(plots.iterdir()):
            self.outbox.send("log_artifacts", RUN, str(plots), "plots")
        self.outbox.send("set_terminated", RUN, status)


def close_left_open(uri: str, study: str, *, ended: dict[int, str]) -> list[str]:
    """End the trial runs of ``study`` still RUNNING in MLflow although their trials ended in
    Optuna (``ended``: trial number -> reason), because their sweep could not end them (it was
    SIGKILLed, or a full disk refused the write); their run ids."""
    client = client_for(uri)
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id], max_results=10_000, filter_string=(
        f"attributes.status = 'RUNNING' and tags.`optuna.study` = '{study}'"))
    closed = []
    for run in runs:
        number = run.data.tags.get("optuna.trial", "")
        if not number.isdigit() or int(number) not in ended:
            continue
        reason = ended[int(number)]
        client.set_tag(run.info.run_id, "trial.reason", reason)
        client.set_terminated(run.info.run_id, status_of(reason))
        closed.append(run.info.run_id)
    return closed


def close_lost_run(study: optuna.Study, trial: FrozenTrial) -> None:
    """End the MLflow run of ``study``'s trial whose worker died (a `LostTrial` hook of the
    study's liveness: its runner will never end it)."""
    end_lost_run(StudyRecord.load(study).tracking_uri, trial.user_attrs.get(RUN_ID),
                 reason="abandoned")


def end_lost_run(uri: str, run_id: str | None, *, reason: str) -> None:
    """End FAILED the MLflow run of a trial whose worker died (its runner will never end it).
    Best effort: the tracking server may be down, and the study is the record that counts."""
    if not run_id or not uri:
        return
    with contextlib.suppress(Exception):
        client = client_for(uri)
        client.set_tag(run_id, "trial.reason", reason)
        client.set_tag(run_id, "optuna.state", "FAIL")
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, "FAILED")
