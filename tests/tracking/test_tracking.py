"""The local MLflow store under concurrent first use, and runs a sweep could not end."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from helpers import seeded_store

from harness.tracking.store import client_for
from harness.tracking.study_run import close_left_open

STARTS_AT_ONCE = """
import sys, time
from harness.tracking.store import client_for
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
client = client_for(sys.argv[1])
client.create_experiment(f"e{sys.argv[3]}")
"""


def test_processes_creating_a_new_local_store_at_once_all_succeed(tmp_path: Path) -> None:
    """Two `harness sweep` started together in a fresh directory: before the lock, MLflow's
    table creation raced ("table ... already exists", "duplicate column name")."""
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    start = time.time() + 8  # after every interpreter has imported MLflow
    procs = [subprocess.Popen([sys.executable, "-c", STARTS_AT_ONCE, uri, str(start), str(i)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(4)]
    outputs = [p.communicate()[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    names = {e.name for e in client_for(uri).search_experiments()}
    assert {"e0", "e1", "e2", "e3"} <= names


def test_runs_left_running_for_ended_trials_are_ended_with_their_reason(tmp_path: Path) -> None:
    uri = seeded_store(tmp_path / "mlflow.db")
    client = client_for(uri)
    exp = client.create_experiment("s")
    runs = {n: client.create_run(exp, tags={"optuna.study": "s", "optuna.trial": str(n)})
            for n in range(4)}
    client.set_terminated(runs[3].info.run_id, "FINISHED")
    closed = close_left_open(uri, "s", ended={0: "disk_full", 1: "interrupted", 3: "finished"})
    assert sorted(closed) == sorted([runs[0].info.run_id, runs[1].info.run_id])
    status = {n: client.get_run(r.info.run_id).info.status for n, r in runs.items()}
    assert status == {0: "FAILED", 1: "KILLED", 2: "RUNNING", 3: "FINISHED"}
    assert client.get_run(runs[0].info.run_id).data.tags["trial.reason"] == "disk_full"


def test_a_password_in_the_tracking_uri_is_never_printed(
        tmp_path: Path, tiny_model_dir: Path, capsys: Any, monkeypatch: Any) -> None:
    from helpers import space_file
    from servers import free_port

    from harness.cli import main

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"http://alice:s3cret-pw@127.0.0.1:{free_port()}"  # nothing listens there
    space = space_file(tmp_path, tiny_model_dir)
    assert main(["sweep", str(space), "--storage", str(tmp_path / "j"), "--tracking-uri",
                 uri]) == 2
    err = capsys.readouterr().err
    assert "alice:***@127.0.0.1" in err and "s3cret-pw" not in err, err
