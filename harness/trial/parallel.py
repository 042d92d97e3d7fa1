"""What changes when one trial runs as several data-parallel processes (accelerate's
`num_processes`, one per GPU; gloo processes on a CPU machine).

Every process walks the same seeded batch order and takes its own share of each group of
micro-batches, so a run with N processes sees exactly the batches of a one-process run with N
times the batch, and resumes the same way. Only the main process reports, saves and writes
samples; any process reports how it failed. Decisions that every process must take alike (stop
after this step, use the cached base loss) are made together, or a process would wait forever
for the others in the next collective.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import Any, NoReturn


def launched_rank() -> int:
    """This process's rank as the launcher set it (0 when not distributed)."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """This process's index among the processes on its machine: its GPU."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def sum_across(accelerator: Any, values: list[float]) -> list[float]:
    """Element-wise sum of ``values`` over all processes (the values themselves when alone)."""
    if accelerator.num_processes == 1:
        return values
    import torch

    tensor = torch.tensor(values, dtype=torch.float64, device=accelerator.device)
    return [float(v) for v in accelerator.reduce(tensor, reduction="sum")]


def same_everywhere(accelerator: Any, value: Any) -> Any:
    """The main process's ``value``, on every process."""
    if accelerator.num_processes == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value], from_process=0)[0]


def exit_process(code: int) -> NoReturn:
    """End this trial process with ``code``; one that joined a process group skips the
    interpreter's teardown.

    A gloo (or NCCL) worker thread can still be dropping the last reference to a finished
    collective's tensors when the interpreter finalizes; it then needs the GIL, is ended
    mid-unwind and aborts the whole process ("terminate called without an active exception",
    SIGABRT). accelerate's launcher turns that into a failed trial although every event and the
    adapter were written: one two-process exit in four to ten on this 2-core machine. Destroying
    the process group first is not enough (DDP's reducer keeps it alive), so such a process
    does what a normal exit does first (waits for its other non-daemon threads, runs its exit
    handlers, flushes its output) and leaves without finalizing.
    """
    dist = sys.modules.get("torch.distributed")  # never imported: never joined a group
    if dist is None or not dist.is_available() or not dist.is_initialized():
        sys.exit(code)
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a full disk must not change the code
            stream.flush()
    os._exit(code)
