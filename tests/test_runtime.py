"""mtl.runtime: thread limits are restored, progress bars stay out of logs, SIGTERM -> 143."""

from __future__ import annotations

import os
import signal
import time

import pytest
import torch
from threadpoolctl import threadpool_info

from mtl import runtime


def test_limit_threads_sets_and_restores_torch_and_blas_threads():
    before = torch.get_num_threads()
    blas_before = [p["num_threads"] for p in threadpool_info()]
    with runtime.limit_threads(1):
        assert torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert torch.get_num_threads() == before
    assert [p["num_threads"] for p in threadpool_info()] == blas_before
    with pytest.raises(ValueError, match="threads must be >= 1"), runtime.limit_threads(0):
        pass


def test_progress_is_off_when_asked_or_not_on_a_terminal(monkeypatch):
    class Tty:
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdout", Tty())
    monkeypatch.setattr("sys.stderr", Tty())
    assert runtime.progress_enabled() and not runtime.progress_enabled(no_progress=True)
    monkeypatch.setattr("sys.stdout", open(os.devnull, "w"))  # noqa: SIM115
    assert not runtime.progress_enabled()


def test_sigterm_raises_terminated_inside_the_block_only():
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(runtime.Terminated) as caught, runtime.interruptible():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises while the block waits
    assert runtime.exit_code(caught.value) == 143 and runtime.signal_name(caught.value) == "SIGTERM"
    assert runtime.exit_code(KeyboardInterrupt()) == 130
    assert signal.getsignal(signal.SIGTERM) == previous
