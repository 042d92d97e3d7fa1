"""Real servers for the distributed tests, started on 127.0.0.1 and stopped after: a PostgreSQL
cluster (Debian's binaries; the benches start it the same way) and an MLflow tracking server
with basic-auth."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.common import Postgres, free_port, postgres_bin, postgres_cluster, wait_for_server


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A throw-away cluster (bench/common.py), or the test skipped where PostgreSQL is not
    installed (failed in CI, which installs it)."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        message = ("PostgreSQL server binaries not found (install Debian's postgresql package, "
                   "or set HARNESS_PG_BIN)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with postgres_cluster(bin_dir) as server:
        yield server


ADMIN, ADMIN_PASSWORD = "admin", "harness-admin-pw-1"


@dataclass
class MlflowServer:
    url: str
    proc: subprocess.Popen

    def stop(self) -> None:
        """The server and its workers (its whole session), so the port is free again."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def start_mlflow_server(workdir: Path, *, backend: str, auth_db: str | None = None,
                        port: int | None = None) -> MlflowServer:
    """`mlflow server` on loopback with an artifact root, basic-auth when ``auth_db`` is given
    (admin credentials: ADMIN / ADMIN_PASSWORD)."""
    port = port or free_port()
    env = {**os.environ}
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_URI",
                "MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD"):
        env.pop(key, None)
    env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = "harness-tests-only"
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", backend, "--artifacts-destination",
           str(workdir / "artifacts"), "--serve-artifacts", "--workers", "2"]
    if auth_db:
        ini = workdir / "basic_auth.ini"
        ini.write_text("[mlflow]\ndefault_permission = READ\n"
                       f"database_uri = {auth_db}\nadmin_username = {ADMIN}\n"
                       f"admin_password = {ADMIN_PASSWORD}\nauthorization_function = "
                       "mlflow.server.auth:authenticate_request_basic_auth\n")
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(ini)
        cmd += ["--app-name", "basic-auth"]
    log_path = workdir / f"mlflow-server-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115 (the server outlives this function)
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_for_server(lambda: _health(url), proc, log_path, limit=120)
    return MlflowServer(url, proc)


def _health(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False
