"""`harness ui`: a study's experiment is a model-training page, and the command says when the
server answers, with a link to the study's runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from helpers import seeded_store

from harness.launch.command import free_port
from harness.tracking.store import KIND_TAG, TRAINING, client_for, experiment_id
from harness.tracking.study_run import StudyRun
from harness.tracking.ui import landing


def test_study_experiments_are_model_training_pages_and_the_link_lands_on_runs(
        tmp_path: Path) -> None:
    uri = seeded_store(tmp_path / "mlflow.db")
    client = client_for(uri)
    assert landing("http://h:1", client, None) == "http://h:1/#/experiments"
    first = StudyRun(uri=uri, study="first", space_text="x: 1", params={}).experiment_id
    second = experiment_id(client, "second")
    for name in ("first", "second"):
        assert client.get_experiment_by_name(name).tags[KIND_TAG] == TRAINING, name
    runs = "runs?workflowType=machine_learning"
    assert landing("http://h:1", client, None) == f"http://h:1/#/experiments/{second}/{runs}"
    assert landing("http://h:1", client, "first") == f"http://h:1/#/experiments/{first}/{runs}"


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_harness_ui_says_when_it_answers_and_stops_with_its_server(
        tmp_path: Path, stop: signal.Signals) -> None:
    uri = seeded_store(tmp_path / "mlflow.db")
    study = experiment_id(client_for(uri), "demo")
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "ui", "--tracking-uri", uri,
                             "--port", port, "--study", "demo"], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert first.startswith("starting the MLflow UI"), first
        ready = ""
        while not ready.startswith("ready:") and proc.poll() is None:
            ready = proc.stderr.readline()  # the server's own lines come in between
        link = f"http://127.0.0.1:{port}/#/experiments/{study}/runs?workflowType=machine_learning"
        assert ready.startswith(f"ready: {link}"), ready
        # it said ready: the server answers now, not later
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            assert answer.status == 200
    finally:
        os.kill(proc.pid, stop)  # the harness alone: its server must go with it
        proc.wait()
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
        answered = True
    except OSError:
        answered = False
    assert not answered, "the MLflow server outlived `harness ui`"
