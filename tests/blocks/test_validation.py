"""Bad block settings are refused with a message that says what to do instead."""

from typing import Any

import pytest
from prefect.blocks.core import Block
from pydantic import ValidationError

from orca_blocks import OrcaLinkedCloudCredentials, OrcaRunQueue

_VALID_CREDENTIALS = {
    "role_arn": "arn:aws:iam::123456789012:role/OrcaAccess",
    "external_id": "orca-7f3a9c1e",
}


def _build(block: type[Block], **settings: Any) -> Block:
    """A block from valid settings, with ``settings`` replacing some of them."""
    credentials = OrcaLinkedCloudCredentials(**_VALID_CREDENTIALS)
    valid: dict[type[Block], dict[str, Any]] = {
        OrcaLinkedCloudCredentials: _VALID_CREDENTIALS,
        OrcaRunQueue: {
            "queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/orca-runs.fifo",
            "credentials": credentials,
        },
    }
    return block(**{**valid[block], **settings})


@pytest.mark.parametrize(
    ("block", "settings", "guidance"),
    [
        pytest.param(
            OrcaLinkedCloudCredentials,
            {"role_arn": "arn:aws:iam::1234:role/OrcaAccess"},
            "orca link kit",
            id="malformed-role-arn",
        ),
        pytest.param(
            OrcaLinkedCloudCredentials,
            {"role_arn": "arn:aws:iam::123456789012:user/bob"},
            "Orca needs a role it can assume. Run `orca link kit`",
            id="user-arn",
        ),
        pytest.param(
            OrcaLinkedCloudCredentials,
            {"region_name": "us-middle-1"},
            "use a region code such as us-east-1",
            id="unknown-region",
        ),
        pytest.param(
            OrcaLinkedCloudCredentials,
            {"region_name": "cn-north-1"},
            "choose a region of aws",
            id="region-outside-role-partition",
        ),
        pytest.param(
            OrcaLinkedCloudCredentials,
            {"role_session_name": "orca worker"},
            "e.g. orca-worker",
            id="session-name-with-space",
        ),
        pytest.param(
            OrcaLinkedCloudCredentials,
            {"external_id": "x"},
            "copy the one `orca link kit` generated",
            id="external-id-too-short",
        ),
        pytest.param(
            OrcaLinkedCloudCredentials,
            {"session_duration_seconds": 600},
            "greater than or equal to 900",
            id="session-shorter-than-sts-minimum",
        ),
        pytest.param(
            OrcaRunQueue,
            {"queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/orca-runs"},
            "Orca needs a FIFO queue",
            id="queue-not-fifo",
        ),
        pytest.param(
            OrcaRunQueue,
            {"wait_time_seconds": 21},
            "less than or equal to 20",
            id="long-poll-over-20s",
        ),
        pytest.param(
            OrcaRunQueue,
            {"visibility_timeout_seconds": 9},
            "greater than or equal to 10",
            id="visibility-under-10s",
        ),
        pytest.param(
            OrcaRunQueue,
            {"max_messages": 11},
            "less than or equal to 10",
            id="more-than-10-messages",
        ),
    ],
)
def test_bad_setting_is_refused_with_guidance(
    block: type[Block], settings: dict[str, Any], guidance: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        _build(block, **settings)

    [error] = raised.value.errors()
    assert guidance in error["msg"]


@pytest.mark.parametrize(
    ("block", "settings"),
    [
        pytest.param(
            OrcaLinkedCloudCredentials,
            {
                "role_arn": "arn:aws-cn:iam::123456789012:role/orca/OrcaAccess",
                "region_name": "cn-north-1",
            },
            id="china-role-with-path",
        ),
        pytest.param(
            OrcaRunQueue,
            {"queue_url": "http://127.0.0.1:5000/123456789012/orca-runs.fifo"},
            id="sandbox-queue",
        ),
    ],
)
def test_good_setting_is_kept(block: type[Block], settings: dict[str, Any]) -> None:
    built = _build(block, **settings)

    assert {name: getattr(built, name) for name in settings} == settings


def test_refused_external_id_is_not_echoed() -> None:
    with pytest.raises(ValidationError) as raised:
        _build(OrcaLinkedCloudCredentials, external_id="secret value with spaces")

    assert "secret value with spaces" not in str(raised.value)


def test_account_id_comes_from_the_role_arn() -> None:
    assert _build(OrcaLinkedCloudCredentials).account_id == "123456789012"


def test_a_queue_edit_is_refused_before_it_can_be_saved() -> None:
    queue = _build(OrcaRunQueue)
    assert isinstance(queue, OrcaRunQueue)

    with pytest.raises(ValidationError, match="greater than or equal to 10"):
        queue.visibility_timeout_seconds = 5

    assert queue.visibility_timeout_seconds == 120
