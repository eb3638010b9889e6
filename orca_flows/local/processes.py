"""The sandbox's background processes: start one in a session of its own, wait until it
answers, stop its process group (SIGTERM, then SIGKILL after a grace period)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from orca_flows.errors import SandboxError
from orca_flows.sandbox_record import answers

__all__ = ["free_port", "kill_group", "spawn", "wait_until_up"]

_STARTUP_TIMEOUT_S = 60.0


def free_port(preferred: int) -> int:
    """``preferred`` if it is free, else any free loopback port."""
    for candidate in (preferred, 0) if preferred else (0,):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise SandboxError("no free port on 127.0.0.1 for the local sandbox.")


def spawn(
    command: list[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``command`` with its output appended to ``log_path``."""
    with open(log_path, "ab") as log:
        # A session of its own: the process outlives this command and Ctrl-C in the shell.
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )


def wait_until_up(process: subprocess.Popen[bytes], url: str, what: str, log: Path) -> None:
    """Wait until ``url`` answers; stop the process and raise ``SandboxError`` if it exits or
    does not answer in time (``what`` and ``log`` name it and its log in the message)."""
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while not answers(url):
        if process.poll() is not None:
            raise SandboxError(f"{what} exited at start (code {process.returncode}); see {log}.")
        if time.monotonic() > deadline:
            kill_group(process.pid)
            raise SandboxError(
                f"{what} did not answer on {url} in {_STARTUP_TIMEOUT_S:.0f} s; see {log}."
            )
        time.sleep(0.1)


def kill_group(pid: int, grace_seconds: float = 5.0) -> None:
    """SIGTERM the process group of ``pid``, SIGKILL what is left after ``grace_seconds``."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        _reap(pid)
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect the exit status when this process started it (no zombie left)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
