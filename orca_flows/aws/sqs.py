"""An SQS FIFO queue: send with group and dedup id, long-poll, extend visibility, delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

__all__ = ["FifoQueue", "QueueMessage"]

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

    def send(self, body: str, *, group_id: str, dedup_id: str) -> str:
        """Send ``body`` in ``group_id``; a repeat of ``dedup_id`` within 5 min is dropped by SQS.

        Returns:
            The SQS message id.
        """
        response = self.client.send_message(
            QueueUrl=self.url,
            MessageBody=body,
            MessageGroupId=group_id,
            MessageDeduplicationId=dedup_id,
        )
        return response["MessageId"]

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
    return QueueMessage(
        message_id=raw["MessageId"],
        receipt_handle=raw["ReceiptHandle"],
        body=raw["Body"],
        group_id=attributes.get("MessageGroupId", ""),
        dedup_id=attributes.get("MessageDeduplicationId", ""),
        receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
        sequence_number=attributes.get("SequenceNumber", ""),
    )
