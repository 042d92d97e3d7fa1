"""Helpers shared by the test modules: a search-space file on the tiny model, sweeps and
`harness` processes started as a user would, a trial config, and MLflow lookups."""

from __future__ import annotations

import argparse
import atexit
import functools
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.cli import main
from harness.config import TrainConfig, from_mapping
from harness.launch.runner import Launch, Watcher, run_trial
from harness.protocol import Event, StopRequest, TrialResult
from harness.space.load import parse_space
from harness.study.storage import open_storage, open_study
from harness.sweep.context import Control, SweepContext, SweepOptions
from harness.sweep.deliveries import Deliveries
from harness.sweep.objective import Launcher, Objective
from harness.tracking.study_run import StudyRun

ROOT = Path(__file__).resolve().parents[1]


def seeded_store(path: Path) -> str:
    """The URI of a SQLite MLflow store at ``path`` whose tables are made already: a copy of one
    made once per test session (MLflow's table creation takes seconds, the copy milliseconds).
    A store that is there already is left as it is."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_empty_store(), path)
    return f"sqlite:///{path}"


@functools.cache
def _empty_store() -> Path:
    from harness.tracking.store import client_for

    path = Path(tempfile.mkdtemp(prefix="harness-tests-mlflow-")) / "mlflow.db"
    client_for(f"sqlite:///{path}")  # the tracking tables and the registry's
    atexit.register(shutil.rmtree, path.parent, ignore_errors=True)
    return path


def space_file(tmp_path: Path, model_dir: Path, *, name: str = "tiny", trials: int = 3,
               enqueue: str = "", max_steps: int = 4, study: str = "") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"""
model: {model_dir}
data: {{path: {ROOT / 'datasets/samples/alpaca.json'}, format_file: chat, cutoff_len: 64,
        eval_fraction: 0.2, train_on: all}}
training: {{max_steps: {max_steps}, micro_batch_size: 2, eval_steps: 2, scheduler: constant}}
samples: {{count: 1, max_new_tokens: 4}}
study: {{sampler: random, seed: 0, pruner: median, min_peers: 1, trials: {trials},
         output_dir: {tmp_path / 'studies'}{study}}}
registry: {{model_name: tiny-adapter, margin: 0.01}}
search:
  training.learning_rate: {{low: 1.0e-6, high: 3.0e-2, log: true}}
  lora.r: [2, 4]
enqueue:
{enqueue}
""")
    return path


def sweep(space: Path, stores: dict[str, str], *extra: str) -> int:
    return main(["sweep", str(space), "--storage", stores["storage"], "--tracking-uri",
                 stores["uri"], *extra])


def client(stores: dict[str, str]) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(stores["uri"], registry_uri=stores["uri"])


def wait_for(condition: Any, proc: subprocess.Popen, limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert proc.poll() is None, "the sweep ended before the trial started training"
        assert time.monotonic() < deadline, "the trial never reached its first step"
        time.sleep(0.2)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def make_config(tmp_path: Path, model_dir: Path, **training: Any) -> TrainConfig:
    raw = {
        "model": str(model_dir),
        "data": {"path": str(ROOT / "datasets/samples/alpaca.json"),
                 "format_file": "chat", "cutoff_len": 64, "eval_fraction": 0.2},
        "quantization": {"mode": training.pop("mode", "none")},
        "lora": {"r": 4, "alpha": 8},
        "training": {"max_steps": 4, "micro_batch_size": 2, "learning_rate": 1e-2, **training},
        "samples": {"count": 2, "max_new_tokens": 6},
        "tracking": {"uri": seeded_store(tmp_path / "mlflow.db"), "experiment": "tests"},
    }
    return from_mapping(TrainConfig, raw)


def harness(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`harness ARGS` in its own session, its output in a log file beside the test's data."""
    log = cwd / f"harness-{time.monotonic_ns()}.log"
    with open(log, "wb") as out:
        inherited = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        proc = subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=cwd,
                                env={**inherited, **(env or {})}, start_new_session=True,
                                stdout=out, stderr=subprocess.STDOUT)
    proc.log = log  # type: ignore[attr-defined]
    return proc


def finish(proc: subprocess.Popen, limit: float = 600) -> str:
    proc.wait(timeout=limit)
    out = proc.log.read_text(errors="replace")  # type: ignore[attr-defined]
    assert proc.returncode == 0, out[-4000:]
    return out


def mlflow_runs(uri: str, study: str) -> list[Any]:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    return client.search_runs([client.get_experiment_by_name(study).experiment_id])


def trial_runs(uri: str, study: str) -> list[Any]:
    return [r for r in mlflow_runs(uri, study) if "optuna.trial" in r.data.tags]


def started_pid(events: Path) -> int | None:
    import json

    for line in events.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "started":
            return event["pid"]
    return None


SPACE = ("data: {{path: d.json}}\n"
         "study: {{name: t, trials: 3, sampler: random, output_dir: {out}}}\n"
         "search:\n  lora.r: [2, 4, 8]\n")


def sweep_context(tmp_path: Path, *, total: int = 3, joining: bool = False,
                  options: SweepOptions | None = None, searched: str = "") -> SweepContext:
    """A sweep's context on a journal study in ``tmp_path``, as `open_sweep` builds it (its
    runs: a local MLflow store in ``tmp_path`` that starts empty); ``searched`` adds lines to
    its search section."""
    space = parse_space(SPACE.format(out=tmp_path / "studies") + searched, "space.yaml")
    url = str(tmp_path / "optuna.journal")
    console = Console(file=io.StringIO())
    return SweepContext(space=space, options=options or SweepOptions(), console=console,
                        name="t", uri=seeded_store(tmp_path / "mlflow.db"), url=url,
                        study=open_study("t", open_storage(url), space.study),
                        joining=joining, total=total, control=Control(console))


class Recording(Watcher):
    """A trial's watcher in a test: each event to ``on_event``, the trial stopped when
    ``stop`` says why, the process group kept in ``pgid``."""

    def __init__(self, on_event: Callable[[Event], Any] | None = None,
                 stop: Callable[[], StopRequest | None] | None = None) -> None:
        self.on_event = on_event or (lambda event: None)
        self.stop = stop or (lambda: None)
        self.pgid: int | None = None

    def spawned(self, pgid: int) -> None:
        self.pgid = pgid

    def seen(self, event: Event) -> None:
        self.on_event(event)

    def stop_for(self) -> StopRequest | None:
        return self.stop()


def launched(out: Path, watcher: Watcher | None = None, **launch: Any) -> TrialResult:
    """The trial in ``out`` run to its end (``launch``: the `Launch` settings)."""
    return run_trial(Launch(out, **launch), watcher)


def commands(parser: argparse.ArgumentParser | None = None,
             name: str = "harness") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every command of the `harness` parser (``parser``), by its full name."""
    from harness.cli import _parser

    parser = parser or _parser()
    yield name, parser
    for action in parser._actions:  # argparse keeps its subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                yield from commands(child, f"{name} {sub}")


STAND_IN = ROOT / "tests" / "launch" / "stand_in.py"


def stand_in(script: Callable[[Path], list[dict[str, Any]]]) -> Launcher:
    """A runner that launches the stand-in trial process (tests/launch/stand_in.py) in place
    of the harness's trial, acting out ``script(its directory)``."""

    def launch(given: Launch, watcher: Watcher) -> TrialResult:
        actions = json.dumps(script(given.output_dir))
        return run_trial(replace(given, command=[sys.executable, str(STAND_IN)],
                                 env={**given.env, "STAND_IN": actions}, poll_seconds=0.02,
                                 grace=5.0), watcher)

    return launch


def run_client(config: TrainConfig) -> Any:
    from harness.tracking.store import client_for

    return client_for(config.tracking.uri)


def tracked_trial(config: TrainConfig, out: Path, **kwargs: Any) -> tuple[TrialResult, Any]:
    """A trial launched as a sweep launches it, recorded in MLflow; its result and run."""
    from harness.launch.command import write_trial_config
    from harness.tracking.trial_run import TrialRun

    write_trial_config(config, out)
    run = TrialRun(config, run_name=out.name)
    result = launched(out, Recording(run.on_event), **kwargs)
    run.finish(result, out)
    return result, run.client.get_run(run.run_id)


# Stand-in trials' scripts (tests/launch/stand_in.py acts them out) for the sweep's side.
STARTED = {"event": "started", "pid": 1, "total_steps": 12, "train_examples": 8,
           "eval_examples": 2, "test_examples": 0, "fingerprint": "f" * 64,
           "eval_fingerprint": "e" * 64, "test_fingerprint": "", "profile": {},
           "device": "cpu", "processes": 1, "trainable_parameters": 10}
FINISHED = {"event": "finished", "adapter_dir": "adapter", "peak_memory_mb": 1.0}


def evaluated(step: int, loss: float) -> dict[str, Any]:
    return {"emit": {"event": "eval", "step": step, "loss": loss, "perplexity": 2.7 ** loss,
                     "perplexity_ratio_to_base": 1.0}}


def finishing(*losses: float) -> list[dict[str, Any]]:
    """A trial that evaluates at steps 4, 8 and 12 (its last) and finishes."""
    return [{"emit": STARTED}, *(evaluated(4 * (i + 1), loss) for i, loss in enumerate(losses)),
            {"emit": FINISHED}]


def failing(reason: str, code: int, **fields: str) -> list[dict[str, Any]]:
    return [{"emit": STARTED}, {"emit": {"event": "failed", "reason": reason,
                                         "message": f"it went {reason}", **fields}},
            {"say": f"the log says {reason}"}, {"exit": code}]


def objective_launching(ctx: SweepContext, launch: Launcher, **given: Any) -> Objective:
    """The sweep's objective, its trials run by ``launch`` (``given``: its other settings)."""
    parent = StudyRun(uri=ctx.uri, study=ctx.name, space_text="", params={})
    return Objective(ctx, parent=parent, deliveries=Deliveries(), launch=launch, **given)
