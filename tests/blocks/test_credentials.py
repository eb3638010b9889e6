"""The linked-cloud credentials block on the moto server: assume, refresh, ExternalId, errors;
and ``OrcaLinkedCloud.load`` in a user's own code on a real link of the sandbox."""

from typing import Any

import pytest
from botocore.credentials import RefreshableCredentials
from prefect_aws import AwsCredentials
from pydantic import SecretStr

from orca_blocks import OrcaLinkedCloud, OrcaLinkedCloudCredentials
from orca_flows.db.models import User
from orca_flows.domain.actor import Actor
from orca_flows.errors import AwsError
from orca_flows.local.sandbox import SandboxState
from orca_flows.services.link_creation import create_local_link
from orca_flows.settings import get_settings


def _signing_keys(client: Any) -> list[str]:
    """Collects the access key id that signs each request the client sends."""
    keys: list[str] = []

    def record(request: Any, **_: Any) -> None:
        credential = request.headers["Authorization"].decode().split("Credential=")[1]
        keys.append(credential.split("/")[0])

    client.meta.events.register("before-send", record)
    return keys


def test_client_acts_as_the_linked_role(linked_credentials: OrcaLinkedCloudCredentials) -> None:
    identity = linked_credentials.get_client("sts").get_caller_identity()

    assert identity["Account"] == "111111111111" == linked_credentials.account_id
    assert identity["Arn"] == "arn:aws:sts::111111111111:assumed-role/OrcaAccess/orca"


def test_expired_credentials_are_assumed_again(
    linked_credentials: OrcaLinkedCloudCredentials, clock, sts_spy
) -> None:
    sts = linked_credentials.get_client("sts")
    signing_keys = _signing_keys(sts)

    sts.get_caller_identity()
    sts.get_caller_identity()
    assert len(sts_spy.requests) == 1, "credentials still valid must be reused"

    clock.advance(linked_credentials.session_duration_seconds + 60)
    identity = sts.get_caller_identity()

    assert identity["Arn"] == "arn:aws:sts::111111111111:assumed-role/OrcaAccess/orca"
    assert len(sts_spy.requests) == 2
    first, second = sts_spy.issued_keys
    assert first != second
    assert signing_keys == [first, first, second]


def test_a_user_s_own_clients_from_the_session_are_renewed_too(
    linked_credentials: OrcaLinkedCloudCredentials, clock, sts_spy
) -> None:
    # What a user does with boto3 directly: a client of their own from the block's session.
    session = OrcaLinkedCloud.get_boto3_session(linked_credentials)
    sts = session.client("sts", endpoint_url=linked_credentials.endpoint_url)
    signing_keys = _signing_keys(sts)

    sts.get_caller_identity()
    clock.advance(linked_credentials.session_duration_seconds + 60)
    sts.get_caller_identity()

    assert len(sts_spy.requests) == 2, "the expired keys were not replaced"
    assert signing_keys == sts_spy.issued_keys


@pytest.mark.usefixtures("prefect_server")
def test_orca_linked_cloud_load_gives_a_user_working_clients_of_a_real_link(
    sandbox: SandboxState, ann: User
) -> None:
    link = create_local_link(get_settings(), Actor(ann.id, ann.email), "dev")

    # A user's own code, knowing only the block's name (shown by `orca link list`).
    linked = OrcaLinkedCloud.load(link.block_document)
    identity = linked.get_client("sts").get_caller_identity()
    s3 = linked.get_client("s3")
    s3.put_object(Bucket=link.bucket, Key="orca/mine/hello.txt", Body=b"hello")
    sqs = linked.get_client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=link.queue_url, AttributeNames=["FifoQueue"])

    assert identity["Account"] == link.account_id
    assert identity["Arn"].startswith(f"arn:aws:sts::{link.account_id}:assumed-role/")
    body = s3.get_object(Bucket=link.bucket, Key="orca/mine/hello.txt")["Body"].read()
    assert body == b"hello"
    assert attributes["Attributes"]["FifoQueue"] == "true"


def test_prefect_aws_assumed_role_keys_are_never_renewed(
    linked_credentials: OrcaLinkedCloudCredentials, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Why the Orca block exists: prefect-aws assumes the role once and keeps static keys.
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", linked_credentials.endpoint_url)
    session = AwsCredentials(
        region_name="us-east-1",
        assume_role_arn=linked_credentials.role_arn,
        assume_role_kwargs={
            "ExternalId": linked_credentials.external_id.get_secret_value(),
            "DurationSeconds": 900,
        },
    ).get_boto3_session()
    credentials = session.get_credentials()
    keys_before = credentials.get_frozen_credentials()

    clock.advance(2 * 3600)

    assert not isinstance(credentials, RefreshableCredentials)
    assert session.get_credentials().get_frozen_credentials() == keys_before


def test_assume_role_request_carries_the_external_id(
    linked_credentials: OrcaLinkedCloudCredentials, sts_spy
) -> None:
    linked_credentials.get_client("s3").list_buckets()

    [request] = sts_spy.requests
    assert request["Action"] == "AssumeRole"
    assert request["RoleArn"] == linked_credentials.role_arn
    assert request["ExternalId"] == linked_credentials.external_id.get_secret_value()
    assert request["RoleSessionName"] == "orca"
    assert int(request["DurationSeconds"]) == 3600


def test_refused_assume_role_says_what_to_check(
    linked_credentials: OrcaLinkedCloudCredentials, sts_spy
) -> None:
    sts_spy.deny_with = "Not authorized to perform sts:AssumeRole"

    with pytest.raises(AwsError) as raised:
        linked_credentials.get_client("sqs").list_queues()

    assert raised.value.operation == "sts:AssumeRole"
    assert raised.value.code == "AccessDenied"
    assert linked_credentials.role_arn in str(raised.value)
    assert "trust policy" in str(raised.value)
    assert "orca link check" in str(raised.value)


def test_clients_use_the_link_region_endpoint_and_standard_retries(
    linked_credentials: OrcaLinkedCloudCredentials, moto_endpoint: str
) -> None:
    ssm = linked_credentials.model_copy(update={"region_name": "eu-west-1"}).get_client("ssm")

    assert ssm.meta.region_name == "eu-west-1"
    assert ssm.meta.endpoint_url == moto_endpoint
    assert ssm.meta.config.retries["mode"] == "standard"


def test_copies_of_a_block_share_clients_until_its_settings_change(
    linked_credentials: OrcaLinkedCloudCredentials, sts_spy
) -> None:
    copy = linked_credentials.model_copy(deep=True)
    assert copy.get_client("sts") is linked_credentials.get_client("sts")

    copy.get_client("sts").get_caller_identity()
    linked_credentials.get_client("sts").get_caller_identity()
    assert len(sts_spy.requests) == 1, "one role assumption serves every copy"

    rotated = linked_credentials.model_copy(update={"external_id": SecretStr("orca-rotated-1")})
    assert rotated.get_client("sts") is not linked_credentials.get_client("sts")
    rotated.get_client("sts").get_caller_identity()
    assert sts_spy.requests[-1]["ExternalId"] == "orca-rotated-1"
