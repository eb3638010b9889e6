"""The link's queue block is how a worker polls the link's queue: its visibility timeout,
long-poll wait and batch size are what each ReceiveMessage asks for, and an edit of the
block (in Prefect's UI) is used from the next links refresh.

In-process on moto's SQS (SQLite only); the block documents live in a dict instead of
Prefect. The ReceiveMessage requests are seen with a botocore event hook on the worker's
own SQS client.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.blocks.core import Block
from pydantic import ValidationError

from orca_blocks import OrcaLinkedCloudCredentials, OrcaRunQueue
from orca_flows.db.models import CloudLink
from orca_flows.errors import AwsError
from orca_flows.prefect_adapter.link_access import queue_block_name
from orca_flows.settings import get_settings
from orca_flows.worker import Worker, WorkerOptions
from orca_flows.worker.polling import PollSettings, load_poll_settings
from tests.worker.conftest import Board, credentials, fifo_queue

CONCURRENCY = 4
CREDENTIALS = "orca-link-0123456789abcdef"  # its queue block: orca-queue-0123456789abcdef


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'orca-test.db'}"


class Receives:
    """The parameters of every ReceiveMessage a client sends."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(dict(params))

    async def first(self, timeout: float) -> dict[str, Any]:
        """Wait for the first request."""
        deadline = time.monotonic() + timeout
        while not self.requests:
            assert time.monotonic() < deadline, "no ReceiveMessage"
            await asyncio.sleep(0.05)
        return self.requests[0]

    async def next_matching(self, timeout: float, **wanted: Any) -> dict[str, Any]:
        """Wait for a request (from now on) whose parameters include ``wanted``."""
        start, deadline = len(self.requests), time.monotonic() + timeout
        while time.monotonic() < deadline:
            for request in self.requests[start:]:
                if wanted.items() <= request.items():
                    return request
            await asyncio.sleep(0.05)
        raise AssertionError(f"no ReceiveMessage with {wanted}: {self.requests[start:]}")


@pytest.fixture
def link_credentials() -> OrcaLinkedCloudCredentials:
    """Credentials of their own: the hook goes on a client no other test shares."""
    return credentials(f"queue-block-{uuid.uuid4().hex}")


@pytest.fixture
def receives(link_credentials: OrcaLinkedCloudCredentials, aws: Any) -> Iterator[Receives]:
    """The ReceiveMessage requests of the client the worker polls the link's queue with."""
    seen = Receives()
    # The same client the worker gets: one factory per credentials, one client per service.
    events = link_credentials.client_factory().client("sqs").meta.events
    events.register("before-parameter-build.sqs.ReceiveMessage", seen)
    yield seen
    events.unregister("before-parameter-build.sqs.ReceiveMessage", seen)


def _queue_block(url: str, creds: OrcaLinkedCloudCredentials, **fields: Any) -> OrcaRunQueue:
    return OrcaRunQueue(queue_url=url, credentials=creds, **fields)


def _linked_queue(
    board: Board, aws: Any, blocks: dict[str, Block], creds: OrcaLinkedCloudCredentials
) -> tuple[str, int]:
    """A link "q" to a new FIFO queue, its credentials block saved; returns (url, link id)."""
    url = fifo_queue(aws, "q")
    link_id = board.add_link("q", queue_url=url, bucket="b", block_document_name=CREDENTIALS)
    blocks[CREDENTIALS] = creds
    return url, link_id


def _serving(board: Board, scenario: Callable[[Worker], Awaitable[Any]]) -> Any:
    """Run a worker with the board's settings (no explicit poll timings) while ``scenario``
    acts; then stop it."""

    async def main() -> Any:
        worker = Worker(board.settings, WorkerOptions(concurrency=CONCURRENCY))
        running = asyncio.create_task(worker.run())
        try:
            deadline = time.monotonic() + 10
            while not worker.served_queues and not running.done():
                assert time.monotonic() < deadline, "the worker serves no queue"
                await asyncio.sleep(0.05)  # the first links refresh
            return await scenario(worker)
        finally:
            worker.stop()
            await running

    return asyncio.run(main())


def test_a_worker_receives_with_the_queue_block_s_settings_not_its_own(
    board: Board,
    aws: Any,
    blocks: dict[str, Block],
    link_credentials: OrcaLinkedCloudCredentials,
    receives: Receives,
) -> None:
    url, _ = _linked_queue(board, aws, blocks, link_credentials)
    blocks[queue_block_name(CREDENTIALS)] = _queue_block(
        url, link_credentials, visibility_timeout_seconds=45, wait_time_seconds=1, max_messages=3
    )
    settings = board.settings
    assert (settings.worker_visibility_seconds, settings.worker_poll_seconds) == (120, 5)

    async def scenario(worker: Worker) -> dict[str, Any]:
        return await receives.first(5)

    request = _serving(board, scenario)

    assert request["VisibilityTimeout"] == 45
    assert request["WaitTimeSeconds"] == 1
    assert request["MaxNumberOfMessages"] == 3  # the block's, below the free slots (4)


def test_an_edited_queue_block_is_used_from_the_next_refresh(
    board: Board,
    aws: Any,
    blocks: dict[str, Block],
    link_credentials: OrcaLinkedCloudCredentials,
    receives: Receives,
) -> None:
    url, link_id = _linked_queue(board, aws, blocks, link_credentials)
    name = queue_block_name(CREDENTIALS)
    blocks[name] = _queue_block(
        url, link_credentials, visibility_timeout_seconds=45, wait_time_seconds=1
    )

    async def scenario(worker: Worker) -> tuple[dict[str, Any], dict[str, int]]:
        await receives.next_matching(5, VisibilityTimeout=45, WaitTimeSeconds=1)
        # Saved again under its name, as the Prefect UI does.
        blocks[name] = _queue_block(
            url,
            link_credentials,
            visibility_timeout_seconds=600,
            wait_time_seconds=2,
            max_messages=1,
        )
        await worker.refresh_links()
        # The old poller ends after its receive in flight (1 s); the new one asks anew.
        edited = await receives.next_matching(5, VisibilityTimeout=600)
        return edited, worker.served_queues

    edited, served = _serving(board, scenario)

    assert (edited["WaitTimeSeconds"], edited["MaxNumberOfMessages"]) == (2, 1)
    assert served == {url: link_id}


def _link(queue_url: str) -> CloudLink:
    return CloudLink(id=7, name="q", queue_url=queue_url, block_document_name=CREDENTIALS)


def test_the_heartbeat_renews_a_block_s_visibility_at_least_every_third_of_it(
    blocks: dict[str, Block], tmp_path: Path
) -> None:
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/q.fifo"
    blocks[queue_block_name(CREDENTIALS)] = _queue_block(
        url, credentials(), visibility_timeout_seconds=30
    )
    settings = get_settings(home=tmp_path)  # heartbeat 30 s by default

    poll = load_poll_settings(settings, _link(url))

    assert poll is not None and poll.from_block
    assert (poll.visibility_seconds, poll.heartbeat_seconds) == (30, 10)


def test_worker_settings_set_explicitly_replace_the_block_s_on_that_worker(tmp_path: Path) -> None:
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/q.fifo"
    block = _queue_block(url, credentials(), visibility_timeout_seconds=45, wait_time_seconds=1)
    # As `ORCA_WORKER_VISIBILITY_SECONDS=2 ORCA_WORKER_HEARTBEAT_SECONDS=60 orca worker` would:
    # a test making messages reappear mid-run on purpose.
    settings = get_settings(home=tmp_path, worker_visibility_seconds=2, worker_heartbeat_seconds=60)

    poll = PollSettings.of(settings, block, "queue block")

    assert (poll.visibility_seconds, poll.heartbeat_seconds) == (2, 60)
    assert (poll.wait_seconds, poll.max_messages) == (1, 10)  # still the block's


@pytest.mark.parametrize(
    ("saved", "reason"),
    [
        pytest.param(None, "no usable queue block", id="no-block"),
        pytest.param(
            "https://sqs.us-east-1.amazonaws.com/123456789012/other.fifo",
            "not the link's queue",
            id="block-of-another-queue",
        ),
    ],
)
def test_without_a_usable_block_the_worker_polls_with_its_settings(
    blocks: dict[str, Block], tmp_path: Path, saved: str | None, reason: str
) -> None:
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/q.fifo"
    if saved is not None:
        blocks[queue_block_name(CREDENTIALS)] = _queue_block(
            saved, credentials(), visibility_timeout_seconds=45
        )
    settings = get_settings(home=tmp_path)

    poll = load_poll_settings(settings, _link(url))

    assert poll is not None and not poll.from_block and reason in poll.source
    assert (poll.visibility_seconds, poll.wait_seconds, poll.max_messages) == (120, 5, 10)


def test_a_visibility_the_heartbeat_cannot_keep_up_with_is_refused() -> None:
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/q.fifo"
    with pytest.raises(ValidationError, match="greater than or equal to 10"):
        _queue_block(url, credentials(), visibility_timeout_seconds=5)


def test_a_receive_refused_by_sts_neither_kills_the_poller_nor_keeps_its_slots(
    board: Board,
    aws: Any,
    blocks: dict[str, Block],
    link_credentials: OrcaLinkedCloudCredentials,
    receives: Receives,
) -> None:
    _linked_queue(board, aws, blocks, link_credentials)
    events = link_credentials.client_factory().client("sqs").meta.events
    refusals = []

    def refuse_once(**_: Any) -> None:
        if not refusals:
            refusals.append(1)
            raise AwsError("sts:AssumeRole", "AccessDenied", "Orca could not assume the role.")

    events.register("before-call.sqs.ReceiveMessage", refuse_once)
    try:

        async def scenario(worker: Worker) -> int:
            await receives.first(5)
            await receives.next_matching(10)  # polled again after the refusal
            return len(refusals)

        assert _serving(board, scenario) == 1
    finally:
        events.unregister("before-call.sqs.ReceiveMessage", refuse_once)
