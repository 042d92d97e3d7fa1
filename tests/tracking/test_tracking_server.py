"""A real `mlflow server` (PostgreSQL backend, artifact root, basic-auth): credentials, a server
that is down at the start, and one that drops in the middle of a trial."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from helpers import finish, harness, space_file, started_pid, wait_for
from servers import ADMIN, ADMIN_PASSWORD, Postgres, start_mlflow_server

from harness.study.storage import load_study, open_storage

State = optuna.trial.TrialState


def test_basic_auth_server_needs_credentials_then_tracks_the_sweep(
        tmp_path: Path, tiny_model_dir: Path, postgres: Postgres,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """5. No credentials: a clear error naming the variables, before anything is created.
    The right ones: the sweep is tracked on the server and its adapter registered there."""
    backend = postgres.create_database("auth_backend")
    users = postgres.create_database("auth_users")
    server = start_mlflow_server(tmp_path, backend=backend, auth_db=users)
    try:
        space = space_file(tmp_path, tiny_model_dir, trials=1, max_steps=2)
        storage = tmp_path / "optuna.journal"
        args = ("sweep", str(space), "--storage", str(storage), "--tracking-uri", server.url)
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
        refused = harness(*args, cwd=tmp_path)
        refused.wait(timeout=120)
        out = refused.log.read_text()  # type: ignore[attr-defined]
        assert refused.returncode == 2, out
        assert "401" in out and "MLFLOW_TRACKING_USERNAME" in out
        assert "Traceback" not in out
        assert not storage.exists() and not (tmp_path / "studies").exists()

        creds = {"MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD}
        wrong = harness(*args, cwd=tmp_path, env={**creds, "MLFLOW_TRACKING_PASSWORD": "no"})
        assert wrong.wait(timeout=120) == 2
        finish(harness(*args, cwd=tmp_path, env=creds))

        for key, value in creds.items():
            monkeypatch.setenv(key, value)
        from mlflow import MlflowClient

        client = MlflowClient(server.url, registry_uri=server.url)
        runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
        assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED"]
        champion = client.get_model_version_by_alias("tiny-adapter", "champion")
        assert champion.source.startswith("models:/m-")
        import mlflow

        got = Path(mlflow.artifacts.download_artifacts(
            artifact_uri=client.get_model_version_download_uri("tiny-adapter",
                                                               champion.version),
            dst_path=str(tmp_path / "got"), tracking_uri=server.url))
        assert (got / "adapter_config.json").is_file()
    finally:
        server.stop()


def test_a_tracking_server_that_is_down_stops_the_sweep_before_training(
        tmp_path: Path, tiny_model_dir: Path) -> None:
    from servers import free_port

    space = space_file(tmp_path, tiny_model_dir, trials=1)
    proc = harness("sweep", str(space), "--storage", str(tmp_path / "optuna.journal"),
                   "--tracking-uri", f"http://127.0.0.1:{free_port()}", cwd=tmp_path)
    proc.wait(timeout=120)
    out = proc.log.read_text()  # type: ignore[attr-defined]
    assert proc.returncode == 2, out
    assert "cannot use the MLflow tracking server" in out and "No trial was started" in out
    assert not (tmp_path / "studies").exists()


def test_a_tracking_server_that_drops_mid_trial_loses_nothing(
        tmp_path: Path, tiny_model_dir: Path, postgres: Postgres) -> None:
    """The server stops while a trial trains and comes back later: the trial is not killed, its
    metrics reach the server once it is back, and the adapter is promoted."""
    backend = postgres.create_database("drop_backend")
    server = start_mlflow_server(tmp_path, backend=backend)
    port = int(server.url.rsplit(":", 1)[1])
    space = space_file(tmp_path, tiny_model_dir, trials=1, max_steps=40)
    space.write_text(space.read_text().replace("eval_steps: 2", "eval_steps: 10"))
    sweep = harness("sweep", str(space), "--storage", str(tmp_path / "optuna.journal"),
                    "--tracking-uri", server.url, cwd=tmp_path,
                    env={"HARNESS_MLFLOW_DRAIN_SECONDS": "300"})
    events = tmp_path / "studies" / "tiny" / "trial-0000" / "events.jsonl"
    try:
        wait_for(lambda: events.is_file() and started_pid(events) is not None, sweep)
        server.stop()
        time.sleep(5)
        server = start_mlflow_server(tmp_path, backend=backend, port=port)
        out = finish(sweep)
    finally:
        server.stop()
        if sweep.poll() is None:
            sweep.kill()

    trials = load_study("tiny", open_storage(str(tmp_path / "optuna.journal"))).trials
    assert [t.state for t in trials] == [State.COMPLETE], out
    server = start_mlflow_server(tmp_path, backend=backend, port=port)
    try:
        from mlflow import MlflowClient

        client = MlflowClient(server.url, registry_uri=server.url)
        run = client.get_run(trials[0].user_attrs["mlflow_run_id"])
        assert run.info.status == "FINISHED"
        losses = client.get_metric_history(run.info.run_id, "train/loss")
        assert sorted(m.step for m in losses) == list(range(1, 41))
        assert client.get_model_version_by_alias("tiny-adapter", "champion").run_id == \
            run.info.run_id
    finally:
        server.stop()
