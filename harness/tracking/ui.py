"""`harness ui`: the MLflow UI on the harness's store, announced only once it answers, with a
link that lands on a study's runs table.

MLflow's experiment page opens on its GenAI overview ("Traces 0"). Two things say otherwise: the
experiment tag `mlflow.experimentKind` = `custom_model_development`, set when the harness
creates an experiment (`harness.tracking.store`), for UIs that choose their view by it, and the UI's
`workflowType=machine_learning` parameter, which MLflow 3.17 follows first and the link carries.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from harness.errors import HarnessError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Experiment

WORKFLOW = "machine_learning"
"""The UI's "Model training" switch as a URL parameter: MLflow 3.17's UI follows the switch
(remembered per browser, GenAI at first) before the experiment's kind, so the link sets it."""
READY_SECONDS = 300.0
"""How long the server may take to answer (about 40 s on two busy cores)."""


def landing(base: str, client: MlflowClient, study: str | None) -> str:
    """The link to open: the study's runs table (the latest study's when none is named), else
    the experiment list."""
    experiment = _study_experiment(client, study)
    if experiment is None:
        return f"{base}/#/experiments"
    return f"{base}/#/experiments/{experiment.experiment_id}/runs?workflowType={WORKFLOW}"


def _study_experiment(client: MlflowClient, study: str | None) -> Experiment | None:
    if study is not None:
        found = client.get_experiment_by_name(study)
        if found is None:
            raise HarnessError(f"no study named {study!r} in this store: run `harness ui` "
                               "without --study to see them all")
        return found
    studies = [e for e in client.search_experiments() if e.name != "Default"]
    return max(studies, key=lambda e: e.creation_time or 0, default=None)


def serve(cmd: list[str], *, health: str, timeout: float = READY_SECONDS) -> subprocess.Popen:
    """Start the server ``cmd`` and return it once ``health`` answers 200; a clear error if it
    exits first or does not answer in ``timeout`` seconds (it is stopped then)."""
    proc = subprocess.Popen(cmd, start_new_session=True)  # stopped as a group: its workers too
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HarnessError(f"the MLflow UI server exited with code {proc.returncode} "
                               "before it answered (is the port taken? try --port)")
        if answers(health):
            return proc
        time.sleep(0.5)
    stop(proc)
    raise HarnessError(f"the MLflow UI server did not answer {health} within {timeout:.0f} s")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group, SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def mlflow_ui_command(store: str, *, host: str, port: str) -> list[str]:
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store,
            "--registry-store-uri", store, "--host", host, "--port", port]
