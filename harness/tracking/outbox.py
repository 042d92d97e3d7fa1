"""MLflow writes that wait while the tracking server is away, then go out in order.

A trial must not die because the tracking server dropped: its writes (the run itself, params,
metrics, tags, artifacts, the final status) queue here and are retried every `RETRY_SECONDS`;
writes the server rejects for good (a 4xx answer) are dropped with a warning instead of blocking
the queue. The trial's result lives in Optuna either way.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.errors import DiskFullError, disk_full, is_disk_full
from harness.urls import scrub

if TYPE_CHECKING:
    from mlflow import MlflowClient

Write = str | Callable[..., Any]
"""A queued write: an MLflow client method's name, or a function of the client."""

RETRY_SECONDS = 15.0
RUN = object()
"""Stands for the run id in a queued write, filled in once the run exists."""

log = logging.getLogger("harness")

HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}
"""MLflow's own retries last minutes by default; a trial's event loop must not wait that long.
The user's settings win."""


def use_short_http_retries() -> None:
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)


def is_transient(err: BaseException) -> bool:
    """Whether a failed write may pass later: server unreachable, 5xx, 429, a busy database."""
    from mlflow.exceptions import MlflowException

    if isinstance(err, MlflowException):
        status = err.get_http_status_code()
        return status >= 500 or status == 429 or "failed with exception" in err.message
    response = getattr(err, "response", None)  # requests.HTTPError from an artifact upload
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        return status >= 500 or status == 429
    return isinstance(err, OSError) or "database is locked" in str(err)


class Outbox:
    """Ordered writes to one MLflow client; the first queued write may create the run."""

    def __init__(self, client: MlflowClient) -> None:
        self.client = client
        self.run_id: str | None = None
        self.pending: deque[tuple[Write, tuple[Any, ...], dict[str, Any]]] = deque()
        self.next_try = 0.0
        self.dropped: list[str] = []
        self.disk_full: DiskFullError | None = None
        """Set while the store's disk is full: the writes wait, and the sweep stops."""
        self.closed = False
        """Set once the run's last write (its final status) is queued."""
        self._lock = threading.Lock()  # a slot thread sends while the sweep's thread flushes

    def send(self, method: Write, *args: Any, **kwargs: Any) -> None:
        """Queue ``method`` (a client method's name, or a function called with the client
        first) with ``args``, `RUN` among them standing for the run id."""
        with self._lock:
            self.pending.append((method, args, kwargs))
            if method == "set_terminated":
                self.closed = True
        self.flush()

    @property
    def done(self) -> bool:
        return self.closed and not self.pending

    def flush(self, *, force: bool = False) -> bool:
        """Deliver what is queued; False when the server is still away (tried again later)."""
        with self._lock:
            if not force and time.monotonic() < self.next_try:
                return not self.pending
            while self.pending:
                method, args, kwargs = self.pending[0]
                try:
                    call = getattr(self.client, method) if isinstance(method, str) else \
                        functools.partial(method, self.client)
                    result = call(*(self.run_id if a is RUN else a for a in args), **kwargs)
                except Exception as err:
                    if is_disk_full(err):
                        self.disk_full = disk_full(err, store_location(self.client))
                        self.next_try = time.monotonic() + RETRY_SECONDS
                        return False
                    if is_transient(err):
                        self.next_try = time.monotonic() + RETRY_SECONDS
                        return False
                    # Refused for good; without its run, none of the later writes can land.
                    lost = list(self.pending) if method == "create_run" else [self.pending[0]]
                    self.dropped += [_name(m) for m, _, _ in lost]
                    log.warning("MLflow refused %s (%s); %d write(s) dropped", _name(method),
                                scrub(str(err), self.client.tracking_uri), len(lost))
                    for _ in lost:
                        self.pending.popleft()
                    continue
                if method == "create_run":
                    self.run_id = result.info.run_id
                self.pending.popleft()
            self.disk_full = None
            return True


def _name(method: Write) -> str:
    return method if isinstance(method, str) else getattr(method, "__name__", repr(method))


def store_location(client: MlflowClient) -> str:
    """Where a client's writes land, for messages: a SQLite store's file, else its URI."""
    from harness.urls import redact

    uri = client.tracking_uri
    return uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else redact(uri)


def drain(boxes: list[Outbox], seconds: float) -> list[Outbox]:
    """Keep trying every box for up to ``seconds`` in all; the boxes still holding writes.
    A box whose disk is full is not waited for: a full disk does not empty itself."""
    deadline = time.monotonic() + seconds
    waiting = [box for box in boxes if not box.flush(force=True)]
    while (waiting and time.monotonic() < deadline
           and not all(box.disk_full for box in waiting)):
        time.sleep(min(RETRY_SECONDS / 3, max(0.0, deadline - time.monotonic())))
        waiting = [box for box in waiting if not box.flush(force=True)]
    return waiting
