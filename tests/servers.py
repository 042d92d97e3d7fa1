"""Real servers for the distributed tests, started on 127.0.0.1 and stopped after: a PostgreSQL
cluster (Debian's binaries) and an MLflow tracking server with basic-auth."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    given = os.environ.get("HARNESS_PG_BIN")
    found = [given] if given else sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    for directory in reversed(found):
        if (Path(directory) / "postgres").is_file():
            return Path(directory)
    return None


@dataclass
class Postgres:
    port: int
    user: str = "harness"

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A throw-away cluster: trust authentication on loopback only, no fsync."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        message = ("PostgreSQL server binaries not found (install Debian's postgresql package, "
                   "or set HARNESS_PG_BIN)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    data = Path(tempfile.mkdtemp(prefix="harness-pg-", dir="/tmp"))  # reachable by postgres
    owner = _unprivileged_user()
    if owner is not None:
        os.chown(data, owner.pw_uid, owner.pw_gid)
    as_user = ({"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
               if owner is not None else {})
    subprocess.run([str(bin_dir / "initdb"), "-D", str(data / "db"), "-U", "harness",
                    "--auth=trust", "-E", "UTF8", "--no-sync"], check=True,
                   capture_output=True, **as_user)
    port = free_port()
    log = open(data / "server.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([str(bin_dir / "postgres"), "-D", str(data / "db"), "-p", str(port),
                             "-h", "127.0.0.1", "-k", str(data), "-c", "fsync=off",
                             "-c", "max_connections=300"], stdout=log, stderr=log, **as_user)
    try:
        _wait_for(lambda: _accepts(port), proc, data / "server.log")
        yield Postgres(port)
    finally:
        proc.send_signal(signal.SIGINT)  # fast shutdown
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        if proc.poll() is None:
            proc.kill()
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def _unprivileged_user() -> pwd.struct_passwd | None:
    """initdb refuses root: run the cluster as the postgres account when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return pwd.getpwnam("nobody")


def _accepts(port: int) -> bool:
    import psycopg

    try:
        psycopg.connect(host="127.0.0.1", port=port, user="harness", dbname="postgres").close()
    except psycopg.OperationalError:
        return False
    return True


def _wait_for(ready: object, proc: subprocess.Popen, log: Path, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while not ready():  # type: ignore[operator]
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


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
    _wait_for(lambda: _health(url), proc, log_path, limit=120)
    return MlflowServer(url, proc)


def _health(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False
