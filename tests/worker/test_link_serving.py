"""One tenant's broken link never stalls another's runs.

The worker polls each link with that link's own credentials (never one poller per queue
URL), backs a broken link off exponentially, reports each failure once (the worker's log,
and the link's last check as `orca link list` and Cloud Setup show it), and stops polling
a link removed while it runs. In-process on moto's SQS (SQLite only); the credentials
blocks live in a dict instead of Prefect.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orca_blocks import OrcaLinkedCloudCredentials
from orca_flows.aws.sqs import FifoQueue
from orca_flows.cli.main import app
from orca_flows.domain.actor import Actor
from orca_flows.domain.states import CheckStatus, RunState
from orca_flows.services.links import list_links
from orca_flows.worker import Worker, WorkerOptions
from orca_flows.worker.link_health import LinkHealth, LinkRef
from orca_flows.worker.polling import PollSettings
from tests.worker.conftest import Board, credentials, fifo_queue

POLL_SECONDS = 1
FIRST_BACKOFF = 0.1


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'orca-test.db'}"


@pytest.fixture
def receives(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many receives the worker made on each queue URL."""
    counts: Counter[str] = Counter()
    real = FifoQueue.receive

    def counted(self: FifoQueue, **options: Any) -> Any:
        counts[self.url] += 1
        return real(self, **options)

    monkeypatch.setattr(FifoQueue, "receive", counted)
    return counts


def _serving(board: Board, scenario: Callable[[Worker], Awaitable[Any]]) -> Any:
    """Run a worker (polling every second, quick back-off) while ``scenario`` acts."""
    settings = board.settings.model_copy(update={"worker_poll_seconds": POLL_SECONDS})

    async def main() -> Any:
        worker = Worker(settings, WorkerOptions())
        worker._health = LinkHealth(settings, first_delay=FIRST_BACKOFF)
        running = asyncio.create_task(worker.run())
        try:
            while not worker.served_links and not running.done():
                await asyncio.sleep(0.05)  # the first links refresh
            return await scenario(worker)
        finally:
            worker.stop()
            await running

    return asyncio.run(main())


def _send(sqs: Any, url: str, run_id: str) -> None:
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps({"run_id": run_id}),
        MessageGroupId="g",
        MessageDeduplicationId=run_id,
    )


def _visible(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def test_two_links_on_one_queue_url_are_each_served_with_their_own_credentials(
    board: Board, aws: Any, blocks: dict[str, OrcaLinkedCloudCredentials]
) -> None:
    url = fifo_queue(aws, "shared")
    # Another user's link to the same queue, made first: it must not serve this one's runs.
    other = board.add_link("other", queue_url=url, bucket="b")
    mine = board.add_link("mine", queue_url=url, bucket="b")
    blocks["block-other"] = credentials("external-id-other")
    blocks["block-mine"] = credentials("external-id-mine")

    async def scenario(worker: Worker) -> dict[int, str]:
        return {
            link_id: poller.access.credentials.external_id.get_secret_value()
            for link_id, poller in worker._pollers.items()
        }

    used = _serving(board, scenario)

    assert used == {other: "external-id-other", mine: "external-id-mine"}


def test_a_broken_link_is_backed_off_and_reported_while_the_good_one_is_served(
    board: Board,
    aws: Any,
    blocks: dict[str, OrcaLinkedCloudCredentials],
    receives: Counter[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good_url = fifo_queue(aws, "good")
    broken_url = good_url.replace("good.fifo", "deleted.fifo")  # its queue is gone
    board.update_link(board.link_id, queue_url=good_url, bucket="b", block_document_name="blk")
    board.add_link("broken", queue_url=broken_url, bucket="b")
    blocks["blk"], blocks["block-broken"] = credentials(), credentials()
    finished = [board.submit("k", message_id=None) for _ in range(3)]
    for run_id in finished:  # runs the good link's worker drops (finished): it serves them
        board.set(run_id, state=RunState.SUCCEEDED)
    caplog.set_level(logging.INFO, logger="orca.worker.link_health")

    async def scenario(worker: Worker) -> None:
        for run_id in finished:
            _send(aws, good_url, run_id)
        for _ in range(40):
            if _visible(aws, good_url) == 0 and receives[broken_url] >= 4:
                break
            await asyncio.sleep(0.1)

    _serving(board, scenario)

    assert _visible(aws, good_url) == 0  # the good link's messages were all handled
    reports = [r for r in caplog.records if "cannot be served" in r.getMessage()]
    assert len(reports) == receives[broken_url] >= 4  # once per back-off
    delays = [record.args[3] for record in reports]  # type: ignore[index]
    assert delays == [FIRST_BACKOFF * 2**n for n in range(len(delays))]
    assert "NonExistentQueue" in reports[0].getMessage() or "QueueDoesNotExist" in str(
        reports[0].getMessage()
    )
    views = {view.name: view for view in list_links(board.settings, Actor(board.owner_id, "a"))}
    assert views["broken"].last_check_status == CheckStatus.FAILED
    [step] = views["broken"].last_check or ()
    assert step.name == "worker" and broken_url in step.detail
    assert "orca link check broken" in step.fix
    assert views["aws"].last_check_status is None  # the good link: nothing to report
    monkeypatch.setenv("ORCA_DATABASE_URL", board.settings.effective_database_url)
    listed = CliRunner().invoke(app, ["link", "list", "--user", "ann@example.com"])
    assert listed.exit_code == 0, listed.output
    words = " ".join(listed.output.replace("│", " ").split())  # the table's wrapped cells
    assert "worker: the worker cannot receive" in words and "queue does not exist" in words


def test_a_link_removed_while_backed_off_stops_being_polled(
    board: Board,
    aws: Any,
    blocks: dict[str, OrcaLinkedCloudCredentials],
    receives: Counter[str],
) -> None:
    kept_url = fifo_queue(aws, "kept")
    broken_url = kept_url.replace("kept.fifo", "deleted.fifo")
    kept = board.add_link("kept", queue_url=kept_url, bucket="b")
    broken = board.add_link("broken", queue_url=broken_url, bucket="b")
    blocks["block-kept"], blocks["block-broken"] = credentials(), credentials()

    async def scenario(worker: Worker) -> tuple[dict[int, str], int, int]:
        while receives[broken_url] < 2:
            await asyncio.sleep(0.05)
        board.remove_link(broken)
        await worker.refresh_links()
        await asyncio.sleep(0.05)
        seen = receives[broken_url]
        await asyncio.sleep(1.5)  # many back-offs of the removed link
        return worker.served_links, seen, receives[broken_url]

    served, seen, later = _serving(board, scenario)

    assert served == {kept: kept_url}
    assert later == seen


def test_a_link_check_probe_is_deleted_and_never_taken_for_a_run(
    board: Board, aws: Any, blocks: dict[str, OrcaLinkedCloudCredentials]
) -> None:
    url = fifo_queue(aws, "probed")
    board.update_link(board.link_id, queue_url=url, bucket="b", block_document_name="blk")
    blocks["blk"] = credentials()
    run_id = board.submit("k", message_id=None)
    queue = FifoQueue(aws, url)
    # Even a probe whose body names a run is a probe: the attribute decides.
    queue.send(
        json.dumps({"run_id": run_id}), group_id="orca-link-check-1", dedup_id="p1", probe="p1"
    )
    [message] = queue.receive(wait_seconds=0)
    worker = Worker(board.settings, WorkerOptions())
    poll = PollSettings.of(board.settings, None, "test")

    asyncio.run(worker._dispatch(queue, poll, message))

    assert message.probe == "p1"
    run = board.get(run_id)
    assert (run.state, run.attempt, run.lease_owner) == (RunState.QUEUED, 0, None)
    assert _visible(aws, url) == 0  # deleted, not handed back


def test_a_link_served_again_shows_its_last_check_not_a_pass(board: Board) -> None:
    # The link's last `orca link check` failed on the bucket; a poll hiccup and its
    # recovery must not turn that into "passed" in `orca link list` and Cloud Setup.
    bucket_failed = json.dumps([{"name": "bucket", "status": "failed", "detail": "denied"}])
    board.update_link(
        board.link_id,
        queue_url="https://q",
        block_document_name="blk",
        last_check_status=CheckStatus.FAILED,
        last_check_detail=bucket_failed,
    )
    link = LinkRef(board.link_id, "aws", "blk", "https://q")
    health = LinkHealth(board.settings)
    actor = Actor(board.owner_id, "a")

    health.failed(link, RuntimeError("connection reset"))
    [shown] = list_links(board.settings, actor)
    assert [step.name for step in shown.last_check or ()] == ["worker"]
    health.recovered(link)

    [shown] = list_links(board.settings, actor)
    assert shown.last_check_status == CheckStatus.FAILED
    assert [step.name for step in shown.last_check or ()] == ["bucket"]


def test_a_check_stored_while_a_link_was_failing_is_kept_on_recovery(board: Board) -> None:
    board.update_link(board.link_id, queue_url="https://q", block_document_name="blk")
    link = LinkRef(board.link_id, "aws", "blk", "https://q")
    health = LinkHealth(board.settings)
    health.failed(link, RuntimeError("connection reset"))
    passed = json.dumps([{"name": "queue", "status": "passed", "detail": "ok"}])
    board.update_link(
        board.link_id, last_check_status=CheckStatus.PASSED, last_check_detail=passed
    )  # `orca link check` meanwhile

    health.recovered(link)

    [shown] = list_links(board.settings, Actor(board.owner_id, "a"))
    assert shown.last_check_status == CheckStatus.PASSED
    assert [step.name for step in shown.last_check or ()] == ["queue"]
