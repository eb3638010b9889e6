"""An instance whose SSM agent is stopped (PingStatus ConnectionLost): commands wait
undelivered until their delivery timeout, and results wait until the agent is back."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.emulator.conftest import command, final, invocation, send, status, until
from tests.support.emulator import Emulator

pytestmark = pytest.mark.emulator


def _stays(condition: Any, seconds: float) -> bool:
    """Whether ``condition`` holds at every poll for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not condition():
            return False
        time.sleep(0.05)
    return True


def test_a_command_to_an_offline_instance_times_out_undelivered(
    emulator: Emulator, ssm: Any
) -> None:
    [instance] = emulator.launch()
    marker = emulator.instance_dir(instance) / "ran"
    emulator.stop_agent(instance)
    command_id = send(ssm, [instance], f"touch {marker}", TimeoutSeconds=30)
    until(lambda: status(ssm, command_id, instance) == "Pending")
    assert command(ssm, command_id)["Status"] == "Pending"

    answer = final(ssm, command_id, instance, timeout=45)

    assert (answer["Status"], answer["StatusDetails"]) == ("TimedOut", "DeliveryTimedOut")
    assert not marker.exists()
    listed = command(ssm, command_id)
    assert (listed["Status"], listed["DeliveryTimedOutCount"]) == ("TimedOut", 1)
    emulator.start_agent(instance)
    later = send(ssm, [instance], "echo online")
    assert final(ssm, later, instance)["Status"] == "Success"
    assert not marker.exists()  # the timed-out command is never delivered late


def test_a_pending_command_runs_once_the_agent_is_started(emulator: Emulator, ssm: Any) -> None:
    [instance] = emulator.launch()
    marker = emulator.instance_dir(instance) / "ran"
    emulator.stop_agent(instance)
    command_id = send(ssm, [instance], f"touch {marker}", "echo delivered", TimeoutSeconds=30)
    until(lambda: status(ssm, command_id, instance) == "Pending")
    assert _stays(lambda: status(ssm, command_id, instance) == "Pending", 1.0)
    assert not marker.exists()

    emulator.start_agent(instance)
    answer = final(ssm, command_id, instance)

    assert (answer["Status"], answer["StandardOutputContent"]) == ("Success", "delivered\n")
    assert marker.exists()


def test_a_result_reached_while_the_agent_is_stopped_waits_for_it(
    emulator: Emulator, ssm: Any
) -> None:
    [instance] = emulator.launch()
    where = emulator.instance_dir(instance)
    command_id = send(
        ssm, [instance], "while [ ! -e go ]; do sleep 0.05; done", "echo finished | tee done"
    )
    until(lambda: status(ssm, command_id, instance) == "InProgress")
    emulator.stop_agent(instance)

    (where / "go").touch()
    until(lambda: (where / "done").exists())
    assert _stays(lambda: status(ssm, command_id, instance) == "InProgress", 1.0)
    running = invocation(ssm, command_id, instance)
    assert running is not None and running["StandardOutputContent"] == ""

    emulator.start_agent(instance)
    answer = final(ssm, command_id, instance)

    assert (answer["Status"], answer["ResponseCode"]) == ("Success", 0)
    assert answer["StandardOutputContent"] == "finished\n"


def test_a_stopped_ec2_instance_takes_no_command_until_started(
    emulator: Emulator, ssm: Any
) -> None:
    [instance] = emulator.launch()
    marker = emulator.instance_dir(instance) / "ran"
    ec2 = emulator.client("ec2")
    ec2.stop_instances(InstanceIds=[instance])
    [information] = ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [instance]}]
    )["InstanceInformationList"]
    assert information["PingStatus"] == "ConnectionLost"

    command_id = send(ssm, [instance], f"touch {marker}", TimeoutSeconds=30)
    until(lambda: status(ssm, command_id, instance) == "Pending")
    assert _stays(lambda: status(ssm, command_id, instance) == "Pending", 1.0)
    assert not marker.exists()

    ec2.start_instances(InstanceIds=[instance])
    assert final(ssm, command_id, instance)["Status"] == "Success"
    assert marker.exists()
