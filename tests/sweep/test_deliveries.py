"""Held MLflow writes: a real local store takes its run's writes, a tracking server that is not
there keeps them waiting, and the end of a sweep says what was not delivered."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest
from helpers import seeded_store
from mlflow import MlflowClient
from rich.console import Console

from harness.sweep import deliveries as deliveries_module
from harness.sweep.deliveries import Deliveries
from harness.tracking.outbox import RUN, Outbox


@pytest.fixture
def away(monkeypatch: pytest.MonkeyPatch) -> str:
    """The URI of a tracking server that is not there (a port nothing listens on)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def finished_run(tmp_path: Path) -> Outbox:
    client = MlflowClient(seeded_store(tmp_path / "mlflow.db"))
    box = Outbox(client)
    box.send("create_run", client.create_experiment("tests"))
    box.send("set_terminated", RUN, "FINISHED")
    return box


def test_delivered_runs_are_forgotten_and_waiting_ones_kept(tmp_path: Path, away: str) -> None:
    delivered, waiting = finished_run(tmp_path), Outbox(MlflowClient(away))
    waiting.send("create_run", "0")
    held = Deliveries()
    held.add(delivered)
    held.add(waiting)
    held.retry()
    assert held.boxes() == [waiting]
    assert delivered.client.get_run(delivered.run_id).info.status == "FINISHED"
    assert held.disk_full() is None


def test_the_end_of_a_sweep_says_how_many_writes_were_not_delivered(
        tmp_path: Path, away: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deliveries_module, "DRAIN_SECONDS", 0.0)
    waiting = Outbox(MlflowClient(away))
    waiting.send("create_run", "0")
    waiting.send("log_param", RUN, "lora.r", "4")
    held = Deliveries()
    held.add(waiting)
    out = io.StringIO()
    held.drain(Console(file=out, width=400), also=[finished_run(tmp_path)], uri=away,
               out_root=tmp_path / "studies")
    text = out.getvalue()
    assert f"the MLflow tracking server at {away} is still unreachable: 2 write(s) of 1 " \
           "run(s) were not delivered" in text
    assert str(tmp_path / "studies") in text
