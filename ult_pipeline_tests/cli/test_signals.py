"""Stop signals in the `ult` group: SIGINT, SIGTERM and SIGHUP raise `Stopped`, the command's cleanup
runs to its end (a repeated signal does not cut it short), and the exit code is 128 + the signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ult_pipeline.cli.signals import Stopped, stop_on_signals

# A stand-in `ult` command: it reports "ready", waits, and on a stop runs a cleanup that lasts until
# the test lets it end (the file `release` exists), printing what it went through.
_COMMAND = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import click
    from ult_pipeline.cli.main import StoppableGroup

    folder = Path(sys.argv[1])

    @click.group(cls=StoppableGroup)
    def group():
        pass

    @group.command()
    def wait():
        try:
            print("ready", flush=True)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                time.sleep(0.05)
            print("not stopped", flush=True)
        finally:
            print("cleanup started", flush=True)
            deadline = time.monotonic() + 60
            while not (folder / "release").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            print("cleanup finished", flush=True)

    group(["wait"])
""")


def _wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Command:
    def __init__(self, folder: Path, ignore_sigint: bool = False):
        self.folder = folder
        self.out, self.err = folder / "out.txt", folder / "err.txt"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _COMMAND, str(folder)], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                # As `cmd &` from a non-interactive shell starts it: SIGINT ignored.
                preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None,
            )

    def printed(self, text: str) -> bool:
        return text in self.out.read_text()

    def wait_for(self, text: str) -> None:
        _wait_until(lambda: self.printed(text) or self.proc.poll() is not None, 60, repr(text))
        assert self.printed(text), (self.out.read_text(), self.err.read_text())

    def release(self) -> None:
        (self.folder / "release").touch()

    def finish(self) -> int:
        try:
            return self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.mark.parametrize(("signum", "code", "ignore_sigint"), [
    (signal.SIGTERM, 143, False), (signal.SIGHUP, 129, False), (signal.SIGINT, 130, False),
    (signal.SIGINT, 130, True),
])
def test_a_stop_signal_runs_the_cleanup_and_exits_128_plus_the_signal(tmp_path, signum, code, ignore_sigint):
    command = Command(tmp_path, ignore_sigint)
    command.wait_for("ready")
    command.release()
    command.proc.send_signal(signum)
    assert command.finish() == code, (command.out.read_text(), command.err.read_text())
    out = command.out.read_text()
    assert "cleanup finished" in out and "not stopped" not in out
    assert f"stopped by {signal.Signals(signum).name}" in command.err.read_text()
    assert "Aborted" not in command.err.read_text()


def test_a_repeated_signal_does_not_cut_the_cleanup_short(tmp_path):
    command = Command(tmp_path)
    command.wait_for("ready")
    command.proc.send_signal(signal.SIGTERM)
    command.wait_for("cleanup started")
    command.proc.send_signal(signal.SIGTERM)
    command.proc.send_signal(signal.SIGINT)
    # Both repeats were handled (and ignored) while the cleanup still waited for the release.
    _wait_until(lambda: command.err.read_text().count("already stopping") == 2 or command.proc.poll() is not None,
                60, "the repeats to be reported")
    assert command.proc.poll() is None, (command.out.read_text(), command.err.read_text())
    command.release()
    assert command.finish() == 143, command.err.read_text()
    assert "cleanup finished" in command.out.read_text()


def test_the_block_raises_stopped_and_restores_the_previous_handlers():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    with pytest.raises(Stopped) as stopped, stop_on_signals():
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises on the next bytecode; this is never reached in full
    assert stopped.value.signum == signal.SIGTERM and stopped.value.exit_code == 143
    assert isinstance(stopped.value, KeyboardInterrupt)  # every `except KeyboardInterrupt` cleanup runs
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_sighup_ignored_by_nohup_stays_ignored():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_on_signals():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
            assert signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, signal.SIG_DFL)
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
