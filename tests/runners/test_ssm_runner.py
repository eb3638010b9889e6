"""The SSM runner's exact requests and its reading of SSM's answers (moto runs no commands)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from orca_flows.domain.limits import BOOTSTRAP_MARGIN_SECONDS
from orca_flows.domain.s3_layout import (
    attempt_prefix,
    exit_code_key,
    run_prefix,
    s3_uri,
    script_key,
)
from orca_flows.runners import (
    Backoff,
    Execution,
    ExecutionStatus,
    NoInstanceAvailableError,
    RunSpec,
    SsmRunner,
    render_bootstrap,
    render_kill,
)
from orca_flows.services.run_stop import kill_and_confirm

RUN_ID = "5f0e8a52-3c1b-4f7e-9d2a-6b1c0e4d8a71"
KEY = f"{RUN_ID}-a1"  # the first attempt's execution key: its commands' Comment
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SINCE = "2026-04-28T12:00:00Z"  # NOW minus the default three-day lookback
INSTANCE = "i-0123456789abcdef0"
OTHER_INSTANCE = "i-0fedcba9876543210"
COMMAND_ID = "0b8f6c4e-1111-4222-8333-944455556666"
OTHER_COMMAND_ID = "11111111-0000-4000-8000-000000000000"
SPEC = RunSpec(
    run_id=RUN_ID,
    pipeline="demo",
    script_uri=s3_uri("orca-bucket", script_key(7, "demo", 3, "etl.py")),
    script_sha256="ab" * 32,
    script_name="etl.py",
    output_uri=s3_uri("orca-bucket", run_prefix(7, "demo", RUN_ID)),
    timeout_seconds=900,
)


@pytest.fixture
def ssm() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("ssm", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


KILL_ID = "22222222-0000-4000-8000-000000000000"


def _runner(client: Any, targets: list[str] | None = None, s3: Any = None) -> SsmRunner:
    return SsmRunner(
        client,
        targets=targets or [INSTANCE],
        output_bucket="orca-bucket",
        output_key_prefix="orca/ssm-output/",
        s3_client=s3,
        now=lambda: NOW,
    )


def _command(command_id: str, comment: str, **fields: Any) -> dict[str, Any]:
    return {"CommandId": command_id, "Comment": comment, "RequestedDateTime": NOW, **fields}


def _expect_no_command(stubber: Stubber, comments: tuple[str, ...] = ()) -> None:
    commands = [
        _command(f"{n:08d}-0000-4000-8000-000000000000", comment)
        for n, comment in enumerate(comments)
    ]
    stubber.add_response(
        "list_commands",
        {"Commands": commands},
        {
            "Filters": [
                {"key": "DocumentName", "value": "AWS-RunShellScript"},
                {"key": "InvokedAfter", "value": SINCE},
            ]
        },
    )


def _send_request(instance_id: str, comment: str, commands: list[str], timeout: str) -> dict:
    return {
        "InstanceIds": [instance_id],
        "DocumentName": "AWS-RunShellScript",
        "Comment": comment,
        "Parameters": {"commands": commands, "executionTimeout": [timeout]},
        "TimeoutSeconds": 600,
        "OutputS3BucketName": "orca-bucket",
        "OutputS3KeyPrefix": "orca/ssm-output/",
        "MaxConcurrency": "1",
        "MaxErrors": "0",
    }


def _describe_response(*instances: tuple[str, str]) -> dict:
    return {
        "InstanceInformationList": [
            {"InstanceId": instance, "PingStatus": ping} for instance, ping in instances
        ]
    }


def test_start_sends_the_bootstrap_to_the_instance(ssm: tuple[Any, Stubber]) -> None:
    client, stubber = ssm
    _expect_no_command(stubber, comments=("another run", f"orca stop {RUN_ID}", RUN_ID))
    bootstrap = render_bootstrap(SPEC)
    commands = bootstrap.rstrip("\n").split("\n")
    stubber.add_response(
        "send_command",
        {"Command": {"CommandId": COMMAND_ID, "Comment": KEY}},
        # The script's 900 s, the upload grace and the bootstrap's own steps.
        _send_request(INSTANCE, KEY, commands, timeout=str(900 + BOOTSTRAP_MARGIN_SECONDS)),
    )

    execution = _runner(client).start(SPEC)

    assert execution == Execution(COMMAND_ID, INSTANCE)
    assert "\n".join(commands) + "\n" == bootstrap  # SSM joins the lines back


@pytest.mark.parametrize(
    ("targets", "selector"),
    [
        pytest.param(
            ["tag:orca=worker"], {"Key": "tag:orca", "Values": ["worker"]}, id="tag-target"
        ),
        pytest.param(
            [INSTANCE, OTHER_INSTANCE, "i-0aaaaaaaaaaaaaaaa"],
            {"Key": "InstanceIds", "Values": [INSTANCE, OTHER_INSTANCE, "i-0aaaaaaaaaaaaaaaa"]},
            id="several-instance-ids",
        ),
    ],
)
def test_several_candidates_run_the_script_on_one_online_instance(
    ssm: tuple[Any, Stubber], targets: list[str], selector: dict
) -> None:
    client, stubber = ssm
    filters = [selector, {"Key": "PingStatus", "Values": ["Online"]}]
    online = _describe_response((INSTANCE, "Online"), (OTHER_INSTANCE, "Online"))
    for _ in range(2):  # the same run, started twice (e.g. after its command aged out)
        _expect_no_command(stubber)
        stubber.add_response("describe_instance_information", online, {"Filters": filters})
        stubber.add_response("send_command", {"Command": {"CommandId": COMMAND_ID}}, None)

    first = _runner(client, targets).start(SPEC)
    again = _runner(client, targets).start(SPEC)

    assert first.instance_id in {INSTANCE, OTHER_INSTANCE}
    assert again.instance_id == first.instance_id  # the choice is stable per run


def test_no_online_instance_sends_nothing(ssm: tuple[Any, Stubber]) -> None:
    client, stubber = ssm
    _expect_no_command(stubber)
    stubber.add_response(
        "describe_instance_information", _describe_response((INSTANCE, "ConnectionLost")), None
    )

    with pytest.raises(NoInstanceAvailableError, match="tag:orca=worker"):
        _runner(client, ["tag:orca=worker"]).start(SPEC)


def test_start_resumes_the_command_already_sent_for_the_run(ssm: tuple[Any, Stubber]) -> None:
    client, stubber = ssm
    page = {
        "Commands": [_command(OTHER_COMMAND_ID, "another run")],
        "NextToken": "page-2",
    }
    stubber.add_response("list_commands", page, None)
    stubber.add_response(
        "list_commands",
        {"Commands": [_command(COMMAND_ID, KEY, InstanceIds=[INSTANCE])]},
        None,
    )

    # The Stubber fails on any unexpected call: a second send_command cannot happen.
    execution = _runner(client).start(SPEC)

    assert execution == Execution(COMMAND_ID, INSTANCE)


INVOCATION = {"CommandId": COMMAND_ID, "InstanceId": INSTANCE}


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(None, ExecutionStatus("pending"), id="just-sent"),
        pytest.param({"Status": "Pending"}, ExecutionStatus("pending"), id="pending"),
        pytest.param({"Status": "InProgress"}, ExecutionStatus("running"), id="in-progress"),
        pytest.param(
            {"Status": "Success", "ResponseCode": 0}, ExecutionStatus("succeeded", 0), id="success"
        ),
        pytest.param(
            {"Status": "Failed", "ResponseCode": 3, "StatusDetails": "Failed"},
            ExecutionStatus("failed", 3),
            id="failed",
        ),
        pytest.param(
            {"Status": "TimedOut", "ResponseCode": -1, "StatusDetails": "DeliveryTimedOut"},
            ExecutionStatus("timed_out", None, "SSM: DeliveryTimedOut"),
            id="timed-out",
        ),
        pytest.param(
            {"Status": "Cancelled", "ResponseCode": -1},
            ExecutionStatus("cancelled"),
            id="cancelled",
        ),
        pytest.param(
            # A cancel in flight kills nothing yet: the run must stay `cancelling`.
            {"Status": "Cancelling", "ResponseCode": -1},
            ExecutionStatus("running", None, "SSM is cancelling the command"),
            id="cancelling",
        ),
    ],
)
def test_status_follows_the_invocation(
    ssm: tuple[Any, Stubber], answer: dict | None, expected: ExecutionStatus
) -> None:
    client, stubber = ssm
    if answer is None:
        stubber.add_client_error(
            "get_command_invocation",
            "InvocationDoesNotExist",
            http_status_code=400,
            expected_params=INVOCATION,
        )
    else:
        stubber.add_response("get_command_invocation", {**INVOCATION, **answer}, INVOCATION)

    assert _runner(client).status(Execution(COMMAND_ID, INSTANCE), SPEC) == expected


def test_status_sequence_until_success(ssm: tuple[Any, Stubber]) -> None:
    client, stubber = ssm
    stubber.add_client_error("get_command_invocation", "InvocationDoesNotExist", 400)
    stubber.add_response("get_command_invocation", {"Status": "InProgress"}, INVOCATION)
    stubber.add_response("get_command_invocation", {"Status": "Success", "ResponseCode": 0})
    runner = _runner(client)
    runner.backoff = Backoff(first=0.0, cap=0.0)

    status = runner.wait(Execution(COMMAND_ID, INSTANCE), SPEC, timeout=5)

    assert status == ExecutionStatus("succeeded", 0)


def test_the_s3_marker_outranks_ssm(ssm: tuple[Any, Stubber], s3: Any) -> None:
    # The session's emulator server: mock_aws would reset the state the other tests share.
    client, stubber = ssm
    stubber.add_response(
        "get_command_invocation", {"Status": "Failed", "ResponseCode": 124}, INVOCATION
    )
    s3.create_bucket(Bucket="orca-bucket")
    s3.put_object(
        Bucket="orca-bucket",
        Key=exit_code_key(attempt_prefix(run_prefix(7, "demo", RUN_ID), 1)),
        Body=json.dumps({"exit_code": 124, "timed_out": True, "sha256_ok": True}),
    )

    status = _runner(client, s3=s3).status(Execution(COMMAND_ID, INSTANCE), SPEC)

    assert (status.state, status.exit_code) == ("timed_out", 124)


def test_command_sent_by_tag_finds_its_instance(ssm: tuple[Any, Stubber]) -> None:
    client, stubber = ssm
    stubber.add_response(
        "list_command_invocations",
        {"CommandInvocations": [{"CommandId": COMMAND_ID, "InstanceId": OTHER_INSTANCE}]},
        {"CommandId": COMMAND_ID},
    )
    stubber.add_response(
        "get_command_invocation",
        {"Status": "InProgress"},
        {"CommandId": COMMAND_ID, "InstanceId": OTHER_INSTANCE},
    )

    status = _runner(client, ["tag:orca=worker"]).status(Execution(COMMAND_ID, None), SPEC)

    assert status.state == "running"


def test_stop_cancels_and_kills_the_process_group(ssm: tuple[Any, Stubber]) -> None:
    client, stubber = ssm
    stubber.add_response("cancel_command", {}, {"CommandId": COMMAND_ID})
    kill_commands = render_kill(RUN_ID).rstrip("\n").split("\n")
    stubber.add_response(
        "send_command",
        {"Command": {"CommandId": KILL_ID}},
        _send_request(INSTANCE, f"orca stop {RUN_ID}", kill_commands, timeout="60"),
    )

    kill_invocation = {"CommandId": KILL_ID, "InstanceId": INSTANCE}
    stubber.add_response(
        "get_command_invocation", {**kill_invocation, "Status": "Success"}, kill_invocation
    )

    _runner(client).stop(Execution(COMMAND_ID, INSTANCE), SPEC)
    stubber.assert_no_pending_responses()  # the stop waited for the kill to end


def test_a_kill_that_fails_is_not_a_confirmed_stop(ssm: tuple[Any, Stubber]) -> None:
    client, stubber = ssm
    stubber.add_response("cancel_command", {}, {"CommandId": COMMAND_ID})
    kill_commands = render_kill(RUN_ID).rstrip("\n").split("\n")
    stubber.add_response(
        "send_command",
        {"Command": {"CommandId": KILL_ID}},
        _send_request(INSTANCE, f"orca stop {RUN_ID}", kill_commands, timeout="60"),
    )
    kill_invocation = {"CommandId": KILL_ID, "InstanceId": INSTANCE}
    stubber.add_response(
        "get_command_invocation", {**kill_invocation, "Status": "Failed"}, kill_invocation
    )

    outcome = kill_and_confirm(_runner(client), Execution(COMMAND_ID, INSTANCE), SPEC, within=1)

    assert not outcome.confirmed
    assert "kill" in outcome.detail and "stop the run again" in outcome.detail


@pytest.mark.parametrize(
    "targets",
    [
        pytest.param([], id="none"),
        pytest.param(["tag:orca=worker", INSTANCE], id="tag-and-id"),
        pytest.param(["tag:orca"], id="tag-without-value"),
    ],
)
def test_unusable_targets_are_refused(targets: list[str]) -> None:
    with pytest.raises(ValueError, match="tag:KEY=VALUE"):
        SsmRunner(object(), targets=targets, output_bucket="b", output_key_prefix="p/")
