"""Waking a parked run: read, send outside any transaction, record with a compare-and-set.

In-process on moto's SQS and the database under test (SQLite and MariaDB).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from orca_blocks import OrcaLinkedCloudCredentials
from orca_flows.db.models import Run
from orca_flows.domain.states import RunState
from orca_flows.prefect_adapter.link_access import LinkAccess
from orca_flows.worker import Worker, WorkerOptions, claims
from orca_flows.worker import sweeper as worker_module
from orca_flows.worker.claims import ClaimAction
from tests.support.transaction_guard import recording
from tests.worker.conftest import Board, credentials, fifo_queue

real_send = worker_module.send_run_message


@pytest.fixture
def queue(board: Board, aws: Any, blocks: dict[str, OrcaLinkedCloudCredentials]) -> str:
    """The board's link, given a moto FIFO queue and a credentials block."""
    url = fifo_queue(aws, "runs")
    board.update_link(board.link_id, queue_url=url, bucket="orca-bucket", block_document_name="blk")
    blocks["blk"] = credentials()
    return url


def _messages(sqs: Any, url: str) -> list[dict[str, Any]]:
    response = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["MessageGroupId"]
    )
    return response.get("Messages", [])


def test_waking_a_key_sends_outside_any_transaction_and_records_the_message(
    board: Board, aws: Any, queue: str
) -> None:
    run_id = board.submit("k", message_id=None)

    with recording() as violations:
        Worker(board.settings, WorkerOptions()).wake("k")

    assert [v.summary() for v in violations] == []
    [message] = _messages(aws, queue)
    assert json.loads(message["Body"]) == {"run_id": run_id}
    assert message["Attributes"]["MessageGroupId"] == "k"
    assert board.get(run_id).sqs_message_id == message["MessageId"]


def test_a_key_whose_first_unfinished_run_runs_or_has_a_message_is_not_woken(
    board: Board, aws: Any, queue: str
) -> None:
    board.set(board.submit("busy", message_id=None), state=RunState.RUNNING)
    behind = board.submit("busy", message_id=None)  # parked behind the running one
    sent = board.submit("sent", message_id="m1")
    worker = Worker(board.settings, WorkerOptions())

    worker.wake("busy")
    worker.wake("sent")

    assert _messages(aws, queue) == []
    assert (board.get(behind).sqs_message_id, board.get(sent).sqs_message_id) == (None, "m1")


def test_when_another_waker_records_first_its_message_stays_and_the_duplicate_is_harmless(
    board: Board, aws: Any, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = board.submit("k", message_id=None)
    rival: list[str] = []

    def send_while_another_waker_records(access: LinkAccess, run: Run, *, resend: bool) -> str:
        ours = real_send(access, run, resend=resend)
        rival.append(real_send(access, run, resend=resend))
        assert claims.record_message(board.settings, run.id, rival[0])
        return ours

    monkeypatch.setattr(worker_module, "send_run_message", send_while_another_waker_records)

    Worker(board.settings, WorkerOptions()).wake("k")

    assert board.get(run_id).sqs_message_id == rival[0]
    # Two messages carry the run; the claim lets exactly one worker execute it.
    messages = _messages(aws, queue) + _messages(aws, queue)
    actions = [
        claims.claim_run(board.settings, json.loads(m["Body"])["run_id"], f"w{i}").action
        for i, m in enumerate(messages)
    ]
    assert sorted(actions) == [ClaimAction.BUSY, ClaimAction.EXECUTE]


def test_a_run_claimed_while_its_message_is_sent_is_left_to_its_worker(
    board: Board, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = board.submit("k", message_id=None)

    def send_then_claimed(access: LinkAccess, run: Run, *, resend: bool) -> str:
        message_id = real_send(access, run, resend=resend)
        assert claims.claim_run(board.settings, run.id, "w2").action == ClaimAction.EXECUTE
        return message_id

    monkeypatch.setattr(worker_module, "send_run_message", send_then_claimed)

    Worker(board.settings, WorkerOptions()).wake("k")

    run = board.get(run_id)
    assert (run.state, run.lease_owner, run.sqs_message_id) == (RunState.RUNNING, "w2", None)


def test_a_failed_send_leaves_the_run_to_the_sweeper(
    board: Board, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = board.submit("k", message_id=None, age_s=120)

    def throttled(access: LinkAccess, run: Run, *, resend: bool) -> str:
        raise ClientError({"Error": {"Code": "ThrottlingException"}}, "SendMessage")

    monkeypatch.setattr(worker_module, "send_run_message", throttled)
    worker = Worker(board.settings, WorkerOptions())
    worker.wake("k")

    assert board.get(run_id).sqs_message_id is None
    assert claims.keys_to_wake(board.settings, [board.link_id]) == ["k"]

    monkeypatch.setattr(worker_module, "send_run_message", real_send)
    worker.sweep()  # the sweeper serves the links this worker has access to
    assert board.get(run_id).sqs_message_id is not None
