"""Signals as commands meet them: SIGTERM and SIGHUP stop a command once, as Ctrl-C does;
a signal the command was started to ignore (`nohup`) stays ignored."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from harness.procs import (
    same_process,
    signals_held,
    start_time,
    stop_signals_as_interrupt,
    stop_signals_as_request,
)


@pytest.fixture
def restored() -> Iterator[None]:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    yield
    for sig, handler in before.items():
        signal.signal(sig, handler)


def _deliver(sig: signal.Signals) -> None:
    os.kill(os.getpid(), sig)
    time.sleep(0.05)  # the handler runs in the main thread at the next instruction


def test_sigterm_interrupts_once_and_a_second_one_waits(restored: None) -> None:
    with stop_signals_as_interrupt():
        with pytest.raises(KeyboardInterrupt):
            _deliver(signal.SIGTERM)
        _deliver(signal.SIGTERM)  # while the trial is being stopped and recorded: ignored
        _deliver(signal.SIGHUP)


def test_a_sighup_nohup_ignores_stays_ignored(restored: None) -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with stop_signals_as_interrupt():
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        _deliver(signal.SIGHUP)
        with pytest.raises(KeyboardInterrupt):
            _deliver(signal.SIGTERM)


def test_a_stop_signal_as_a_request_raises_nowhere_and_keeps_nohup(restored: None) -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with stop_signals_as_request() as requested:
        _deliver(signal.SIGHUP)  # ignored, as nohup asked
        assert not requested.is_set()
        _deliver(signal.SIGTERM)  # no exception here, in the middle of whatever ran
        assert requested.is_set()
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN


def test_signals_are_ignored_while_a_trial_is_recorded(restored: None) -> None:
    recorded = False
    with stop_signals_as_interrupt():
        interrupting = signal.getsignal(signal.SIGTERM)
        with signals_held():
            held = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
            assert all(signal.getsignal(sig) is signal.SIG_IGN for sig in held)
            _deliver(signal.SIGTERM)
            _deliver(signal.SIGINT)
            recorded = True  # neither signal cut the record short
        assert signal.getsignal(signal.SIGTERM) is interrupting  # as before, once recorded
        with pytest.raises(KeyboardInterrupt):
            _deliver(signal.SIGTERM)
    assert recorded


def test_a_process_is_known_by_its_pid_and_start_time() -> None:
    me = os.getpid()
    assert same_process(me, start_time(me))
    assert not same_process(me, (start_time(me) or 0) + 1)  # a reused pid is another process
