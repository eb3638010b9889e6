"""The run queue block's client reaches the FIFO queue in the linked account."""

from orca_blocks import OrcaLinkedCloudCredentials, OrcaRunQueue


def test_queue_client_passes_runs_through_the_linked_fifo_queue(
    linked_credentials: OrcaLinkedCloudCredentials,
) -> None:
    created = linked_credentials.get_client("sqs").create_queue(
        QueueName="orca-runs.fifo", Attributes={"FifoQueue": "true"}
    )
    queue = OrcaRunQueue(
        queue_url=created["QueueUrl"], max_messages=1, credentials=linked_credentials
    )
    sqs = queue.get_client()

    for run_id in ("run-1", "run-2"):
        sqs.send_message(
            QueueUrl=queue.queue_url,
            MessageBody=run_id,
            MessageGroupId="pipeline:etl",
            MessageDeduplicationId=run_id,
        )
    received = sqs.receive_message(
        QueueUrl=queue.queue_url,
        MaxNumberOfMessages=queue.max_messages,
        WaitTimeSeconds=0,
        VisibilityTimeout=queue.visibility_timeout_seconds,
    )

    assert "/111111111111/" in queue.queue_url
    assert [message["Body"] for message in received["Messages"]] == ["run-1"]
