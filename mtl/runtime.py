"""How a long computation runs in its process: thread counts, progress bars, interruption.

* :func:`limit_threads` sets torch's intra-op threads and the BLAS/OpenMP pools of numpy
  (threadpoolctl) for a block and restores them after: small tensors run several times faster
  on one thread than on oversubscribed ones.
* :func:`progress_enabled` decides whether to draw progress bars: never when asked not to, and
  never when stdout or stderr is not a terminal (no ``\\r`` lines in log files).
* :func:`interruptible` turns SIGTERM into :class:`Terminated` (a ``KeyboardInterrupt``, so the
  clean-up that runs on Ctrl-C runs on SIGTERM too) for a block; :func:`exit_code` maps an
  interruption to the shell's convention ``128 + signal`` (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM inside :func:`interruptible`."""

    signum = signal.SIGTERM


def exit_code(exc: KeyboardInterrupt) -> int:
    """``128 + signal number``: 143 for :class:`Terminated`, 130 for Ctrl-C (SIGINT)."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


def signal_name(exc: KeyboardInterrupt) -> str:
    return signal.Signals(getattr(exc, "signum", signal.SIGINT)).name


@contextmanager
def interruptible() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (elsewhere, and
    off the main thread, the block runs unchanged); the previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def limit_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads and BLAS/OpenMP threads (``None``:
    leave both unchanged); the previous counts are restored after."""
    if threads is None:
        yield
        return
    if int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        with threadpool_limits(limits=int(threads)):
            yield
    finally:
        torch.set_num_threads(before)


def progress_enabled(no_progress: bool = False) -> bool:
    """Progress bars only when not switched off and both stdout and stderr are terminals."""
    if no_progress:
        return False
    return all(stream is not None and stream.isatty() for stream in (sys.stdout, sys.stderr))
