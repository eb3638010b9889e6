"""The SSM runner against botocore's Stubber: only what the sandbox's emulator cannot
produce on demand (everything else is in ``test_ssm_runner``, against the emulator).

That is: SSM answers the emulator never gives (Delayed, Undeliverable, Terminated,
InvalidPlatform, AccessDenied, a status AWS may add) or only for an instant (Cancelling);
throttling on a given call; a kill command that does not succeed (the emulated agent runs
the kill script, which always exits 0).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from orca_flows.runners import Execution, RunSpec, SsmRunner, render_kill
from orca_flows.services.run_stop import kill_and_confirm

DOCUMENT = "AWS-RunShellScript"

RUN_ID = "5f0e8a52-3c1b-4f7e-9d2a-6b1c0e4d8a71"
INSTANCE = "i-0123456789abcdef0"
COMMAND_ID = "0b8f6c4e-1111-4222-8333-944455556666"
KILL_ID = "22222222-0000-4000-8000-000000000000"
SPEC = RunSpec(
    run_id=RUN_ID,
    pipeline="demo",
    script_uri="s3://orca-bucket/orca/7/demo/scripts/v3/etl.py",
    script_sha256="ab" * 32,
    script_name="etl.py",
    output_uri=f"s3://orca-bucket/orca/7/demo/runs/{RUN_ID}/",
    timeout_seconds=900,
)
INVOCATION = {"CommandId": COMMAND_ID, "InstanceId": INSTANCE}


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    """An SSM client answering only what a test queues (any other call fails the test)."""
    client = boto3.client(
        "ssm", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _stubbed_runner(client: Any, targets: list[str] | None = None) -> SsmRunner:
    return SsmRunner(
        client, targets=targets or [INSTANCE], output_bucket="orca-bucket", output_key_prefix="p"
    )


@pytest.mark.parametrize(
    ("answer", "state", "detail"),
    [
        pytest.param(
            {"Status": "Delayed"},
            "pending",
            "SSM could not reach the instance yet and keeps trying",
            id="delayed",
        ),
        pytest.param(
            # A cancel in flight kills nothing yet: the run must stay `cancelling`.
            {"Status": "Cancelling", "ResponseCode": -1},
            "running",
            "SSM is cancelling the command",
            id="cancelling",
        ),
        pytest.param({"Status": "Exploded"}, "failed", "unexpected SSM status Exploded", id="new"),
        pytest.param(
            {"Status": "TimedOut", "StatusDetails": "Delivery Timed Out"},  # the docs' spelling
            "failed",
            "within its delivery timeout",
            id="delivery-timed-out",
        ),
        pytest.param(
            {"Status": "Failed", "StatusDetails": "Undeliverable", "ResponseCode": -1},
            "failed",
            "may not exist any more",
            id="undeliverable",
        ),
        pytest.param(
            {"Status": "Failed", "StatusDetails": "Terminated"},
            "failed",
            "error limit",
            id="terminated",
        ),
        pytest.param(
            {"Status": "Failed", "StatusDetails": "InvalidPlatform"},
            "failed",
            "not a Linux instance",
            id="invalid-platform",
        ),
        pytest.param(
            {"Status": "Failed", "StatusDetails": "AccessDenied"},
            "failed",
            "ssm:SendCommand",
            id="access-denied",
        ),
    ],
)
def test_status_reads_what_the_emulator_never_answers(
    stubbed: tuple[Any, Stubber], answer: dict[str, Any], state: str, detail: str
) -> None:
    client, stubber = stubbed
    stubber.add_response("get_command_invocation", {**INVOCATION, **answer}, INVOCATION)

    status = _stubbed_runner(client).status(Execution(COMMAND_ID, INSTANCE), SPEC)

    assert (status.state, status.exit_code) == (state, None)
    assert detail in status.detail
    if "StatusDetails" in answer:  # the script never ran: the instance and why are named
        assert INSTANCE in status.detail and "never ran" in status.detail


def test_a_throttled_lookup_never_sends(stubbed: tuple[Any, Stubber]) -> None:
    # ListCommands refused (after botocore's own retries): a start that cannot know whether
    # the attempt was sent must not send it (again); the worker tries the start later.
    client, stubber = stubbed
    stubber.add_client_error("list_commands", "ThrottlingException", http_status_code=400)

    with pytest.raises(ClientError, match="ThrottlingException"):
        _stubbed_runner(client).start(SPEC)


def test_a_throttled_instance_lookup_is_not_no_instance_online(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stubber.add_response("list_commands", {"Commands": []}, None)
    stubber.add_client_error(
        "describe_instance_information", "ThrottlingException", http_status_code=400
    )

    with pytest.raises(ClientError, match="ThrottlingException"):
        _stubbed_runner(client, ["tag:orca=enabled"]).start(SPEC)


def _expect_kill(stubber: Stubber, outcome: str) -> None:
    stubber.add_response(
        "send_command",
        {"Command": {"CommandId": KILL_ID}},
        {
            "InstanceIds": [INSTANCE],
            "DocumentName": DOCUMENT,
            "Comment": f"orca stop {RUN_ID}",
            "Parameters": {
                "commands": render_kill(RUN_ID).rstrip("\n").split("\n"),
                "executionTimeout": ["60"],
            },
            "TimeoutSeconds": 60,
            "OutputS3BucketName": "orca-bucket",
            "OutputS3KeyPrefix": "p",
            "MaxConcurrency": "1",
            "MaxErrors": "0",
        },
    )
    kill_invocation = {"CommandId": KILL_ID, "InstanceId": INSTANCE}
    stubber.add_response(
        "get_command_invocation", {**kill_invocation, "Status": outcome}, kill_invocation
    )


def test_a_kill_that_fails_is_not_a_confirmed_stop(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    # Running already: no CancelCommand (it would kill the bootstrap), only the kill.
    stubber.add_response(
        "get_command_invocation", {**INVOCATION, "Status": "InProgress"}, INVOCATION
    )
    _expect_kill(stubber, "Failed")

    runner = _stubbed_runner(client)
    outcome = kill_and_confirm(runner, Execution(COMMAND_ID, INSTANCE), SPEC, within=1)

    assert not outcome.confirmed
    assert "kill" in outcome.detail and "stop the run again" in outcome.detail


def test_a_command_not_delivered_yet_is_cancelled_and_needs_no_kill(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    stubber.add_response("get_command_invocation", {**INVOCATION, "Status": "Pending"}, INVOCATION)
    stubber.add_response("cancel_command", {}, {"CommandId": COMMAND_ID})
    # SSM ended it without starting it (no ExecutionStartDateTime): nothing to kill.
    stubber.add_response(
        "get_command_invocation", {**INVOCATION, "Status": "Cancelled"}, INVOCATION
    )

    _stubbed_runner(client).stop(Execution(COMMAND_ID, INSTANCE), SPEC)


def test_a_command_delivered_while_cancelled_is_killed_too(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response("get_command_invocation", {**INVOCATION, "Status": "Pending"}, INVOCATION)
    stubber.add_response("cancel_command", {}, {"CommandId": COMMAND_ID})
    started = {"Status": "InProgress", "ExecutionStartDateTime": "2026-12-02T18:00:00Z"}
    stubber.add_response("get_command_invocation", {**INVOCATION, **started}, INVOCATION)
    _expect_kill(stubber, "Success")

    _stubbed_runner(client).stop(Execution(COMMAND_ID, INSTANCE), SPEC)


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
