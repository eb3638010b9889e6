"""Run events, artifacts and a failure automation, on a real Prefect server and the sandbox.

What a Prefect user relies on: `orca run start` (a process that exits at once) still
delivers ``orca.run.queued`` with the pipeline, ordering key and owner as related
resources; a finished run's flow run carries its outputs (with working download links)
and a link to its log; an automation on ``orca.run.failed`` for one pipeline fires for
that pipeline's failures only.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prefect import flow
from prefect.blocks.webhook import Webhook
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.events import AutomationCore, CallWebhook, EventTrigger, Posture

from orca_flows.aws.s3 import PrefixedBucket
from orca_flows.db.base import utcnow
from orca_flows.db.engine import session_scope
from orca_flows.db.models import Run
from orca_flows.db.repositories import runs as runs_repo
from orca_flows.domain.s3_layout import LOG_KEY, attempt_prefix
from orca_flows.domain.states import RunState
from orca_flows.prefect_adapter.api import prefect_api
from orca_flows.services.links import link_access
from orca_flows.services.run_reports import publish_run_artifacts, report_run
from tests.execution.conftest import ORCA, Ledger, Orca, run_events, wait_until


def test_orca_run_start_delivers_the_queued_event(
    orca: Orca, ledger: Ledger, prefect_server: Any
) -> None:
    orca.add_pipeline("nightly", ledger.script("n"), ordering_key="warehouse")
    started = subprocess.run(
        [ORCA, "run", "start", "nightly"], capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip().splitlines()[-1]

    events = wait_until(
        lambda: run_events(prefect_server.api_url, run_id), 30, "orca.run.queued stored"
    )
    (event,) = events
    assert event["event"] == "orca.run.queued"
    assert event["resource"]["prefect.resource.name"].startswith("nightly")
    related = {r["prefect.resource.role"]: r for r in event["related"]}
    assert related["pipeline"]["prefect.resource.id"] == f"orca.pipeline.{orca.user.id}.nightly"
    assert related["pipeline"]["prefect.resource.name"] == "nightly"
    stored_key = orca.runs([run_id])[run_id]["ordering_key"]  # the key as stored (per owner)
    assert stored_key.endswith("warehouse")
    assert related["ordering-key"]["prefect.resource.id"] == f"orca.ordering-key.{stored_key}"
    assert related["owner"]["prefect.resource.id"] == f"orca.user.{orca.user.id}"
    assert related["owner"]["prefect.resource.name"] == "ann@example.com"
    assert event["payload"]["requested_by"] == f"user:{orca.user.id}"
    assert event["payload"]["attempt"] == 0


def _finish(orca: Orca, run_id: str, state: RunState, exit_code: int, error: str = "") -> None:
    """Move a queued run to ``state`` as a worker would (attempt 1, started 3 s ago)."""
    with session_scope(orca.settings.effective_database_url) as session:
        now = utcnow()
        assert runs_repo.compare_and_set_state(
            session,
            run_id,
            RunState.QUEUED,
            state,
            attempt=1,
            started_at=now - timedelta(seconds=3),
            finished_at=now,
            exit_code=exit_code,
            error_summary=error or None,
        )


@flow(name="orca-events-test")
def _placeholder() -> None:
    """Only its flow runs are used: the artifacts are attached to one by id."""


async def _artifacts(flow_run_id: str) -> list[Any]:
    async with get_client() as client:
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[uuid.UUID(flow_run_id)])
            )
        )


async def _new_flow_run() -> str:
    async with get_client() as client:
        return str((await client.create_flow_run(_placeholder)).id)


def test_a_finished_runs_flow_run_has_its_outputs_and_log(
    orca: Orca, ledger: Ledger, prefect_server: Any
) -> None:
    orca.add_pipeline("report", ledger.script("r"))
    run_id = orca.submit("report")
    _finish(orca, run_id, RunState.SUCCEEDED, 0)
    with session_scope(orca.settings.effective_database_url) as session:
        run = session.get_one(Run, run_id)
        prefix, link = attempt_prefix(run.s3_prefix or "", 1), run.pipeline.link
        sha256 = run.script_version.sha256
    with prefect_api(orca.settings):
        access = link_access(link)
        bucket = PrefixedBucket(access.client("s3"), access.bucket, prefix)
        bucket.put("outputs/totals.csv", b"day,total\nmon,3\n")
        bucket.put(LOG_KEY, b"hello from the script\n")
    flow_run_id = asyncio.run(_new_flow_run())

    asyncio.run(publish_run_artifacts(orca.settings, run_id, flow_run_id))

    by_key = {a.key: a for a in asyncio.run(_artifacts(flow_run_id))}
    key = f"orca-run-{run_id[:8]}"
    assert set(by_key) == {key, f"{key}-log"}
    table = by_key[key].data
    assert bucket.uri("outputs/totals.csv") in table
    for field in ("| exit code | 0 |", "| attempt | 1 |", "| script version | 1 |", sha256):
        assert field in table
    assert "| duration | 3.0 s |" in table
    # The download links work: they serve the files themselves.
    download = table.split("[download](", 1)[1].split(")", 1)[0]
    with urllib.request.urlopen(download, timeout=10) as response:
        assert response.read() == b"day,total\nmon,3\n"
    log_link = by_key[f"{key}-log"].data.split("](", 1)[1].rstrip(")")
    with urllib.request.urlopen(log_link, timeout=10) as response:
        assert response.read() == b"hello from the script\n"


class _Hooks:
    """A tiny HTTP server on 127.0.0.1 recording the bodies POSTed to it."""

    def __init__(self) -> None:
        bodies: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                bodies.append(self.rfile.read(length).decode())
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.bodies = bodies
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/orca-failed"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def hooks() -> Iterator[_Hooks]:
    server = _Hooks()
    yield server
    server.stop()


async def _create_automation(name: str, pipeline_id: str, block_id: uuid.UUID) -> uuid.UUID:
    async with get_client() as client:
        return await client.create_automation(
            AutomationCore(
                name=name,
                trigger=EventTrigger(
                    expect={"orca.run.failed"},
                    match_related={"prefect.resource.id": pipeline_id},
                    posture=Posture.Reactive,
                    threshold=1,
                    within=timedelta(0),
                ),
                actions=[
                    CallWebhook(
                        block_document_id=block_id,
                        payload='{"run": "{{ event.resource.id }}"}',
                    )
                ],
            )
        )


async def _delete_automation(automation_id: uuid.UUID) -> None:
    async with get_client() as client:
        await client.delete_automation(automation_id)


def test_an_automation_fires_on_one_pipelines_failures_only(
    orca: Orca, ledger: Ledger, prefect_server: Any, hooks: _Hooks
) -> None:
    orca.add_pipeline("billing", ledger.script("b"))
    orca.add_pipeline("other", ledger.script("o"))
    suffix = uuid.uuid4().hex[:8]
    block_id = Webhook(url=hooks.url).save(f"orca-failed-{suffix}")
    automation = asyncio.run(
        _create_automation(
            f"billing failed {suffix}", f"orca.pipeline.{orca.user.id}.billing", block_id
        )
    )
    try:
        time.sleep(3)  # the triggers service loads new automations on its next refresh
        succeeded, failed_other, failed = (orca.submit(p) for p in ("billing", "other", "billing"))
        _finish(orca, succeeded, RunState.SUCCEEDED, 0)
        _finish(orca, failed_other, RunState.FAILED, 1, "exit code 1")
        _finish(orca, failed, RunState.FAILED, 2, "exit code 2")
        for run_id in (succeeded, failed_other, failed):
            report_run(orca.settings, run_id)

        wait_until(lambda: hooks.bodies, 45, "the automation's webhook called")
        time.sleep(3)  # a wrong second call (the other pipeline's failure) would come now
        assert [json.loads(body) for body in hooks.bodies] == [{"run": f"orca.run.{failed}"}]
    finally:
        asyncio.run(_delete_automation(automation))
