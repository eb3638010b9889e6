"""Which instances SSM manages on the emulator, and what their commands run with: only
instances with an instance profile, their PingStatus, the instance role's credentials."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.emulator.conftest import DOCUMENT, final, send
from tests.support.emulator import USER_ACCOUNT, Emulator

pytestmark = pytest.mark.emulator

UNKNOWN = "i-0123456789abcdef0"


def _commands(ssm: Any) -> list[str]:
    return [c["CommandId"] for c in ssm.list_commands()["Commands"]]


def test_sendcommand_to_an_unknown_or_unmanaged_instance_is_refused(
    emulator: Emulator, ssm: Any
) -> None:
    [unmanaged] = emulator.launch(profile=False)
    [managed] = emulator.launch()
    before = _commands(ssm)

    for target in ([UNKNOWN], [unmanaged], [managed, UNKNOWN]):
        with pytest.raises(ssm.exceptions.InvalidInstanceId):
            ssm.send_command(
                InstanceIds=target, DocumentName=DOCUMENT, Parameters={"commands": ["true"]}
            )

    assert _commands(ssm) == before
    assert not (emulator.instance_dir(managed) / "commands").exists()


def _information(ssm: Any, **filters: list[str]) -> dict[str, str]:
    answer = ssm.describe_instance_information(
        Filters=[
            {"Key": key.replace("_", ":"), "Values": values} for key, values in filters.items()
        ]
    )
    return {i["InstanceId"]: i["PingStatus"] for i in answer["InstanceInformationList"]}


def test_describe_instance_information_lists_managed_instances_with_their_ping(
    emulator: Emulator, ssm: Any
) -> None:
    team = uuid.uuid4().hex[:8]
    first, second = emulator.launch(2, tags={"team": team})
    [other] = emulator.launch(tags={"team": "other"})
    [unmanaged] = emulator.launch(tags={"team": team}, profile=False)

    everything = _information(ssm)
    assert {first: "Online", second: "Online", other: "Online"}.items() <= everything.items()
    assert unmanaged not in everything
    assert _information(ssm, tag_team=[team]) == {first: "Online", second: "Online"}
    assert _information(ssm, InstanceIds=[second, other]) == {second: "Online", other: "Online"}
    listed = ssm.describe_instance_information(
        InstanceInformationFilterList=[{"key": "InstanceIds", "valueSet": [first]}]
    )["InstanceInformationList"]
    assert [i["InstanceId"] for i in listed] == [first]

    emulator.stop_agent(second)
    assert _information(ssm, tag_team=[team]) == {first: "Online", second: "ConnectionLost"}
    assert _information(ssm, tag_team=[team], PingStatus=["ConnectionLost"]) == {
        second: "ConnectionLost"
    }
    assert _information(ssm, tag_team=[team], PingStatus=["Online"]) == {first: "Online"}

    emulator.start_agent(second)
    assert _information(ssm, tag_team=[team]) == {first: "Online", second: "Online"}


def test_the_aws_cli_on_an_instance_has_the_instance_roles_credentials(
    emulator: Emulator, ssm: Any
) -> None:
    [instance] = emulator.launch()
    bucket = f"user-{uuid.uuid4().hex[:8]}"
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket=bucket)
    command_id = send(
        ssm,
        [instance],
        "set -e",
        "aws sts get-caller-identity --output json > identity.json",
        "echo 'from the instance' > report.txt",
        f"aws s3 cp --quiet report.txt s3://{bucket}/reports/report.txt",
        "cat identity.json",
    )

    answer = final(ssm, command_id, instance, timeout=30)

    assert answer["Status"] == "Success", answer["StandardErrorContent"]
    identity = json.loads(answer["StandardOutputContent"])
    assert identity["Account"] == USER_ACCOUNT
    assert identity["Arn"] == (
        f"arn:aws:sts::{USER_ACCOUNT}:assumed-role/OrcaSandboxInstanceRole/{instance}"
    )
    body = s3.get_object(Bucket=bucket, Key="reports/report.txt")["Body"].read()
    assert body == b"from the instance\n"
