"""The run queue block: the SQS FIFO queue in the linked account where runs wait, in order."""

from typing import Any

from prefect.blocks.core import Block
from pydantic import Field, field_validator

from orca_blocks._validation import refused_as_value_error
from orca_blocks.credentials import OrcaLinkedCloudCredentials
from orca_flows.domain.rules import check_fifo_queue_url

__all__ = ["OrcaRunQueue"]


class OrcaRunQueue(Block):
    """The SQS FIFO queue a worker polls for the runs of one linked account.

    Example:
        Poll the queue once:
        ```python
        from orca_blocks import OrcaRunQueue

        queue = OrcaRunQueue.load("BLOCK_NAME")
        sqs = queue.get_client()
        sqs.receive_message(QueueUrl=queue.queue_url, WaitTimeSeconds=queue.wait_time_seconds)
        ```
    """

    _block_type_name = "Orca Run Queue"
    _block_type_slug = "orca-run-queue"
    _logo_url = OrcaLinkedCloudCredentials._logo_url
    _documentation_url = OrcaLinkedCloudCredentials._documentation_url
    _description = (
        "The SQS FIFO queue of a linked AWS account where Orca's runs wait, in order, for a worker."
    )

    queue_url: str = Field(
        default=...,
        description=(
            "URL of the FIFO queue, "
            "e.g. https://sqs.us-east-1.amazonaws.com/123456789012/orca-runs.fifo."
        ),
        title="Queue URL",
    )
    visibility_timeout_seconds: int = Field(
        default=300,
        ge=0,
        le=43200,
        description=(
            "Seconds a received run stays hidden from other workers until the worker "
            "extends it, 0 to 43200."
        ),
    )
    wait_time_seconds: int = Field(
        default=20,
        ge=0,
        le=20,
        description="Long-poll wait per receive in seconds, 0 to 20.",
    )
    max_messages: int = Field(
        default=1,
        ge=1,
        le=10,
        description="Most runs taken from the queue per receive, 1 to 10.",
    )
    credentials: OrcaLinkedCloudCredentials = Field(
        default=...,
        description="The linked account that owns the queue.",
    )

    @field_validator("queue_url")
    @classmethod
    def _check_queue_url(cls, value: str) -> str:
        return refused_as_value_error(check_fifo_queue_url, value)

    def get_client(self) -> Any:
        """An SQS client acting as the linked role, with the link's region and endpoint."""
        return self.credentials.get_client("sqs")
