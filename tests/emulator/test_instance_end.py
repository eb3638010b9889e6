"""An instance that ends while it runs a command: the command fails and its processes end
with the instance, a script that left the agent's process group included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.emulator.conftest import alive, final, pid_in, send
from tests.support.emulator import Emulator

pytestmark = pytest.mark.emulator


@pytest.mark.parametrize("end", ["terminate_instances", "stop_instances"])
def test_a_command_on_an_instance_that_ends_fails_and_its_processes_die(
    emulator: Emulator, ssm: Any, tmp_path: Path, end: str
) -> None:
    [instance] = emulator.launch()
    shell, escaped = tmp_path / "shell.pid", tmp_path / "escaped.pid"
    command_id = send(
        ssm,
        [instance],
        f"echo $$ >{shell}",
        f"setsid sleep 300 & echo $! >{escaped}",
        "sleep 300",
    )
    pids = [pid_in(shell), pid_in(escaped)]

    getattr(emulator.client("ec2"), end)(InstanceIds=[instance])

    answer = final(ssm, command_id, instance)
    assert (answer["Status"], answer["ResponseCode"]) == ("Failed", -1)
    assert [pid for pid in pids if alive(pid)] == []
