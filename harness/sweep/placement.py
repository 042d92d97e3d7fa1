"""Several trials per GPU: each GPU's memory is booked by the estimates of the trials running on
it, and a trial starts on the GPU with the most room that holds its estimate beside them (a data-
parallel trial on as many GPUs as it has processes); one that fits nowhere yet waits for a trial
to end."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from harness.errors import HarnessError

MARGIN = 0.10
"""Share of each GPU never booked: the estimate's error, other processes, fragmentation."""


class GpuBook:
    """The memory of a set of GPUs, booked and released by the trials that run on them."""

    def __init__(self, capacity_mb: dict[str, float], *, margin: float = MARGIN,
                 per_gpu: int = 4) -> None:
        if not capacity_mb:
            raise HarnessError("no GPU to place trials on")
        self.per_gpu = per_gpu
        """Trials at most on one GPU at once."""
        self.room_mb = {gpu: mb * (1 - margin) for gpu, mb in capacity_mb.items()}
        """What may be booked on each GPU, by its index."""
        self.booked_mb = dict.fromkeys(capacity_mb, 0.0)
        """What the trials running on each GPU were estimated to need."""
        self.running = dict.fromkeys(capacity_mb, 0)
        """Trials running on each GPU."""
        self._changed = threading.Condition()

    def largest_mb(self, count: int = 1) -> float:
        """What one trial of ``count`` GPUs may need at most: the room of the ``count``-th
        largest GPU, empty."""
        return sorted(self.room_mb.values(), reverse=True)[min(count, len(self.room_mb)) - 1]

    def free_mb(self, gpu: str) -> float:
        return self.room_mb[gpu] - self.booked_mb[gpu]

    def pick(self, need_mb: float, count: int = 1) -> list[str] | None:
        """The ``count`` GPUs with the most room, when each holds ``need_mb`` beside what runs
        there now; None when fewer do."""
        fits = sorted((g for g in self.room_mb if self.free_mb(g) >= need_mb
                       and self.running[g] < self.per_gpu),
                      key=lambda g: (-self.free_mb(g), int(g) if g.isdigit() else g))
        return fits[:count] if len(fits) >= count else None

    def book(self, need_mb: float, count: int = 1, *,
             stop: threading.Event | None = None) -> list[str] | None:
        """Book ``need_mb`` on ``count`` GPUs, waiting until they have room; None when ``stop``
        is set first."""
        if count > len(self.room_mb) or need_mb > self.largest_mb(count):
            raise HarnessError(f"a trial estimated at {need_mb:,.0f} MB on {count} GPU(s) fits "
                               "none of them even empty")
        with self._changed:
            while True:
                gpus = self.pick(need_mb, count)
                if gpus is not None:
                    for gpu in gpus:
                        self.booked_mb[gpu] += need_mb
                        self.running[gpu] += 1
                    return gpus
                if stop is not None and stop.is_set():
                    return None
                self._changed.wait(timeout=1.0)

    def release(self, gpus: list[str], need_mb: float) -> None:
        with self._changed:
            for gpu in gpus:
                self.booked_mb[gpu] -= need_mb
                self.running[gpu] -= 1
            self._changed.notify_all()

    @contextmanager
    def placed(self, need_mb: float, count: int = 1, *,
               stop: threading.Event | None = None) -> Iterator[list[str] | None]:
        """The GPUs booked for one trial while it runs (None: stopped while waiting)."""
        gpus = self.book(need_mb, count, stop=stop)
        try:
            yield gpus
        finally:
            if gpus is not None:
                self.release(gpus, need_mb)
