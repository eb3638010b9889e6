"""The sweeper finds every stuck shape: the head run of each key is carried by a live message.

Each case drives the queue (messages deleted behind Orca's back) or the clock (timestamps
written in the past), on moto's SQS and the database under test (SQLite and MariaDB).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from orca_blocks import OrcaLinkedCloudCredentials
from orca_flows.db.base import utcnow
from orca_flows.db.models import Run
from orca_flows.domain.actor import Actor
from orca_flows.domain.states import RunState
from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.services import runs as runs_service
from orca_flows.worker import Worker, WorkerOptions, claims
from orca_flows.worker.claims import ClaimAction
from tests.worker.conftest import Board, credentials, fifo_queue

LONG_AGO = timedelta(hours=3)


@pytest.fixture
def queue(board: Board, aws: Any, blocks: dict[str, OrcaLinkedCloudCredentials]) -> str:
    """The board's link, given a moto FIFO queue and a credentials block."""
    url = fifo_queue(aws, "runs")
    board.update_link(board.link_id, queue_url=url, bucket="orca-bucket", block_document_name="blk")
    blocks["blk"] = credentials()
    return url


def _take_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Receive and delete every visible message (what a worker does behind Orca's back)."""
    taken: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageSystemAttributeNames=["MessageDeduplicationId"],
        ).get("Messages", [])
        if not got:
            return taken
        for message in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        taken += got


def _run_ids(messages: list[dict[str, Any]]) -> list[str]:
    return [json.loads(m["Body"])["run_id"] for m in messages]


def _serving(board: Board) -> Worker:
    """A worker that serves the board's link (as after its first links refresh)."""
    worker = Worker(board.settings, WorkerOptions())
    worker.access_for(board.link_id)
    return worker


def _submit(board: Board) -> str:
    actor = Actor(board.owner_id, "ann@example.com")
    return runs_service.submit_run(board.settings, actor, "etl", requested_by="test").run_id


def test_a_run_parked_before_its_submitter_records_its_message_is_woken(
    board: Board, aws: Any, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _submit(board)
    assert claims.claim_run(board.settings, first, "w1").action == ClaimAction.EXECUTE
    _take_all(aws, queue)  # the first run's message: consumed
    real_send = runs_service.send_run_message

    def send_then_a_worker_parks_it(access: LinkAccess, run: Run, *, resend: bool = False) -> str:
        message_id = real_send(access, run, resend=resend)
        # A worker receives the message before the submitter records it, and parks the
        # run (the first run of its key is unfinished): it deletes the message.
        [message] = _take_all(aws, queue)
        assert claims.claim_run(board.settings, run.id, "w2").action == ClaimAction.PARK
        assert message["MessageId"] == message_id
        return message_id

    monkeypatch.setattr(runs_service, "send_run_message", send_then_a_worker_parks_it)
    second = _submit(board)
    monkeypatch.setattr(runs_service, "send_run_message", real_send)

    # The first run finishes; its worker wakes the key, as it does after every finish.
    finished = claims.finish_run(
        board.settings, first, RunState.SUCCEEDED, worker_id="w1", exit_code=0, error=None
    )
    assert finished == RunState.SUCCEEDED
    worker = Worker(board.settings, WorkerOptions())
    worker.wake(board.get(second).ordering_key)

    woken = _take_all(aws, queue)
    assert _run_ids(woken) == [second]
    assert board.get(second).sqs_message_id == woken[0]["MessageId"]
    assert claims.claim_run(board.settings, second, "w3").action == ClaimAction.EXECUTE


def test_a_head_run_whose_recorded_message_is_gone_is_re_sent_after_the_bound(
    board: Board, aws: Any, queue: str
) -> None:
    run_id = _submit(board)
    recorded = board.get(run_id).sqs_message_id
    assert recorded is not None
    _take_all(aws, queue)  # SQS dropped it (retention, dead-letter queue)
    worker = _serving(board)

    worker.sweep()  # just sent: it may still be on its way to a worker
    assert _take_all(aws, queue) == []

    board.set(run_id, message_sent_at=utcnow() - LONG_AGO, requested_at=utcnow() - LONG_AGO)
    worker.sweep()

    [message] = _take_all(aws, queue)
    assert _run_ids([message]) == [run_id]
    assert message["Attributes"]["MessageDeduplicationId"] != run_id  # a fresh dedup id
    assert board.get(run_id).sqs_message_id == message["MessageId"] != recorded
    assert claims.claim_run(board.settings, run_id, "w1").action == ClaimAction.EXECUTE


def test_a_head_run_whose_old_message_waited_behind_a_run_that_just_finished_is_not_re_sent(
    board: Board, aws: Any, queue: str
) -> None:
    long_ago = utcnow() - LONG_AGO
    blocker = board.submit("k", message_id="m1", age_s=LONG_AGO.total_seconds())
    board.set(blocker, state=RunState.SUCCEEDED, finished_at=utcnow())
    waiting = board.submit("k", message_id="m2", age_s=LONG_AGO.total_seconds())
    board.set(waiting, message_sent_at=long_ago)

    _serving(board).sweep()

    assert _take_all(aws, queue) == []  # its message is live: SQS held it behind the blocker
    assert board.get(waiting).sqs_message_id == "m2"


@pytest.mark.parametrize("state", [RunState.RUNNING, RunState.CANCELLING])
def test_a_leased_run_whose_lease_lapsed_and_message_is_gone_gets_a_new_one(
    board: Board, aws: Any, queue: str, state: RunState
) -> None:
    run_id = board.submit("k", message_id="m1", age_s=LONG_AGO.total_seconds() + 60)
    board.set(
        run_id,
        state=state,
        attempt=1,
        command_id="cmd-1",
        lease_owner="dead-worker",
        lease_expires_at=utcnow() - timedelta(seconds=5),
        message_sent_at=utcnow() - LONG_AGO,
    )
    worker = _serving(board)

    worker.sweep()  # lapsed just now: its message comes back by itself
    assert _take_all(aws, queue) == []

    board.set(run_id, lease_expires_at=utcnow() - LONG_AGO + timedelta(minutes=5))
    worker.sweep()
    worker.sweep()  # once per bound, not once per sweep

    messages = _take_all(aws, queue)
    assert _run_ids(messages) == [run_id]
    # A worker receiving it takes the lease over and resumes the stored command.
    assert claims.claim_run(board.settings, run_id, "w2").action == ClaimAction.RESUME
    run = board.get(run_id)
    assert (run.state, run.lease_owner, run.command_id) == (state, "w2", "cmd-1")
    # Were the old message alive after all, the duplicate is harmless: the lease is held.
    assert claims.claim_run(board.settings, run_id, "w3").action == ClaimAction.BUSY
