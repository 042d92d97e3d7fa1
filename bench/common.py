"""What the benches share: where the data is, a harness trial run as a sweep runs it, its
tokens per second, and a throw-away PostgreSQL cluster (which the tests use too).

Run the benches as scripts (`python bench/NAME.py`): their own folder is then on Python's path,
and the harness is installed in the environment.
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.config import TrainConfig
from harness.launch.command import write_trial_config
from harness.launch.runner import Launch, run_trial
from harness.protocol import Step, TrialResult

ROOT = Path(__file__).resolve().parents[1]
MEDQUAD = ROOT.parent / "shared" / "data" / "medquad"
TOOLFORMER = ROOT.parent / "shared" / "data" / "gpteacher-toolformer" / \
    "toolformer-dedupe-only-dataset.json"
"""GPTeacher's Toolformer set, near-duplicates left in (../shared/data/README.md)."""


def harness_trial(config: TrainConfig, out: Path) -> TrialResult:
    """``config`` run in ``out`` as one trial of a sweep; a bench cannot go on without it."""
    write_trial_config(config, out)
    result = run_trial(Launch(out))
    if not result.ok:
        raise SystemExit(f"harness trial failed: {result.reason}: {result.message}\n"
                         f"{result.log_tail}")
    return result


def tokens_per_second(ends: list[float], tokens: list[int], warmup: int) -> float:
    """Tokens per second of the steps after ``warmup`` (each step's end and its tokens),
    timed from the end of the last warm-up step."""
    if len(ends) <= warmup:
        return math.nan
    return sum(tokens[warmup:]) / (ends[-1] - ends[warmup - 1])


def step_times(steps: list[Step]) -> tuple[list[float], list[int]]:
    """A harness trial's steps as `tokens_per_second` takes them: their ends, their tokens."""
    return [s.time for s in steps], [s.tokens for s in steps]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def postgres_bin() -> Path | None:
    """Debian's PostgreSQL server binaries (HARNESS_PG_BIN elsewhere), if installed."""
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
def postgres_cluster(bin_dir: Path) -> Iterator[Postgres]:
    """A throw-away cluster from the binaries in ``bin_dir``: trust authentication on loopback
    only, no fsync, removed afterwards."""
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
                             "-c", "max_connections=300"], stdout=log, stderr=log,
                            **as_user)
    try:
        wait_for_server(lambda: _accepts(port), proc, data / "server.log")
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


def wait_for_server(ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path,
                    limit: float = 60) -> None:
    """Until ``ready()``; a RuntimeError with the server's log if it exits or takes longer
    than ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
