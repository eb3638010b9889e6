"""`orca link check` and the worker never trip over each other.

The check's queue probe never receives a run's message (each receive counts towards the
dead-letter queue), and a check made while a worker serves the queue passes: the worker
deletes probes and the check does not need its probe back. On the sandbox, with real
`orca worker` processes (the execution harness).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from orca_flows.aws.sqs import FifoQueue
from orca_flows.domain.actor import Actor
from orca_flows.services.link_check import check_link
from orca_flows.services.links import access_link
from tests.execution import conftest as harness
from tests.execution.conftest import LINK, Ledger, Orca, Workers

# The execution harness's fixtures: Ann on the sandbox, the ledger, `orca worker` processes.
orca, ledger, workers = harness.orca, harness.ledger, harness.workers

with_prefect = pytest.mark.usefixtures("prefect_server")

MAX_RECEIVES = 5  # the dead-letter threshold set on the sandbox queue below


def _queue_step(orca: Orca) -> Any:
    result = check_link(orca.settings, Actor(orca.user.id, orca.user.email), LINK)
    [step] = [step for step in result.steps if step.name == "queue"]
    return result, step


def _with_dead_letter_queue(orca: Orca) -> tuple[Any, str]:
    """Give the sandbox queue a dead-letter queue after MAX_RECEIVES, as the kit's stack does."""
    access = access_link(orca.settings, Actor(orca.user.id, orca.user.email), LINK)
    sqs = access.client("sqs")
    dlq_url = sqs.create_queue(QueueName="orca-dead.fifo", Attributes={"FifoQueue": "true"})[
        "QueueUrl"
    ]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES})
    sqs.set_queue_attributes(QueueUrl=access.queue().url, Attributes={"RedrivePolicy": policy})
    return sqs, dlq_url


@pytest.mark.sandbox
@with_prefect
def test_fifteen_checks_while_a_run_waits_leave_it_to_the_worker(
    orca: Orca, workers: Workers, ledger: Ledger
) -> None:
    sqs, dlq_url = _with_dead_letter_queue(orca)
    orca.add_pipeline("waits", ledger.script("waits"))
    run_id = orca.submit("waits")

    for _ in range(15):
        result, step = _queue_step(orca)
        assert result.passed, result.steps  # nothing failed ...
        assert step.status == "unverified"  # ... but receiving was not proven
        assert "receive not tried" in step.detail

    workers.start(1)
    assert orca.wait_finished([run_id], timeout=90) == {run_id: "succeeded"}
    assert len(ledger.starts(run_id)) == 1
    assert sqs.receive_message(QueueUrl=dlq_url).get("Messages", []) == []
    # The probes the checks left were deleted by the worker, never taken for runs.
    assert orca.runs([run_id])[run_id]["attempt"] == 1


@pytest.mark.sandbox
@with_prefect
def test_checks_pass_while_a_worker_serves_the_queue(
    orca: Orca, workers: Workers, ledger: Ledger
) -> None:
    orca.add_pipeline("first", ledger.script("first"))
    workers.start(1)
    first = orca.submit("first")
    orca.wait_finished([first], timeout=90)  # the worker is serving the queue now

    outcomes = [_queue_step(orca) for _ in range(5)]

    assert [result.passed for result, _ in outcomes] == [True] * 5, [s for _, s in outcomes]
    after = orca.submit("first")  # and the worker still runs runs
    assert orca.wait_finished([after], timeout=90) == {after: "succeeded"}


def test_an_sts_failure_in_the_account_step_fails_the_step_not_the_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore.exceptions import EndpointConnectionError

    from orca_flows.db.models import CloudLink
    from orca_flows.domain.states import CheckStatus
    from orca_flows.services import link_check

    def unreachable(client: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="https://sts.amazonaws.com")

    class _Access:
        def client(self, service: str) -> None:
            return None

    monkeypatch.setattr(link_check, "caller_identity", unreachable)
    link = CloudLink(name="x", account_id="123456789012", region="us-east-1")

    step = link_check._run("account", lambda: link_check._account(_Access(), link))  # type: ignore[arg-type]

    assert step.status == CheckStatus.FAILED
    assert "sts:GetCallerIdentity" in step.detail and "orca link check" in step.fix


class _QueueOnly:
    """The part of a link's access the queue step uses, on moto."""

    def __init__(self, queue: FifoQueue) -> None:
        self._queue = queue

    def queue(self) -> FifoQueue:
        return self._queue


def test_the_queue_step_receives_only_its_probe_and_never_a_waiting_run() -> None:
    from moto import mock_aws

    from orca_flows.db.models import CloudLink
    from orca_flows.services import link_check

    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        queue, link = FifoQueue(sqs, url), CloudLink(name="x", queue_url=url)
        access = _QueueOnly(queue)

        empty = link_check._queue(access, link)  # type: ignore[arg-type]
        queue.send(json.dumps({"run_id": "r1"}), group_id="k", dedup_id="r1")
        waiting = [link_check._queue(access, link) for _ in range(3)]  # type: ignore[arg-type]
        received = queue.receive(wait_seconds=0)

    assert empty.startswith("sent, received and deleted a probe")
    assert all(status == "unverified" for status, _ in waiting)
    assert all("receive not tried" in detail for _, detail in waiting)
    runs = [m for m in received if m.probe is None]
    assert [(json.loads(m.body), m.receive_count) for m in runs] == [({"run_id": "r1"}, 1)]
    assert len(received) - len(runs) == 3  # the probes the checks left, for a worker to delete
