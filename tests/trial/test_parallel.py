"""A trial of two data-parallel processes (accelerate's num_processes; gloo on this CPU machine,
NCCL on GPUs) trains as one process accumulating both processes' batches, reports once, and
stops and fails as one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import Recording, client, make_config, space_file, sweep
from helpers import launched as launched_in
from optuna.trial import TrialState
from safetensors.torch import load_file

from harness.config import TrainConfig
from harness.launch.command import launch_command, write_trial_config
from harness.protocol import (
    BaseEval,
    Eval,
    Event,
    Failed,
    Finished,
    Samples,
    Started,
    Step,
    TrialResult,
)
from harness.study.storage import load_study, open_storage


@pytest.fixture
def home(harness_home: Path) -> Path:
    return harness_home


def config_for(tmp_path: Path, model_dir: Path, **training: Any) -> TrainConfig:
    config = make_config(tmp_path, model_dir, **training)
    config.lora.dropout = 0.0  # each process draws its own dropout masks; compare without
    return config


def launched(config: TrainConfig, out: Path, watcher: Recording | None = None,
             **launch: Any) -> TrialResult:
    write_trial_config(config, out)
    return launched_in(out, watcher, **launch)


def of_kind(result: TrialResult, kind: type[Event]) -> list[Any]:
    return [e for e in result.events if isinstance(e, kind)]


@pytest.mark.parametrize("batching", ["grouped", "packed"])
def test_two_processes_train_like_one_accumulating_both_batches(
        tmp_path: Path, tiny_model_dir: Path, home: Path, batching: str) -> None:
    common = {"max_steps": 3, "eval_steps": 2, "micro_batch_size": 2}
    configs = [config_for(tmp_path, tiny_model_dir, gradient_accumulation=2, **common),
               config_for(tmp_path, tiny_model_dir, num_processes=2, **common)]
    for config in configs:
        config.data.batching = batching
        config.data.cutoff_len = 256  # examples shorter than a row, so rows pack
    one = launched(configs[0], tmp_path / "one")
    two = launched(configs[1], tmp_path / "two")
    assert one.reason == "finished", one.log_tail
    assert two.reason == "finished", two.log_tail
    assert "terminate called" not in two.log_tail  # no process aborted on its way out

    assert [len(of_kind(two, k)) for k in (Started, BaseEval, Finished)] == [1, 1, 1]
    (started_two,), (started_one,) = of_kind(two, Started), of_kind(one, Started)
    assert started_two.processes == 2
    assert started_two.total_steps == started_one.total_steps == 3
    for kind, key in ((Step, "loss"), (Step, "tokens"), (Eval, "loss")):
        assert [getattr(e, key) for e in of_kind(two, kind)] == pytest.approx(
            [getattr(e, key) for e in of_kind(one, kind)], rel=1e-4), (kind, key)

    weights = [load_file(str(tmp_path / run / "adapter" / "adapter_model.safetensors"))
               for run in ("one", "two")]
    assert weights[0].keys() == weights[1].keys()
    for name, tensor in weights[0].items():
        torch.testing.assert_close(weights[1][name], tensor, rtol=1e-4, atol=1e-6)
    assert (tmp_path / "two" / "samples" / "samples.json").is_file()
    # the second trial generated only the adapter's side: the base's came from the cache
    (samples_two,), (samples_one,) = of_kind(two, Samples), of_kind(one, Samples)
    assert samples_two.base_cached
    assert [r["base"] for r in samples_two.rows] == [r["base"] for r in samples_one.rows]


def test_a_stop_reaches_both_processes_at_the_same_step(
        tmp_path: Path, tiny_model_dir: Path, home: Path) -> None:
    config = config_for(tmp_path, tiny_model_dir, max_steps=500, num_processes=2)
    seen: list[Event] = []
    result = launched(config, tmp_path / "out", Recording(seen.append, lambda: "pruned" if any(
        isinstance(e, Step) and e.step >= 2 for e in seen) else None))
    assert result.reason == "pruned"
    stopped = of_kind(result, Failed)
    # both processes ended through the trial's own stop (not the launcher's SIGKILL)
    assert sorted(e.rank or 0 for e in stopped) == [0, 1]
    assert {e.reason for e in stopped} == {"killed"}
    assert len({e.message for e in stopped}) == 1, "they stopped after different steps"


def test_nan_in_a_two_process_4bit_trial_ends_it_as_nan(tmp_path: Path, tiny_model_dir: Path,
                                                        home: Path) -> None:
    config = config_for(tmp_path, tiny_model_dir, max_steps=4, num_processes=2, mode="4bit")
    result = launched(config, tmp_path / "out", env={"HARNESS_FAULT": "nan@2"})
    assert result.reason == "nan", result.log_tail
    assert "step 2" in result.message


def test_several_processes_launch_data_parallel_on_a_port_of_their_own(tmp_path: Path) -> None:
    single = launch_command(tmp_path, resume=True)
    assert single[1:] == ["-m", "harness.trial", str(tmp_path), "--resume"]  # no launcher
    a, b = (launch_command(tmp_path, resume=False, num_processes=2) for _ in range(2))
    assert a[a.index("--num_processes") + 1] == "2" and "--multi_gpu" in a
    port = a.index("--main_process_port") + 1
    assert a[port] != b[port]


def test_a_sweep_runs_its_trials_on_the_processes_the_space_asks_for(
        tmp_path: Path, tiny_model_dir: Path, stores: dict[str, str]) -> None:
    space = space_file(tmp_path, tiny_model_dir, trials=1,
                       enqueue="  - {training.learning_rate: 1.0e-2, lora.r: 4}\n")
    space.write_text(space.read_text().replace(
        "scheduler: constant}", "scheduler: constant, num_processes: 2}"))
    assert sweep(space, stores, "--no-promote") == 0

    (trial,) = load_study("tiny", open_storage(stores["storage"])).trials
    assert trial.state == TrialState.COMPLETE, trial.user_attrs
    events = Path(trial.user_attrs["output_dir"], "events.jsonl").read_text()
    assert '"processes": 2' in events
    (run,) = [r for r in client(stores).search_runs(
        [client(stores).get_experiment_by_name("tiny").experiment_id])
        if r.data.tags.get("optuna.trial") == "0"]
    assert run.info.status == "FINISHED"
    assert run.data.params["training.num_processes"] == "2"


ENDING = """
import atexit, sys, torch.distributed as dist
from harness.trial.parallel import exit_process
class Kept:
    def __del__(self):
        print("finalized", flush=True)
kept = Kept()
atexit.register(print, "exit handlers ran")
if sys.argv[1] == "group":
    dist.init_process_group("gloo", store=dist.FileStore(sys.argv[2], 1), rank=0, world_size=1)
print("ending", end=" ")
exit_process(3)
"""


@pytest.mark.parametrize("group", ["group", "alone"])
def test_a_process_of_a_group_ends_without_the_teardown_that_aborts_it(
        tmp_path: Path, group: str) -> None:
    # a gloo thread freeing its last collective's tensors during teardown aborted one
    # two-process trial exit in four to ten, failing a trial that had written everything
    done = subprocess.run([sys.executable, "-c", ENDING, group, str(tmp_path / "store")],
                          capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith("ending exit handlers ran")  # output flushed, handlers run
    assert ("finalized" in done.stdout) == (group == "alone"), done.stdout
