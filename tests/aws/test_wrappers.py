"""The S3, SQS FIFO and STS wrappers against in-process moto (unit level)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from orca_flows.aws.clients import ClientFactory
from orca_flows.aws.s3 import PrefixedBucket
from orca_flows.aws.sqs import FifoQueue
from orca_flows.aws.sts import assume_role, caller_identity
from orca_flows.domain.s3_layout import user_prefix
from orca_flows.errors import InvalidInputError

# What the link kit's template sets on the run queue (Orca sends explicit dedup ids).
QUEUE_ATTRIBUTES = {"FifoQueue": "true", "ContentBasedDeduplication": "false"}


@pytest.fixture
def factory() -> Iterator[ClientFactory]:
    with mock_aws():
        yield ClientFactory()


@pytest.fixture
def bucket(factory: ClientFactory) -> PrefixedBucket:
    s3 = factory.client("s3")
    s3.create_bucket(Bucket="orca-test")
    return PrefixedBucket(s3, "orca-test", user_prefix(7))


@pytest.fixture
def queue(factory: ClientFactory) -> FifoQueue:
    sqs = factory.client("sqs")
    sqs.create_queue(QueueName="runs.fifo", Attributes=QUEUE_ATTRIBUTES)
    return FifoQueue.from_name(sqs, "runs.fifo")


def test_clients_use_standard_retry_mode(factory: ClientFactory) -> None:
    client = factory.client("sqs")

    assert client.meta.config.retries["mode"] == "standard"
    assert client.meta.config.retries["total_max_attempts"] == 5


def test_bucket_keeps_everything_under_the_users_prefix(bucket: PrefixedBucket) -> None:
    uri = bucket.put("p/runs/r1/log", b"hello")

    assert uri == "s3://orca-test/orca/7/p/runs/r1/log"
    assert bucket.get("p/runs/r1/log") == b"hello"
    raw = bucket.client.list_objects_v2(Bucket="orca-test")["Contents"]
    assert [item["Key"] for item in raw] == ["orca/7/p/runs/r1/log"]


def test_bucket_lists_relative_keys_across_pages(bucket: PrefixedBucket) -> None:
    for index in range(1005):  # more than one list_objects_v2 page (1000)
        bucket.put(f"p/outputs/{index:04d}.csv", b"x")
    other_user = PrefixedBucket(bucket.client, bucket.bucket, user_prefix(8))
    other_user.put("p/outputs/secret.csv", b"y")

    listed = bucket.list("p/outputs/")

    assert len(listed) == 1005 and listed[0] == "p/outputs/0000.csv"
    assert other_user.list() == ["p/outputs/secret.csv"]


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("../8/secret", id="parent"),
        pytest.param("/absolute", id="absolute"),
        pytest.param("", id="empty"),
        pytest.param("a/../../b", id="nested-parent"),
    ],
)
def test_keys_cannot_escape_the_prefix(bucket: PrefixedBucket, key: str) -> None:
    with pytest.raises(InvalidInputError):
        bucket.put(key, b"x")


def test_exists_and_delete(bucket: PrefixedBucket) -> None:
    bucket.put("probe", b"x")
    assert bucket.exists("probe")

    bucket.delete("probe")

    assert not bucket.exists("probe")


def test_presigned_url_names_the_prefixed_key(bucket: PrefixedBucket) -> None:
    url = bucket.presigned_get_url("p/out.csv", expires_in=60)

    assert "/orca/7/p/out.csv?" in url
    assert "Expires=" in url


def test_fifo_send_receive_carries_group_and_dedup_ids(queue: FifoQueue) -> None:
    run_id = str(uuid.uuid4())
    message_id = queue.send('{"run": 1}', group_id="pipeline:1", dedup_id=run_id)

    [message] = queue.receive(wait_seconds=0)

    assert (message.message_id, message.body) == (message_id, '{"run": 1}')
    assert (message.group_id, message.dedup_id, message.receive_count) == ("pipeline:1", run_id, 1)


def test_fifo_drops_a_repeated_dedup_id_but_not_a_repeated_body(queue: FifoQueue) -> None:
    queue.send("same", group_id="g", dedup_id="run-1")
    queue.send("same", group_id="g", dedup_id="run-1")
    queue.send("same", group_id="g", dedup_id="run-2")

    received = []
    for _ in range(3):
        batch = queue.receive(wait_seconds=0)
        for message in batch:
            queue.delete(message.receipt_handle)
        received += batch

    assert [m.dedup_id for m in received] == ["run-1", "run-2"]


def test_visibility_zero_hands_a_message_back_and_delete_removes_it(queue: FifoQueue) -> None:
    queue.send("m", group_id="g", dedup_id="d")
    [first] = queue.receive(wait_seconds=0, visibility_timeout=300)
    assert queue.receive(wait_seconds=0) == []  # hidden while held

    queue.change_visibility(first.receipt_handle, 0)
    [again] = queue.receive(wait_seconds=0)
    queue.delete(again.receipt_handle)

    assert again.receive_count == 2
    assert queue.receive(wait_seconds=0) == []


def test_caller_identity_and_assume_role_into_another_account(factory: ClientFactory) -> None:
    sts = factory.client("sts")
    me = caller_identity(sts)

    creds = assume_role(
        sts,
        "arn:aws:iam::210987654321:role/orca",
        session_name="orca-test",
        external_id="x" * 32,
        duration_seconds=900,
    )
    other = caller_identity(
        ClientFactory(
            session=boto3.Session(
                aws_access_key_id=creds.access_key_id,
                aws_secret_access_key=creds.secret_access_key,
                aws_session_token=creds.session_token,
            )
        ).client("sts")
    )

    assert me.account == "123456789012"
    assert other.account == "210987654321"
    assert other.arn.endswith("assumed-role/orca/orca-test")


def test_a_factory_reuses_its_clients(factory: ClientFactory) -> None:
    assert factory.client("sqs") is factory.client("sqs")
    assert factory.client("sqs") is not factory.client("s3")
    assert factory.client("sqs", read_timeout=5) is not factory.client("sqs")
