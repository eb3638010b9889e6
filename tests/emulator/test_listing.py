"""ListCommands and ListCommandInvocations answer from what the agents did, and Targets
by tag reach every tagged managed instance and no other."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.emulator.conftest import DOCUMENT, command, final, send, status, until
from tests.support.emulator import Emulator

pytestmark = pytest.mark.emulator

# Runs until the test creates `go` in the instance's directory; fails if `fail` is there.
GATED = (
    "while [ ! -e go ]; do sleep 0.05; done",
    "if [ -e fail ]; then echo failing >&2; exit 4; fi",
    "echo fine",
)


def _touch(emulator: Emulator, instance: str, name: str) -> None:
    where = emulator.instance_dir(instance)
    where.mkdir(parents=True, exist_ok=True)
    (where / name).touch()


def test_list_commands_aggregates_the_invocations(emulator: Emulator, ssm: Any) -> None:
    good, bad = emulator.launch(2)
    _touch(emulator, bad, "fail")
    command_id = send(ssm, [good, bad], *GATED, Comment="nightly load #7")
    until(lambda: status(ssm, command_id, bad) == "InProgress")
    until(lambda: status(ssm, command_id, good) == "InProgress")

    running = command(ssm, command_id)
    assert (running["Status"], running["Comment"], running["TargetCount"]) == (
        "InProgress",
        "nightly load #7",
        2,
    )
    _touch(emulator, good, "go")
    final(ssm, command_id, good)
    half = command(ssm, command_id)
    assert (half["Status"], half["CompletedCount"], half["ErrorCount"]) == ("InProgress", 1, 0)

    _touch(emulator, bad, "go")
    final(ssm, command_id, bad)
    done = command(ssm, command_id)
    assert (done["Status"], done["CompletedCount"], done["ErrorCount"]) == ("Failed", 2, 1)

    [alone] = emulator.launch()
    _touch(emulator, alone, "go")
    succeeded = send(ssm, [alone], *GATED)
    final(ssm, succeeded, alone)
    assert command(ssm, succeeded)["Status"] == "Success"


def test_list_commands_filters(emulator: Emulator, ssm: Any) -> None:
    [instance] = emulator.launch()
    earlier = send(ssm, [instance], "true")
    time.sleep(0.01)  # the commands' request times must differ
    between = datetime.now(UTC)
    time.sleep(0.01)
    later = send(ssm, [instance], "true")
    other = ssm.send_command(
        InstanceIds=[instance],
        DocumentName="AWS-RunPowerShellScript",
        Parameters={"commands": ["Get-Date"]},
    )["Command"]["CommandId"]

    def listed(**filters: str) -> set[str]:
        chosen = [{"key": k, "value": v} for k, v in filters.items()]
        answer = ssm.list_commands(Filters=chosen) if chosen else ssm.list_commands()
        return {c["CommandId"] for c in answer["Commands"]}

    assert {earlier, later, other} <= listed()
    by_document = listed(DocumentName=DOCUMENT)
    assert {earlier, later} <= by_document and other not in by_document
    after = listed(InvokedAfter=between.isoformat().replace("+00:00", "Z"))
    assert later in after and earlier not in after


def test_list_command_invocations_with_details_has_the_output(emulator: Emulator, ssm: Any) -> None:
    [instance] = emulator.launch()
    command_id = send(ssm, [instance], "echo hello from the plugin")
    final(ssm, command_id, instance)

    answer = ssm.list_command_invocations(CommandId=command_id, Details=True)

    [entry] = answer["CommandInvocations"]
    assert (entry["InstanceId"], entry["Status"]) == (instance, "Success")
    [plugin] = entry["CommandPlugins"]
    assert (plugin["Name"], plugin["Status"], plugin["ResponseCode"]) == (
        "aws:runShellScript",
        "Success",
        0,
    )
    assert "hello from the plugin" in plugin["Output"]
    brief = ssm.list_command_invocations(CommandId=command_id)["CommandInvocations"]
    assert [i["Status"] for i in brief] == ["Success"]
    assert not brief[0].get("CommandPlugins")


def test_targets_by_tag_run_on_every_tagged_managed_instance_and_no_other(
    emulator: Emulator, ssm: Any
) -> None:
    tagged = emulator.launch(2, tags={"orca": "enabled"})
    [untagged] = emulator.launch()
    [disabled] = emulator.launch(tags={"orca": "disabled"})
    [unmanaged] = emulator.launch(tags={"orca": "enabled"}, profile=False)

    command_id = ssm.send_command(
        Targets=[{"Key": "tag:orca", "Values": ["enabled"]}],
        DocumentName=DOCUMENT,
        Parameters={"commands": ["pwd"]},
    )["Command"]["CommandId"]
    until(lambda: len(ssm.list_command_invocations(CommandId=command_id)["CommandInvocations"]))

    reached = {
        i["InstanceId"]
        for i in ssm.list_command_invocations(CommandId=command_id)["CommandInvocations"]
    }
    assert reached == set(tagged)
    for instance in tagged:
        answer = final(ssm, command_id, instance)
        assert answer["StandardOutputContent"] == f"{emulator.instance_dir(instance)}\n"
    for instance in (untagged, disabled, unmanaged):
        assert not (emulator.instance_dir(instance) / "commands" / command_id).exists()
    assert command(ssm, command_id)["Status"] == "Success"


def test_list_commands_by_instance_finds_commands_sent_by_tag(emulator: Emulator, ssm: Any) -> None:
    team = f"team-{time.monotonic_ns()}"
    first, second = emulator.launch(2, tags={"team": team})
    command_id = ssm.send_command(
        Targets=[{"Key": "tag:team", "Values": [team]}],
        DocumentName=DOCUMENT,
        Parameters={"commands": ["true"]},
    )["Command"]["CommandId"]
    final(ssm, command_id, first)

    for instance in (first, second):
        listed = ssm.list_commands(InstanceId=instance)["Commands"]
        assert [c["CommandId"] for c in listed] == [command_id]


def test_an_unknown_command_id_has_no_invocation(emulator: Emulator, ssm: Any) -> None:
    [instance] = emulator.launch()

    with pytest.raises(ssm.exceptions.InvocationDoesNotExist):
        ssm.get_command_invocation(
            CommandId="00000000-1111-2222-3333-444444444444", InstanceId=instance
        )
