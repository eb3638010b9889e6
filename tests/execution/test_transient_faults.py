"""Throttling and 5xx answers from SQS and S3 are retried by botocore and never fail a run."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker

from orca_flows.aws.clients import ClientFactory
from orca_flows.settings import get_settings
from orca_flows.worker import Worker, WorkerOptions
from tests.execution.conftest import Ledger, Orca

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("prefect_server")]

_SQS_THROTTLED = (
    400,
    {
        "Content-Type": "application/x-amz-json-1.0",
        "x-amzn-query-error": "ThrottlingException;Sender",
    },
    b'{"__type": "com.amazonaws.sqs#ThrottlingException", "message": "Rate exceeded"}',
)
_S3_ERRORS = [
    (
        500,
        {"Content-Type": "application/xml"},
        b"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>",
    ),
    (
        503,
        {"Content-Type": "application/xml"},
        b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
    ),
]


class _Body:
    def __init__(self, content: bytes) -> None:
        self.content = content

    def stream(self, **_: Any) -> Any:
        yield self.content


class FaultInjector:
    """Answers a share of SQS and S3 requests with a throttling or 5xx error, before they
    leave the client: every odd-numbered call of each operation fails its first attempt,
    every fourth call its first two. botocore's standard retries (5 attempts) must absorb
    them all."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self._lock = threading.Lock()

    def attach(self, client: Any) -> None:
        for service in ("sqs", "s3"):
            client.meta.events.register(f"before-send.{service}", self._before_send)

    def _before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        _, service, operation = event_name.split(".")
        header = request.headers["amz-sdk-request"]  # "attempt=N; max=M" (standard retries)
        header = header.decode() if isinstance(header, bytes) else header
        attempt = int(re.search(r"attempt=(\d+)", header)[1])
        name = f"{service}.{operation}"
        with self._lock:
            if attempt == 1:
                self.calls[name] += 1
            call = self.calls[name]
            if not (call % 2 == 1 and attempt == 1 or call % 4 == 0 and attempt <= 2):
                return None
            self.injected[name] += 1
        status, headers, body = _SQS_THROTTLED if service == "sqs" else _S3_ERRORS[call % 2]
        return AWSResponse(request.url, status, headers, _Body(body))


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> FaultInjector:
    """A FaultInjector on every client Orca builds in this process from now on."""
    injector = FaultInjector()
    build = ClientFactory.client

    def faulty(self: ClientFactory, service: str, **config: Any) -> Any:
        client = build(self, service, **config)
        injector.attach(client)
        return client

    monkeypatch.setattr(ClientFactory, "client", faulty)
    return injector


@pytest.fixture
def prefect_services_drained() -> Iterator[None]:
    """Flush the Prefect log and event workers that an in-process flow run starts, while
    the Prefect server still answers: at interpreter exit they would retry against a
    stopped server for a minute."""
    yield
    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)


@pytest.mark.usefixtures("prefect_services_drained")
def test_throttling_and_server_errors_on_sqs_and_s3_do_not_fail_runs(
    orca: Orca, ledger: Ledger, faults: FaultInjector, caplog: pytest.LogCaptureFixture
) -> None:
    orca.add_pipeline("steady", ledger.script("steady", "sleep 1"))
    orca.add_pipeline("other", ledger.script("other", "sleep 1"))
    run_ids = [orca.submit(name) for name in ("steady", "other", "steady")]
    settings = get_settings(
        worker_poll_seconds=1,
        worker_heartbeat_seconds=1,
        worker_lease_seconds=10,
        worker_visibility_seconds=10,
    )

    # In this process, so that the faults reach the worker's own clients.
    worker = Worker(settings, WorkerOptions(concurrency=2, max_runs=3, idle_exit=60))
    finished = asyncio.run(worker.run())

    assert finished == 3
    assert orca.states(run_ids) == dict.fromkeys(run_ids, "succeeded")
    for run_id in run_ids:
        assert (len(ledger.starts(run_id)), len(ledger.ends(run_id))) == (1, 1), run_id
    for operation in ("sqs.SendMessage", "sqs.ReceiveMessage", "sqs.DeleteMessage", "s3.GetObject"):
        assert faults.injected[operation] > 0, (operation, faults.injected)
    # Absorbed by botocore, not by Orca's own fallbacks (which log a warning and go on).
    surfaced = [
        r for r in caplog.records if r.name.startswith("orca") and r.levelno >= logging.WARNING
    ]
    assert [r.getMessage() for r in surfaced] == []
