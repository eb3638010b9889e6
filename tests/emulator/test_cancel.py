"""CancelCommand on the emulator: ``Cancelling`` while the agent kills the command's
process group, then ``Cancelled``; a command not yet delivered never runs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator.conftest import (
    alive,
    command,
    final,
    pid_in,
    process_group,
    send,
    status,
    until,
)
from tests.support.emulator import Emulator

pytestmark = pytest.mark.emulator


def test_cancel_kills_the_commands_process_group(emulator: Emulator, ssm: Any) -> None:
    [instance] = emulator.launch()
    where = emulator.instance_dir(instance)
    command_id = send(
        ssm,
        [instance],
        "echo $$ > shell.pid",
        "sleep 300 &",
        "echo $! > child.pid",
        "wait",
        "echo not cancelled",
    )
    shell, child = pid_in(where / "shell.pid"), pid_in(where / "child.pid")
    until(lambda: status(ssm, command_id, instance) == "InProgress")
    assert process_group(child) == process_group(shell)

    ssm.cancel_command(CommandId=command_id)

    assert status(ssm, command_id, instance) == "Cancelling"
    assert command(ssm, command_id)["Status"] == "Cancelling"
    answer = final(ssm, command_id, instance)
    assert (answer["Status"], answer["StatusDetails"]) == ("Cancelled", "Cancelled")
    assert "not cancelled" not in answer["StandardOutputContent"]
    assert command(ssm, command_id)["Status"] == "Cancelled"
    assert not alive(shell)
    assert not alive(child)


def test_cancel_of_an_undelivered_command_means_it_never_runs(emulator: Emulator, ssm: Any) -> None:
    [instance] = emulator.launch()
    marker = emulator.instance_dir(instance) / "ran"
    emulator.stop_agent(instance)
    command_id = send(ssm, [instance], f"touch {marker}")
    until(lambda: status(ssm, command_id, instance) == "Pending")

    ssm.cancel_command(CommandId=command_id, InstanceIds=[instance])
    answer = final(ssm, command_id, instance)
    emulator.start_agent(instance)

    assert (answer["Status"], answer["StatusDetails"]) == ("Cancelled", "Cancelled")
    assert command(ssm, command_id)["Status"] == "Cancelled"
    # Back online, the agent has nothing to run: a later command runs, this one never did.
    later = send(ssm, [instance], "echo online")
    assert final(ssm, later, instance)["StandardOutputContent"] == "online\n"
    assert not marker.exists()
    assert status(ssm, command_id, instance) == "Cancelled"
