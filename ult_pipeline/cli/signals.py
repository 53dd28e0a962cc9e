"""Stop signals for `ult` commands: SIGINT, SIGTERM and SIGHUP all stop a command the same way.

While a command runs, each of these signals raises `Stopped` (a KeyboardInterrupt) in the main
thread, so every existing `except KeyboardInterrupt` / `except BaseException` / `finally`
cleanup runs: k6's process group is stopped and its partial results kept, the demo stops what
it started. The command then exits with 128 + the signal's number (130, 143, 129), as a shell
reports a process killed by that signal.

Only the CLI installs these handlers: Dagster's run workers have their own cancellation
(DagsterExecutionInterruptedError) and must not get process-wide handlers from library code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# While the command cleans up, a repeated signal is ignored for this long so that the cleanup
# (k6's summary, ingesting, stopping Dagster and the sandbox: about a minute at most) is not cut
# off halfway; a signal after that ends the process at once, so nothing is unstoppable.
CLEANUP_GRACE_S = 90.0


class Stopped(KeyboardInterrupt):
    """A stop signal arrived. ``signum``: the signal's number; ``exit_code``: 128 + signum."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    def __str__(self) -> str:
        return f"stopped by {self.name}"


class _Handler:
    def __init__(self, grace_s: float):
        self.grace_s = grace_s
        self.first: tuple[int, float] | None = None  # (signal, monotonic time) of the first stop signal

    def __call__(self, signum: int, _frame) -> None:
        if self.first is None:
            self.first = (signum, time.monotonic())
            raise Stopped(signum)
        # Already stopping: raising again would abort the cleanup halfway (k6 left running, no results).
        waited = time.monotonic() - self.first[1]
        if waited < self.grace_s:
            _say(f"{signal.Signals(signum).name}: already stopping, cleaning up "
                 f"(send it again after {self.grace_s - waited:.0f} s to exit at once)")
            return
        _say(f"{signal.Signals(signum).name}: cleanup took more than {self.grace_s:.0f} s; exiting now")
        os._exit(128 + signum)


def _say(message: str) -> None:
    # Called from a signal handler: a plain write, no logging locks.
    try:
        os.write(sys.stderr.fileno(), (message + "\n").encode())
    except (OSError, ValueError, AttributeError):
        pass


@contextlib.contextmanager
def stop_on_signals(signals: tuple[int, ...] = STOP_SIGNALS, grace_s: float = CLEANUP_GRACE_S) -> Iterator[None]:
    """While the block runs, each of ``signals`` raises `Stopped` (once; repeats are ignored during the
    cleanup for ``grace_s`` seconds, then end the process with 128 + signum). The previous handlers are
    restored afterwards.

    Handlers are installed even for a signal the process inherited as ignored: a command started in the
    background (``cmd &``) ignores SIGINT, yet must still stop cleanly on it. The exception is a SIGHUP
    inherited as ignored: that is ``nohup``, whose whole point is to survive the terminal's hang-up.
    Outside the main thread (where Python cannot install handlers) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = _Handler(grace_s)
    previous: dict[int, object] = {}
    try:
        for signum in signals:
            current = signal.getsignal(signum)
            if signum == signal.SIGHUP and current == signal.SIG_IGN:
                continue
            previous[signum] = current
            signal.signal(signum, handler)
        yield
    finally:
        for signum, old in previous.items():
            # None: a handler not installed from Python; the default is the closest we can restore.
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
