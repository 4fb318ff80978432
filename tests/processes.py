"""Start ``twistd jgsl`` roles as separate OS processes and wait on what they log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

TWISTD = str(Path(sys.executable).with_name("twistd"))


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "") -> object:
    """Poll ``condition`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(0.05)


def terminate(proc: subprocess.Popen, timeout: float = 15.0) -> int:
    """Stop a process by its PID: SIGTERM, then SIGKILL if it does not go. Its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"process {proc.pid} did not stop on SIGTERM") from None
    return proc.returncode


class Processes:
    """A group of twistd processes, each logging to its own file; all stopped by PID."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str, wrap: tuple[str, ...] = (),
              env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start ``twistd jgsl ARGS``; ``wrap`` is a command prefix (``ip netns exec NS``,
        which execs: the PID is still the daemon's), ``env`` adds to the group's."""
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([*wrap, TWISTD, "-n", "--pidfile=", "jgsl", *args], stdout=log,
                                stderr=subprocess.STDOUT, cwd=self.workdir,
                                env={**self.env, **(env or {})})
        log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def stop(self, name: str, timeout: float = 15.0) -> int:
        return terminate(self.procs.pop(name), timeout)

    def stop_all(self) -> dict[str, int]:
        return {name: self.stop(name) for name in list(self.procs)}

    def stop_all_cleanly(self) -> None:
        """Stop every process and check each shut down gracefully, with no traceback."""
        names = list(self.procs)
        codes = self.stop_all()
        assert set(codes.values()) == {-signal.SIGTERM}, codes  # twistd re-raises SIGTERM
        for name in names:
            assert "Traceback" not in self.log(name), self.log(name)

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()
