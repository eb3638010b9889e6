"""When the emulator stops, its instances stop: every process they run is killed, even
one that left the command's process group."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.emulator.conftest import alive, pid_in, send, status, until
from tests.support.emulator import start_emulator

pytestmark = pytest.mark.emulator


def test_stopping_the_emulator_kills_what_its_instances_run(tmp_path: Path) -> None:
    emulator = start_emulator(tmp_path / "home")
    try:
        ssm = emulator.client("ssm")
        [instance] = emulator.launch()
        where = emulator.instance_dir(instance)
        command_id = send(
            ssm,
            [instance],
            "echo $$ > shell.pid",
            "setsid sleep 300 &",
            "echo $! > escaped.pid",
            "sleep 300 &",
            "echo $! > child.pid",
            "wait",
        )
        shell = pid_in(where / "shell.pid")
        escaped, child = pid_in(where / "escaped.pid"), pid_in(where / "child.pid")
        until(lambda: status(ssm, command_id, instance) == "InProgress")
        until(lambda: os.getpgid(escaped) != os.getpgid(shell))  # setsid has run
        assert all(alive(pid) for pid in (shell, escaped, child))
    finally:
        emulator.stop()

    assert emulator.process.returncode is not None
    for pid in (shell, escaped, child):
        assert not alive(pid), pid
