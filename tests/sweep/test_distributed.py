"""Scale-out and fault tests against a real PostgreSQL 15 started on 127.0.0.1: studies shared by
several workers, dead children and dead workers, racing promoters, injected OOM and NaN trials
in a multi-worker sweep (on the local default storage)."""

from __future__ import annotations

import os
import signal
import threading
import uuid
from pathlib import Path
from typing import Any

import optuna
import pytest
from helpers import (
    finish,
    group_alive,
    harness,
    mlflow_runs,
    seeded_store,
    space_file,
    started_pid,
    trial_runs,
    wait_for,
)
from servers import Postgres

from harness.study.budget import reason_of, retried_from
from harness.study.record import REASON, RUN_ID, WORKER
from harness.study.storage import load_study, open_storage

State = optuna.trial.TrialState


@pytest.fixture
def db(postgres: Postgres, request: pytest.FixtureRequest) -> str:
    """A fresh database for this test's study storage."""
    return postgres.create_database(f"t{uuid.uuid4().hex}")


@pytest.fixture
def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_HEARTBEAT_SECONDS", "1")  # dead after 3 s of silence


def test_a_trial_child_killed_mid_training_fails_alone(
        tmp_path: Path, tiny_model_dir: Path, db: str) -> None:
    """1. SIGKILL the trial's process mid-training: FAIL with a reason, MLflow FAILED, nothing
    of it left running, the next trial runs, and the trial count is exact."""
    uri = seeded_store(tmp_path / "mlflow.db")
    space = space_file(tmp_path, tiny_model_dir, trials=2, max_steps=30)
    space.write_text(space.read_text().replace("pruner: median", "pruner: none"))
    sweep = harness("sweep", str(space), "--storage", db, "--tracking-uri", uri, "--no-promote",
                    cwd=tmp_path)
    events = tmp_path / "studies" / "tiny" / "trial-0000" / "events.jsonl"
    wait_for(lambda: events.is_file() and '"step"' in events.read_text(), sweep)
    pid = started_pid(events)
    os.kill(pid, signal.SIGKILL)
    finish(sweep)

    trials = load_study("tiny", open_storage(db)).trials
    assert [t.state for t in trials] == [State.FAIL, State.COMPLETE]
    assert trials[0].user_attrs[REASON] in ("crash", "killed")
    assert "exit code" in trials[0].user_attrs["harness.message"]
    assert not group_alive(trials[0].system_attrs[WORKER]["pgid"])
    runs = {r.info.run_id: r for r in trial_runs(uri, "tiny")}
    assert runs[trials[0].user_attrs[RUN_ID]].info.status in ("FAILED", "KILLED")
    assert runs[trials[1].user_attrs[RUN_ID]].info.status == "FINISHED"
    assert len(runs) == 2


def test_a_dead_worker_is_noticed_by_heartbeat_and_its_trial_retried_once(
        tmp_path: Path, tiny_model_dir: Path, db: str, fast_heartbeat: None) -> None:
    """2. A worker dies with its machine mid-trial; a worker elsewhere fails the stale trial
    through Optuna's heartbeat, retries its parameters once and closes its MLflow run."""
    uri = seeded_store(tmp_path / "mlflow.db")
    space = space_file(tmp_path, tiny_model_dir, trials=2, max_steps=30)
    space.write_text(space.read_text().replace("pruner: median", "pruner: none"))
    finish(harness("sweep", str(space), "--storage", db, "--tracking-uri", uri, "--no-run",
                   cwd=tmp_path))
    first = harness("worker", "--study", "tiny", "--storage", db, cwd=tmp_path,
                    env={"HARNESS_WORKER_HOST": "machine-a"})
    events = tmp_path / "studies" / "tiny" / "trial-0000" / "events.jsonl"
    wait_for(lambda: events.is_file() and '"step"' in events.read_text(), first)
    pgid = load_study("tiny", open_storage(db)).trials[0].system_attrs[WORKER]["pgid"]
    os.killpg(first.pid, signal.SIGKILL)  # machine-a goes down: the worker and its trial
    os.killpg(pgid, signal.SIGKILL)
    first.wait()

    second = harness("worker", "--study", "tiny", "--storage", db, cwd=tmp_path,
                     env={"HARNESS_WORKER_HOST": "machine-b"})
    out = finish(second)
    assert "left running by a dead worker" in out

    trials = load_study("tiny", open_storage(db)).trials
    assert [t.state for t in trials] == [State.FAIL, State.COMPLETE, State.COMPLETE], out
    retry = next(t for t in trials if retried_from(t) is not None)
    assert retried_from(retry) == 0 and retry.params == trials[0].params
    assert reason_of(trials[0]) == "abandoned"
    runs = {r.info.run_id: r for r in trial_runs(uri, "tiny")}
    assert runs[trials[0].user_attrs[RUN_ID]].info.status == "FAILED"
    assert runs[trials[0].user_attrs[RUN_ID]].data.tags["trial.reason"] == "abandoned"
    assert not [r for r in runs.values() if r.info.status == "RUNNING"]


def test_four_workers_finish_exactly_the_study_budget(
        tmp_path: Path, tiny_model_dir: Path, db: str) -> None:
    """3. Four workers on one study of 12 trials: 12 finished, unique numbers, no trial lost or
    run twice, one MLflow run each."""
    uri = seeded_store(tmp_path / "mlflow.db")
    space = space_file(tmp_path, tiny_model_dir, trials=12, max_steps=2)
    space.write_text(space.read_text().replace("count: 1", "count: 0"))
    finish(harness("sweep", str(space), "--storage", db, "--tracking-uri", uri, "--no-run",
                   cwd=tmp_path))
    workers = [harness("worker", "--study", "tiny", "--storage", db, cwd=tmp_path)
               for _ in range(4)]
    outputs = [finish(w) for w in workers]

    trials = load_study("tiny", open_storage(db)).trials
    assert len(trials) == 12, outputs
    assert sorted(t.number for t in trials) == list(range(12))
    assert all(t.state.is_finished() for t in trials)
    assert sum(t.state == State.COMPLETE for t in trials) >= 1
    drawn = [sorted(t.params.items()) for t in trials if retried_from(t) is None]
    assert len({repr(p) for p in drawn}) == len(drawn), drawn  # no worker repeats another
    runs = trial_runs(uri, "tiny")
    assert sorted(int(r.data.tags["optuna.trial"]) for r in runs) == list(range(12))
    assert not [r for r in runs if r.info.status == "RUNNING"]
    (parent,) = [r for r in mlflow_runs(uri, "tiny") if "optuna.trial" not in r.data.tags]
    assert parent.info.status == "FINISHED" and parent.data.tags["trials.total"] == "12"


def test_oom_and_nan_trials_inside_a_multi_worker_sweep_on_the_local_default(
        tmp_path: Path, tiny_model_dir: Path, harness_home: Path) -> None:
    """6. OOM and NaN injected into two trials of a sweep run by a two-slot worker and a second
    worker process on the local journal storage: the sweep completes, the count is exact."""
    space = space_file(tmp_path, tiny_model_dir, trials=5, max_steps=3)
    space.write_text(space.read_text().replace("count: 1", "count: 0")
                     .replace("pruner: median", "pruner: none"))
    faults = {"HARNESS_FAULT": "oom@1#1|nan@1#3"}
    finish(harness("sweep", str(space), "--no-run", cwd=tmp_path))
    one = harness("worker", "--study", "tiny", "--parallel", "2", cwd=tmp_path, env=faults)
    two = harness("worker", "--study", "tiny", cwd=tmp_path, env=faults)
    outputs = [finish(one), finish(two)]
    assert not any("database is locked" in o for o in outputs)

    study = load_study("tiny", open_storage(str(tmp_path / "mlruns" / "optuna.journal")))
    trials = study.trials
    assert len(trials) == 5 and all(t.state.is_finished() for t in trials)
    by_number = {t.number: t for t in trials}
    assert by_number[1].state == State.PRUNED and by_number[1].user_attrs[REASON] == "oom"
    assert by_number[3].state == State.FAIL and by_number[3].user_attrs[REASON] == "nan"
    assert sum(t.state == State.COMPLETE for t in trials) == 3
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert len(trial_runs(uri, "tiny")) == 5
    slots = {r.data.tags.get("harness.slot") for r in trial_runs(uri, "tiny")}
    assert {"slot 0", "slot 1"} & slots


def test_racing_promoters_leave_champion_on_the_best_version(
        tmp_path: Path, postgres: Postgres) -> None:
    """4. Promoters race on one registered model (PostgreSQL-backed MLflow): whatever the
    interleaving, `champion` ends on the best version that passed the gate, and one trial is
    never registered twice."""
    from mlflow import MlflowClient

    from harness.tracking.promotion import Candidate, promote_run

    uri = postgres.create_database("race_registry")
    client = MlflowClient(uri, registry_uri=uri)
    exp = client.create_experiment("race", artifact_location=(tmp_path / "a").as_uri())
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")

    def finished_run(loss: float) -> Any:
        run = client.create_run(exp, tags={"dataset.eval_fingerprint": "same"})
        client.log_metric(run.info.run_id, "eval/loss", loss)
        client.log_artifacts(run.info.run_id, str(adapter), "adapter")
        client.set_terminated(run.info.run_id, "FINISHED")
        return client.get_run(run.info.run_id)

    for round_ in range(3):
        model = f"race-{round_}"
        baseline = finished_run(2.0)
        promote_run(client, baseline, Candidate("old", 0, "eval_loss", 2.0), model=model,
                    margin=0.0)
        better, best = finished_run(1.5), finished_run(1.2)
        # Three promoters at once: study a, study b, and study b's trial a second time.
        race(uri, model, [("a", better), ("b", best), ("b", best)])
        champion = client.get_model_version_by_alias(model, "champion")
        assert champion.tags["study"] == "b" and champion.tags["eval_loss"] == "1.2"
        versions = client.search_model_versions(f"name = '{model}'")
        assert sorted(v.tags["study"] for v in versions) == ["a", "b", "old"]


def race(uri: str, model: str, racers: list[tuple[str, Any]]) -> None:
    from mlflow import MlflowClient

    from harness.tracking.promotion import Candidate, promote_run

    barrier = threading.Barrier(len(racers))
    errors: list[BaseException] = []

    def promote(study: str, run: Any) -> None:
        own = MlflowClient(uri, registry_uri=uri)
        barrier.wait()
        try:
            promote_run(own, run, Candidate(study, 1, "eval_loss", run.data.metrics["eval/loss"]),
                        model=model, margin=0.0)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=promote, args=r) for r in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
