"""Several trials per GPU: memory booked by estimates on fake GPUs, trials waiting for room, and
the objective starting a trial on the GPU that has room for it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from helpers import finishing, objective_launching, stand_in, sweep_context

from harness.errors import HarnessError
from harness.launch.runner import Launch, Watcher
from harness.protocol import TrialResult
from harness.study.record import REASON
from harness.sweep.placement import GpuBook
from harness.sweep.sizing import Sizing
from harness.sweep.slots import make_slots


def test_a_trial_goes_to_the_gpu_with_the_most_room_that_holds_it() -> None:
    book = GpuBook({"0": 10_000, "1": 6_000}, margin=0.1)  # 9,000 and 5,400 bookable
    assert book.book(4_000) == ["0"]
    assert book.book(4_000) == ["1"]  # 5,000 left on 0, 5,400 on 1
    assert book.book(4_000) == ["0"]
    assert book.pick(2_000) is None and book.running == {"0": 2, "1": 1}
    book.release(["1"], 4_000)
    assert book.book(2_000) == ["1"]
    assert book.largest_mb() == 9_000


def test_a_trial_that_fits_nowhere_waits_until_one_ends() -> None:
    book = GpuBook({"0": 1_000})
    book.book(800)
    got: list[list[str] | None] = []
    waiter = threading.Thread(target=lambda: got.append(book.book(500)))
    waiter.start()
    time.sleep(0.3)
    assert not got and waiter.is_alive()  # 100 MB free: it waits
    book.release(["0"], 800)
    waiter.join(timeout=30)
    assert got == [["0"]] and book.booked_mb["0"] == 500


def test_waiting_ends_when_the_sweep_stops_and_groups_take_several_gpus() -> None:
    book = GpuBook({"0": 1_000, "1": 1_000, "2": 500})
    stop = threading.Event()
    stop.set()
    assert book.book(600, 2) == ["0", "1"]  # a data-parallel trial: two GPUs with room
    assert book.book(400, 2, stop=stop) is None  # only GPU 2 has room left
    with pytest.raises(HarnessError, match="fits none of them even empty"):
        book.book(950, 1)  # more than any GPU holds: it would wait forever


def test_no_gpu_takes_more_trials_than_per_gpu() -> None:
    book = GpuBook({"0": 80_000, "1": 1_000}, per_gpu=2)
    assert book.book(100) == ["0"] and book.book(100) == ["0"]
    assert book.book(100) == ["1"]  # GPU 0 has room, but holds two trials already
    assert book.largest_mb(2) == 900  # a two-GPU trial is held to the smaller one


def test_slots_share_the_listed_gpus_by_memory() -> None:
    slots = make_slots(gpus=["0", "1"], parallel=1, per_gpu=3,
                       capacity_mb={"0": 80_000, "1": 80_000, "7": 10})
    assert len(slots) == 6 and len({id(s.book) for s in slots}) == 1
    assert slots[0].book is not None and set(slots[0].book.room_mb) == {"0", "1"}
    assert make_slots(gpus=["0", "1"], parallel=1, per_gpu=1)[1].env() == \
        {"CUDA_VISIBLE_DEVICES": "1"}  # whole GPUs, as before
    # GPU 1's memory cannot be read (no nvidia-smi): whole GPUs, one trial each
    unread = make_slots(gpus=["0", "1"], parallel=1, per_gpu=2, capacity_mb={"0": 1.0})
    assert [s.book for s in unread] == [None, None] and unread[1].gpus == ["1"]


def test_the_objective_starts_a_trial_where_its_estimate_fits(tmp_path: Path,
                                                              harness_home: Path) -> None:
    ctx = sweep_context(tmp_path)
    sizing = Sizing(limit_gb=None, device="cuda", gpus={})
    slot = make_slots(gpus=["0", "1"], parallel=1, per_gpu=2,
                      capacity_mb={"0": 40_000, "1": 40_000})[0]
    assert slot.book is not None
    slot.book.book(30_000, 1)  # GPU 0 is nearly full; GPU 1 is empty
    seen: list[dict[str, Any]] = []

    def launch(given: Launch, watcher: Watcher) -> TrialResult:
        seen.append({"gpus": given.env.get("CUDA_VISIBLE_DEVICES"),
                     "booked": dict(slot.book.booked_mb) if slot.book else {}})
        return stand_in(lambda out: finishing(2.0))(given, watcher)

    objective = objective_launching(ctx, launch, sizing=sizing)
    objective(ctx.study.ask(), slot)
    (trial,) = ctx.study.get_trials(deepcopy=False)
    assert trial.state == optuna.trial.TrialState.COMPLETE
    need = trial.user_attrs["harness.estimated_mb"]
    assert seen[0]["gpus"] == "1" and seen[0]["booked"]["1"] == pytest.approx(need, abs=1)
    assert slot.book.booked_mb == {"0": 30_000, "1": 0}  # released when it ended

    # each GPU filled to within half the next trial's need (a booking takes the roomiest)
    for gpu in ("1", "0"):
        assert slot.book.book(slot.book.free_mb(gpu) - need / 2, 1) == [gpu]
    assert slot.book.pick(need, 1) is None  # the next trial waits; the sweep stops
    ctx.control.stop.set()
    objective(ctx.study.ask(), slot)
    stopped = ctx.study.get_trials(deepcopy=False)[1]
    assert stopped.user_attrs[REASON] == "interrupted" and len(seen) == 1
