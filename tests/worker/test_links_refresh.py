"""A running worker follows its links: removed links' queues stop being polled, and a link
whose block changed (`orca link update`: a new ExternalId) is used with its new settings.

In-process on moto's SQS (SQLite only: no SQL here that the claim tests do not cover);
the credentials blocks live in a dict instead of Prefect.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from orca_blocks import OrcaLinkedCloudCredentials
from orca_flows.errors import PrefectUnavailableError
from orca_flows.prefect_adapter import link_access
from orca_flows.settings import OrcaSettings
from orca_flows.worker import Worker, WorkerOptions
from tests.worker.conftest import Board, credentials, fifo_queue

POLL_SECONDS = 1


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'orca-test.db'}"


def _serving(board: Board, scenario: Callable[[Worker], Awaitable[Any]]) -> Any:
    """Run a worker (polling every second) while ``scenario`` acts; then stop it."""
    settings: OrcaSettings = board.settings.model_copy(update={"worker_poll_seconds": POLL_SECONDS})

    async def main() -> Any:
        worker = Worker(settings, WorkerOptions())
        running = asyncio.create_task(worker.run())
        try:
            while not worker.served_queues and not running.done():
                await asyncio.sleep(0.05)  # the first links refresh
            return await scenario(worker)
        finally:
            worker.stop()
            await running

    return asyncio.run(main())


def test_a_refresh_stops_polling_removed_links_and_picks_up_changed_credentials(
    board: Board, aws: Any, blocks: dict[str, OrcaLinkedCloudCredentials]
) -> None:
    kept_url, removed_url = fifo_queue(aws, "kept"), fifo_queue(aws, "removed")
    kept = board.add_link("kept", queue_url=kept_url, bucket="b1")
    removed = board.add_link("removed", queue_url=removed_url, bucket="b2")
    blocks["block-kept"] = credentials("external-id-one")
    blocks["block-removed"] = credentials()

    async def scenario(worker: Worker) -> tuple[dict[str, int], dict[str, int], str]:
        before = worker.served_queues
        removed_poller = worker._pollers[removed].task
        assert removed_poller is not None
        board.remove_link(removed)
        blocks["block-kept"] = credentials("external-id-two")  # `orca link update`
        await worker.refresh_links()
        # A poller busy in a receive ends after it (on a loaded host its receive thread
        # may start late: wait for the poller itself); then nothing polls the removed
        # link's queue any more, and a message sent there stays.
        await asyncio.wait_for(removed_poller, timeout=10 * POLL_SECONDS)
        aws.send_message(
            QueueUrl=removed_url,
            MessageBody=json.dumps({"run_id": "r"}),
            MessageGroupId="g",
            MessageDeduplicationId="d",
        )
        await asyncio.sleep(POLL_SECONDS + 0.2)
        external_id = worker.access_for(kept).credentials.external_id.get_secret_value()
        return before, worker.served_queues, external_id

    before, after, external_id = _serving(board, scenario)

    assert before == {kept_url: kept, removed_url: removed}
    assert after == {kept_url: kept}
    assert external_id == "external-id-two"
    left = aws.receive_message(QueueUrl=removed_url).get("Messages", [])
    assert [json.loads(m["Body"]) for m in left] == [{"run_id": "r"}]


def test_an_unchanged_link_keeps_its_access(
    board: Board, aws: Any, blocks: dict[str, OrcaLinkedCloudCredentials]
) -> None:
    url = fifo_queue(aws, "q")
    link_id = board.add_link("q", queue_url=url, bucket="b")
    blocks["block-q"] = credentials()

    async def scenario(worker: Worker) -> bool:
        access = worker.access_for(link_id)
        blocks["block-q"] = credentials()  # the block is read again: same contents
        await worker.refresh_links()
        return worker.access_for(link_id) is access and worker.served_queues == {url: link_id}

    assert _serving(board, scenario)


def test_a_link_whose_block_cannot_be_read_keeps_being_served(
    board: Board,
    aws: Any,
    blocks: dict[str, OrcaLinkedCloudCredentials],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = fifo_queue(aws, "q")
    link_id = board.add_link("q", queue_url=url, bucket="b")
    blocks["block-q"] = credentials()

    def prefect_down(block_type: type, name: str) -> OrcaLinkedCloudCredentials:
        raise PrefectUnavailableError("could not load block in Prefect: connection refused.")

    async def scenario(worker: Worker) -> bool:
        access = worker.access_for(link_id)
        monkeypatch.setattr(link_access, "load_block", prefect_down)
        await worker.refresh_links()
        return worker.access_for(link_id) is access and worker.served_queues == {url: link_id}

    assert _serving(board, scenario)
