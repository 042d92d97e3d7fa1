"""`harness ui`: a study's experiment is a model-training page, and the command says when the
server answers, with a link to the study's runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from helpers import seeded_store

from harness.errors import HarnessError
from harness.ports import free_port
from harness.tracking.store import KIND_TAG, TRAINING, client_for, experiment_id
from harness.tracking.study_run import StudyRun
from harness.tracking.ui import answers, landing, listening, wait_ready


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


def stoppable() -> None:
    """Ctrl-C and SIGTERM reach `harness ui` as from a terminal, even when the test run was
    started in the background (`make test &` ignores SIGINT, and its children inherit that)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_harness_ui_says_when_it_answers_and_stops_with_its_server(
        tmp_path: Path, stop: signal.Signals) -> None:
    uri = seeded_store(tmp_path / "mlflow.db")
    study = experiment_id(client_for(uri), "demo")
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "ui", "--tracking-uri", uri,
                             "--port", port, "--study", "demo"], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=stoppable)
    started: set[int] = set()
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
        with contextlib.suppress(psutil.Error):
            started = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        os.kill(proc.pid, stop)  # the harness alone: its server must go with it
        proc.wait()
    assert started and not left_behind(started)  # uvicorn, the job runner, its consumers
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
        answered = True
    except OSError:
        answered = False
    assert not answered, "the MLflow server outlived `harness ui`"


ANSWER_ALL = """
import http.server, sys
class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"not mlflow")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ok).serve_forever()
"""


@pytest.fixture
def foreign_server() -> Iterator[subprocess.Popen[bytes]]:
    """Another program answering 200 on every path of a port (its only argument), /health
    included."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", ANSWER_ALL, str(port)])
    deadline = time.monotonic() + 60  # a hang guard, not a timing
    while not answers(f"http://127.0.0.1:{port}/health"):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    yield proc
    proc.kill()
    proc.wait()


def run_ui(tmp_path: Path, *args: str, stop_after: float | None = None
           ) -> tuple[int, str, set[int]]:
    """`harness ui ARGS` as a user runs it: its exit code, what it said, and every process
    it started (seen while it ran), SIGTERMed ``stop_after`` seconds after its server
    process appeared."""
    uri = seeded_store(tmp_path / "mlflow.db")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "ui", "--tracking-uri", uri,
                             *args], cwd=tmp_path, env=env, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    seen: set[int] = set()
    server_at = None
    deadline = time.monotonic() + 300  # a hang guard, not a timing
    while proc.poll() is None:
        with contextlib.suppress(psutil.Error):
            seen |= {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        server_at = server_at or (time.monotonic() if seen else None)
        if stop_after is not None and server_at and time.monotonic() > server_at + stop_after:
            proc.send_signal(signal.SIGTERM)
            stop_after = None
        assert time.monotonic() < deadline, "harness ui did not end"
        time.sleep(0.1)
    assert proc.stderr is not None
    return proc.returncode, proc.stderr.read(), seen


def left_behind(pids: set[int]) -> list[str]:
    _, alive = psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)],
                                 timeout=5)
    return [" ".join(p.cmdline()) for p in alive]


def port_of(server: subprocess.Popen[bytes]) -> int:
    return int(server.args[-1])  # type: ignore[index]


def test_harness_ui_on_a_port_another_program_answers_says_it_is_taken(
        tmp_path: Path, foreign_server: subprocess.Popen[bytes]) -> None:
    port = port_of(foreign_server)
    code, said, started = run_ui(tmp_path, "--port", str(port))
    assert code == 2, said
    assert f"port {port} on 127.0.0.1 is taken" in said and "--port" in said
    assert "ready:" not in said
    assert not left_behind(started)


def test_a_server_that_answers_is_not_taken_for_ours_unless_ours_listens(
        foreign_server: subprocess.Popen[bytes]) -> None:
    port = port_of(foreign_server)
    # the race the check before starting cannot close: another program binds the port first
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                               start_new_session=True)
    try:
        with pytest.raises(HarnessError, match="did not answer"):
            wait_ready(sleeper, host="127.0.0.1", port=port, timeout=2)
        assert not listening(sleeper.pid, port)
        assert listening(foreign_server.pid, port)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_harness_ui_stopped_before_its_server_answers_ends_the_whole_server(
        tmp_path: Path) -> None:
    code, said, started = run_ui(tmp_path, "--port", str(free_port()), stop_after=3.0)
    assert started, "the server never started"
    assert not left_behind(started)
    assert code == (0 if "ready:" in said else 130), said


def test_harness_ui_whose_server_fails_ends_the_whole_server(tmp_path: Path) -> None:
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: the server cannot listen there
    code, said, started = run_ui(tmp_path, "--host", "192.0.2.1", "--port", str(free_port()))
    assert code == 2 and "exited with code" in said, said
    assert not left_behind(started)
