"""The run queue block: a link's SQS FIFO queue and how workers poll it."""

from typing import Any

from prefect.blocks.core import Block
from pydantic import ConfigDict, Field, field_validator

from orca_blocks._validation import refused_as_value_error
from orca_blocks.credentials import OrcaLinkedCloudCredentials
from orca_flows.domain.rules import check_fifo_queue_url
from orca_flows.settings import OrcaSettings

__all__ = ["MIN_VISIBILITY_SECONDS", "OrcaRunQueue"]

# A worker checks on a run (and renews its visibility) every 2 s at most; below 10 s a
# slow call or two would let the message reappear to other workers mid-run.
MIN_VISIBILITY_SECONDS = 10

# The worker settings are the defaults of a new block (one copy of each default).
_DEFAULTS = OrcaSettings.model_fields


class OrcaRunQueue(Block):
    """The SQS FIFO queue of one linked account, and how Orca's workers poll it.

    Every worker serving the link reads this block on each links refresh (every 30 s) and
    uses its visibility timeout, long-poll wait and batch size for the link's queue; edit
    it in the Prefect UI to change them, no restart needed. A worker started with
    ``ORCA_WORKER_VISIBILITY_SECONDS`` or ``ORCA_WORKER_POLL_SECONDS`` set uses those for
    every queue instead (it logs so). The dead-letter queue is not a field: SQS moves a
    message there by the queue's own redrive policy, which the link's stack sets.

    Example:
        Poll the queue once:
        ```python
        from orca_blocks import OrcaRunQueue

        queue = OrcaRunQueue.load("BLOCK_NAME")
        sqs = queue.get_client()
        sqs.receive_message(QueueUrl=queue.queue_url, WaitTimeSeconds=queue.wait_time_seconds)
        ```
    """

    # An assignment is checked as the constructor checks: `block.field = value` then
    # `block.save(...)` cannot store what a worker would refuse to load.
    model_config = ConfigDict(validate_assignment=True)

    _block_type_name = "Orca Run Queue"
    _block_type_slug = "orca-run-queue"
    _logo_url = OrcaLinkedCloudCredentials._logo_url  # type: ignore[assignment]
    _documentation_url = OrcaLinkedCloudCredentials._documentation_url  # type: ignore[assignment]
    _description = (
        "The SQS FIFO queue of a linked AWS account where Orca's runs wait, in order, and "
        "how Orca's workers poll it; workers pick up an edit within 30 seconds."
    )

    queue_url: str = Field(
        default=...,
        description=(
            "URL of the link's FIFO queue, "
            "e.g. https://sqs.us-east-1.amazonaws.com/123456789012/orca-runs.fifo. "
            "Workers use this block only while it names the queue of its link."
        ),
        title="Queue URL",
    )
    visibility_timeout_seconds: int = Field(
        default=_DEFAULTS["worker_visibility_seconds"].default,
        ge=MIN_VISIBILITY_SECONDS,
        le=43200,
        description=(
            "Seconds a received run stays hidden from other workers, 10 to 43200; the worker "
            "renews it at least every third of it while the run goes. After a worker dies "
            "its runs come back when it lapses."
        ),
    )
    wait_time_seconds: int = Field(
        default=_DEFAULTS["worker_poll_seconds"].default,
        ge=0,
        le=20,
        description="Long-poll wait per receive in seconds, 0 to 20.",
    )
    max_messages: int = Field(
        default=10,
        ge=1,
        le=10,
        description=(
            "Most runs taken from the queue per receive, 1 to 10; a worker takes no more "
            "than it has free run slots."
        ),
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
