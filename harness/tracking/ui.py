"""`harness ui`: the MLflow UI on the harness's store, announced only once it answers, with a
link that lands on a study's runs table.

MLflow's experiment page opens on its GenAI overview ("Traces 0"). Two things say otherwise: the
experiment tag `mlflow.experimentKind` = `custom_model_development`, set when the harness
creates an experiment (`harness.tracking.store`), for UIs that choose their view by it, and the UI's
`workflowType=machine_learning` parameter, which MLflow 3.17 follows first and the link carries.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.ports import free_port, port_taken
from harness.procs import stop_through_interrupts
from harness.urls import ui_route

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Experiment

READY_SECONDS = 300.0
"""How long the server may take to answer (about 40 s on two busy cores)."""


def landing(base: str, client: MlflowClient, study: str | None) -> str:
    """The link to open: the study's runs table (the latest study's when none is named), else
    the experiment list."""
    experiment = _study_experiment(client, study)
    if experiment is None:
        return f"{base}/#/experiments"
    return f"{base}/{ui_route(experiment.experiment_id)}"


def _study_experiment(client: MlflowClient, study: str | None) -> Experiment | None:
    if study is not None:
        found = client.get_experiment_by_name(study)
        if found is None:
            raise HarnessError(f"no study named {study!r} in this store: run `harness ui` "
                               "without --study to see them all")
        return found
    studies = [e for e in client.search_experiments() if e.name != "Default"]
    return max(studies, key=lambda e: e.creation_time or 0, default=None)


def serve(cmd: list[str], *, host: str, port: int, timeout: float = READY_SECONDS
          ) -> subprocess.Popen[bytes]:
    """Start the server ``cmd`` listening on ``host``:``port`` and return it once it answers
    there itself. A clear error if the port is taken, if it exits first or does not answer in
    ``timeout`` seconds; whatever ends the wait (the error, Ctrl-C, SIGTERM) stops its whole
    process group first: MLflow's UI is a uvicorn server, a job runner and its consumers."""
    if port_taken(host, port):
        raise HarnessError(taken_message(host, port))
    proc = subprocess.Popen(cmd, start_new_session=True)  # stopped as a group: its workers too
    try:
        wait_ready(proc, host=host, port=port, timeout=timeout)
    except BaseException:
        stop_through_interrupts(proc)
        raise
    return proc


def wait_ready(proc: subprocess.Popen[bytes], *, host: str, port: int,
                timeout: float) -> None:
    """Return once the server ``proc`` answers on ``host``:``port`` and is the one listening
    there; a HarnessError when it exits first or ``timeout`` seconds pass."""
    health = f"http://{host}:{port}/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if port_taken(host, port):  # taken after the check: another program won the race
                raise HarnessError(taken_message(host, port))
            raise HarnessError(f"the MLflow UI server exited with code {proc.returncode} "
                               "before it answered (its output above says why)")
        # another program answering on the port is not this server: it must be listening
        if answers(health) and listening(proc.pid, port):
            return
        time.sleep(0.5)
    raise HarnessError(f"the MLflow UI server did not answer {health} within {timeout:.0f} s")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def listening(pid: int, port: int) -> bool:
    """Whether process ``pid`` or one of its descendants listens on TCP ``port``."""
    import psutil

    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.Error:
        return False
    for proc in family:
        with contextlib.suppress(psutil.Error):
            if any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
                   for c in proc.net_connections(kind="inet")):
                return True
    return False


def taken_message(host: str, port: int) -> str:
    return (f"port {port} on {host} is taken by another program (another `harness ui` or "
            f"MLflow server?): choose a free one, e.g. --port {free_port(host)}")


def mlflow_ui_command(store: str, *, host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store,
            "--registry-store-uri", store, "--host", host, "--port", str(port)]
