"""How a worker polls one link's queue: the link's queue block, over the worker settings."""

from __future__ import annotations

from dataclasses import dataclass

from orca_blocks import OrcaRunQueue
from orca_flows.db.models import CloudLink
from orca_flows.errors import NotFoundError, OrcaError
from orca_flows.logs import get_logger
from orca_flows.prefect_adapter.link_access import load_queue_block, queue_block_name
from orca_flows.settings import OrcaSettings

__all__ = ["MAX_RECEIVE", "PollSettings", "load_poll_settings", "log_overrides"]

logger = get_logger(__name__)

MAX_RECEIVE = 10  # SQS's most messages per ReceiveMessage

# Worker settings that, set explicitly on a worker, replace a queue block's field there.
_OVERRIDES = {
    "worker_visibility_seconds": "visibility_timeout_seconds",
    "worker_poll_seconds": "wait_time_seconds",
}


@dataclass(frozen=True)
class PollSettings:
    """What a worker uses for one queue.

    Attributes:
        visibility_seconds: VisibilityTimeout of each receive and of each heartbeat.
        wait_seconds: WaitTimeSeconds (long poll) of each receive.
        max_messages: Most messages asked for per receive (fewer with fewer free slots).
        heartbeat_seconds: How often a held run's visibility and lease are renewed.
        source: Where the values come from (a block's name, or why not a block).
        from_block: Whether they come from the link's queue block.
    """

    visibility_seconds: int
    wait_seconds: int
    max_messages: int
    heartbeat_seconds: float
    source: str
    from_block: bool

    @classmethod
    def of(cls, settings: OrcaSettings, block: OrcaRunQueue | None, source: str) -> PollSettings:
        """The poll settings of a queue whose block is ``block`` (None: none could be used).

        The block wins over the worker settings, which are only the values written into a
        new block, except for a worker setting set explicitly on this worker (a test, or an
        operator overriding every queue at once). The heartbeat renews the visibility at
        least every third of it, so an edit of the block in Prefect's UI cannot make a
        running run's message reappear to other workers; a worker whose visibility is set
        explicitly keeps its heartbeat as set too.
        """
        explicit = settings.model_fields_set
        visibility = settings.worker_visibility_seconds
        wait = settings.worker_poll_seconds
        max_messages = MAX_RECEIVE
        if block is not None:
            if "worker_visibility_seconds" not in explicit:
                visibility = block.visibility_timeout_seconds
            if "worker_poll_seconds" not in explicit:
                wait = block.wait_time_seconds
            max_messages = block.max_messages
        heartbeat = settings.worker_heartbeat_seconds
        if "worker_visibility_seconds" not in explicit:
            heartbeat = min(heartbeat, visibility / 3)
        return cls(visibility, wait, max_messages, heartbeat, source, block is not None)

    def describe(self) -> str:
        """The values and where they come from, for the worker's log."""
        origin = f"from {self.source}" if self.from_block else f"worker settings ({self.source})"
        return (
            f"visibility {self.visibility_seconds}s, wait {self.wait_seconds}s, up to "
            f"{self.max_messages} per receive, heartbeat {self.heartbeat_seconds:g}s; {origin}"
        )


def load_poll_settings(settings: OrcaSettings, link: CloudLink) -> PollSettings | None:
    """Read ``link``'s queue block from Prefect now and give the poll settings it makes.

    A missing or invalid block, or one naming another queue, gives the worker settings
    (``source`` says why). None when Prefect cannot be reached: the caller keeps polling
    as it did.
    """
    name = queue_block_name(link.block_document_name)
    try:
        block = load_queue_block(link)
    except NotFoundError:
        return PollSettings.of(settings, None, f"no usable queue block {name!r}")
    except OrcaError as error:
        logger.warning("link %s (id %s): queue block not read: %s", link.name, link.id, error)
        return None
    if block.queue_url != link.queue_url:
        # Submitters send to the link's queue: a block naming another configures nothing here.
        why = f"queue block {name!r} names {block.queue_url}, not the link's queue"
        return PollSettings.of(settings, None, why)
    return PollSettings.of(settings, block, f"queue block {name!r}")


def log_overrides(settings: OrcaSettings) -> None:
    """Say at a worker's start which worker settings replace the queue blocks' values."""
    for setting, block_field in _OVERRIDES.items():
        if setting in settings.model_fields_set:
            logger.info(
                "ORCA_%s is set: it replaces every queue block's %s on this worker",
                setting.upper(),
                block_field,
            )
