"""An SQS FIFO queue: send with group and dedup id, long-poll, extend visibility, delete.

A message may carry the ``orca-probe`` attribute: a `link check` probe, never a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

__all__ = ["PROBE_ATTRIBUTE", "FifoQueue", "QueueMessage"]

# The message attribute that marks a `orca link check` probe (its value: the probe's id).
# A worker that receives a probe deletes it and never takes it for a run.
PROBE_ATTRIBUTE = "orca-probe"

_SYSTEM_ATTRIBUTES = [
    "MessageGroupId",
    "MessageDeduplicationId",
    "ApproximateReceiveCount",
    "SequenceNumber",
]


@dataclass(frozen=True)
class QueueMessage:
    """One received message, with the attributes Orca's fence and dedup logic need."""

    message_id: str
    receipt_handle: str
    body: str
    group_id: str
    dedup_id: str
    receive_count: int
    sequence_number: str
    probe: str | None = None  # the probe id of a `link check` probe, else None


def _drop_none(**params: Any) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


class FifoQueue:
    """Thin wrapper over one FIFO queue; the client is injected.

    Args:
        client: An SQS client.
        url: The queue URL (ends in ``.fifo``).
    """

    def __init__(self, client: SQSClient, url: str) -> None:
        self.client = client
        self.url = url

    @classmethod
    def from_name(cls, client: SQSClient, name: str) -> FifoQueue:
        """The queue called ``name`` (raises ``QueueDoesNotExist`` when there is none)."""
        return cls(client, client.get_queue_url(QueueName=name)["QueueUrl"])

    def send(self, body: str, *, group_id: str, dedup_id: str, probe: str | None = None) -> str:
        """Send ``body`` in ``group_id``; a repeat of ``dedup_id`` within 5 min is dropped by SQS.

        Args:
            probe: Mark the message as a `link check` probe with this id (``PROBE_ATTRIBUTE``).

        Returns:
            The SQS message id.
        """
        extra: dict[str, Any] = {}
        if probe is not None:
            extra["MessageAttributes"] = {
                PROBE_ATTRIBUTE: {"DataType": "String", "StringValue": probe}
            }
        response = self.client.send_message(
            QueueUrl=self.url,
            MessageBody=body,
            MessageGroupId=group_id,
            MessageDeduplicationId=dedup_id,
            **extra,
        )
        return response["MessageId"]

    def waiting_messages(self) -> int:
        """How many messages are visible (waiting to be received), approximately.

        Raises ``QueueDoesNotExist`` (a ``ClientError``) when the queue is gone.
        """
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", "0"))

    def receive(
        self,
        *,
        max_messages: int = 10,
        wait_seconds: int = 20,
        visibility_timeout: int | None = None,
    ) -> list[QueueMessage]:
        """Long-poll for up to ``max_messages`` messages (an empty list when none came)."""
        response = self.client.receive_message(
            **_drop_none(
                QueueUrl=self.url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=visibility_timeout,
                MessageSystemAttributeNames=_SYSTEM_ATTRIBUTES,
                MessageAttributeNames=[PROBE_ATTRIBUTE],
            )
        )
        return [_to_message(raw) for raw in response.get("Messages", [])]

    def change_visibility(self, receipt_handle: str, timeout: int) -> None:
        """Hide the message for ``timeout`` more seconds (0 hands it back at once)."""
        self.client.change_message_visibility(
            QueueUrl=self.url, ReceiptHandle=receipt_handle, VisibilityTimeout=timeout
        )

    def delete(self, receipt_handle: str) -> None:
        """Remove a received message for good."""
        self.client.delete_message(QueueUrl=self.url, ReceiptHandle=receipt_handle)


def _to_message(raw: MessageTypeDef) -> QueueMessage:
    attributes = raw.get("Attributes", {})
    marker = raw.get("MessageAttributes", {}).get(PROBE_ATTRIBUTE)
    probe = marker.get("StringValue") if marker is not None else None
    return QueueMessage(
        message_id=raw["MessageId"],
        receipt_handle=raw["ReceiptHandle"],
        body=raw["Body"],
        group_id=attributes.get("MessageGroupId", ""),
        dedup_id=attributes.get("MessageDeduplicationId", ""),
        receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
        sequence_number=attributes.get("SequenceNumber", ""),
        probe=probe,
    )
