"""The processes the emulated instances run: how they are marked, and how they end.

Every process an instance runs carries the emulator's pid and the instance's id in its
environment (the bootstrap's scripts, which leave the agent's process group, included),
so an instance that stops, or an emulator that stops or died, takes them all with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

__all__ = ["EMULATOR_MARKER", "INSTANCE_MARKER", "kill_group", "terminate_processes"]

EMULATOR_MARKER = "ORCA_EMULATOR_PID"
INSTANCE_MARKER = "ORCA_EMULATED_INSTANCE"


def terminate_processes(emulator_pid: int, instance_id: str | None = None) -> int:
    """Kill every process an emulator's instances run (or one instance's): what an EC2
    instance's end does to them, scripts that left the agent's process group included.

    Also called with the pid of an emulator that died without cleaning up (SIGKILL), so
    its instances' scripts do not outlive it. Returns how many processes were killed.
    """
    wanted = {f"{EMULATOR_MARKER}={emulator_pid}".encode()}
    if instance_id is not None:
        wanted.add(f"{INSTANCE_MARKER}={instance_id}".encode())
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = set((entry / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if wanted <= environ:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group ``process`` leads (the agent's group of one command)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
