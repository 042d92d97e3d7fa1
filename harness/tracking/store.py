"""Where runs are recorded: the tracking URI a command uses, a client on it (the local SQLite
store created safely), the server checked before anything trains, and each study's experiment.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.urls import redact, scrub

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

LOCAL_STORE = Path("mlruns")
LOCAL_DB = "mlflow.db"


def tracking_uri(configured: str | None) -> str:
    """The configured URI, else MLFLOW_TRACKING_URI, else the local store under ./mlruns.

    The local store is SQLite (MLflow 3 keeps the file store in maintenance mode and refuses it
    by default) at mlruns/mlflow.db, with artifacts beside it in mlruns/artifacts.
    """
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or local_store_uri()


def local_store_uri() -> str:
    return f"sqlite:///{(LOCAL_STORE / LOCAL_DB).resolve()}"


_ready_stores: set[str] = set()


def client_for(uri: str | None) -> MlflowClient:
    """An MLflow client (tracking and registry) on ``uri`` (resolved as `tracking_uri` does).
    A local SQLite store is created under a file lock beside it first: processes that start
    together would otherwise race through MLflow's table creation and fail ("table ...
    already exists")."""
    from mlflow import MlflowClient

    uri = tracking_uri(uri)
    if uri.startswith("sqlite:///") and uri not in _ready_stores:
        db = Path(uri.removeprefix("sqlite:///"))
        db.parent.mkdir(parents=True, exist_ok=True)
        with open(db.with_name(f"{db.name}.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            ready = MlflowClient(uri, registry_uri=uri)
            ready.search_experiments(max_results=1)  # creates the tracking tables
            ready.search_registered_models(max_results=1)  # and the registry's
        _ready_stores.add(uri)
    return MlflowClient(uri, registry_uri=uri)


def check_tracking(uri: str) -> None:
    """Fail before any training when a tracking server is down or refuses the credentials."""
    if not uri.startswith(("http://", "https://")):
        return
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except MlflowException as err:
        raise _refused(uri, err) from None


def _refused(uri: str, err: MlflowException) -> HarnessError:
    """What to do about a tracking server that answered ``err``."""
    shown = redact(uri)
    status = err.get_http_status_code()
    if status == 401:
        return HarnessError(
            f"the MLflow tracking server at {shown} asks for credentials (401 Unauthorized): "
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (basic-auth), or "
            "MLFLOW_TRACKING_TOKEN")
    if status == 403:
        user = os.environ.get("MLFLOW_TRACKING_USERNAME", "?")
        return HarnessError(f"the MLflow tracking server at {shown} refuses user {user!r} "
                            "(403 Forbidden): grant it access, or set other credentials "
                            "in MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD")
    why = scrub(err.message.splitlines()[0][:300], uri)
    return HarnessError(f"cannot use the MLflow tracking server at {shown}: {why}\nStart "
                        "the server, or point --tracking-uri / MLFLOW_TRACKING_URI at one "
                        "that runs. No trial was started.")


def artifact_location(uri: str, experiment: str) -> str | None:
    """Artifacts of experiments in a SQLite store live beside it, in artifacts/NAME (so the
    local store keeps them in mlruns/artifacts); a server decides for itself."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///"))
    return (db.parent / "artifacts" / experiment).resolve().as_uri()


KIND_TAG, TRAINING = "mlflow.experimentKind", "custom_model_development"
"""The experiment tag that says its runs train models (MLflow's UI otherwise opens an
experiment on its GenAI overview)."""


def experiment_id(client: MlflowClient, name: str) -> str:
    """The experiment ``name``, created (as a model-training experiment) if it is new."""
    found = client.get_experiment_by_name(name)
    if found:
        return str(found.experiment_id)
    if client.tracking_uri == local_store_uri():
        LOCAL_STORE.mkdir(exist_ok=True)
    return client.create_experiment(name, artifact_location=artifact_location(
        client.tracking_uri, name), tags={KIND_TAG: TRAINING})


@contextlib.contextmanager
def as_process_store(uri: str) -> Iterator[None]:
    """For the calls inside, the process-wide tracking URI is ``uri``: MLflow's SQL registry
    store looks a models:/ source up with a client on the process-wide URI, not its own (a
    TODO in its code), and would create ./mlflow.db. A server resolves it with its own."""
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
